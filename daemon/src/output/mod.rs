//! What sealwatch prints: one JSON object per line (schema `sealwatch.event/v1`), and where it
//! goes: stdout's bounded writer and the sinks (file, OTLP), each with its selection of lines,
//! fanned out to taps (live tail, learner).
pub mod fanout;
pub mod fragment;
mod json_out;
pub mod line;
#[cfg(test)]
mod line_tests;
pub mod select;
pub mod sink;
pub mod writer;

pub use fanout::{Fanout, OutputDrops, Tap};
pub use fragment::{Rendered, Shared};
pub use line::{
    ContainerJson, EventLine, FileJson, LossJson, NetworkJson, PodJson, ProcessJson, SessionJson,
    TextFields, ViolationJson,
};
pub use select::Selection;
pub use writer::{LineSink, StdoutWriter};

/// The `schema` value of every line; bump with any incompatible change of the JSON contract.
pub const SCHEMA: &str = "sealwatch.event/v1";
