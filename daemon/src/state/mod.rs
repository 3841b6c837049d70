//! What the pipeline knows between events: processes and containers. Changed only by pipeline
//! inputs (events and recorded snapshots), never by live lookups, so replay rebuilds it exactly.
pub mod containers;
pub mod process;
pub mod seed;

pub use containers::{CgroupLookup, ContainerEntry, ContainerRegistry, MetaState};
pub use process::{ProcEntry, ProcessInputs, ProcessTable};
pub use seed::ProcSeed;
