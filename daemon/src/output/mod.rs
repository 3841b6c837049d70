//! What sealwatch prints: one JSON object per line (schema `sealwatch.event/v1`).
pub mod fragment;
mod json_out;
pub mod line;
#[cfg(test)]
mod line_tests;
pub mod writer;

pub use fragment::{Rendered, Shared};
pub use line::{
    ContainerJson, EventLine, FileJson, LossJson, NetworkJson, PodJson, ProcessJson, SessionJson,
    TextFields, ViolationJson,
};
pub use writer::{LineSink, StdoutWriter};

/// The `schema` value of every line; bump with any incompatible change of the JSON contract.
pub const SCHEMA: &str = "sealwatch.event/v1";
