//! What the pipeline knows between events: processes, containers, login sessions, DNS names,
//! path origins ([`NodeState`] holds them all). Changed only by pipeline inputs (events and
//! recorded snapshots), never by live lookups, so replay rebuilds it exactly. Nothing here is
//! rendered: the JSON made from it lives in the render layer (`pipeline::render`).
pub mod containers;
mod node;
pub mod origins;
pub mod process;
pub mod seed;
pub mod sessions;

pub use containers::{CgroupLookup, ContainerEntry, ContainerRegistry, MetaState, Revision};
pub use node::NodeState;
pub use process::{ImageId, ProcEntry, ProcessTable};
pub use seed::ProcSeed;
