//! Kernel records as typed userspace values: the input of the pipeline, live or replayed.
pub mod decode;
pub mod model;
pub mod text;

pub use decode::{decode, DecodeError};
pub use model::{
    DnsEnds, DnsRecord, ExecRecord, FileRecord, KernelEvent, Layer, NetOp, NetRecord, Task,
};
