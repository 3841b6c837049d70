//! The flight recorder: `sealwatch run --capture DIR` records every pipeline input (kernel events,
//! snapshots, lookup answers, ticks) into rotating, compressed, checksummed files, so `replay`
//! can run the same pipeline offline and print the same lines. Format: `docs/capture-format.md`.
//!
//! - [`format`]: the records; [`frame`]: the crash-safe frame codec; [`naming`]: file names.
//! - [`recorder`]: the live side (bounded queue → dedicated writer thread); [`retention`]: which
//!   files to delete; [`reader`]: reading files back.
pub mod format;
pub mod frame;
pub mod naming;
pub mod options;
pub mod reader;
pub mod recorder;
pub mod retention;
mod thread;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;

pub use frame::Damage;
pub use options::CaptureArgs;
pub use reader::{capture_files, CaptureReader, Record};
pub use recorder::{Recorder, RecorderOptions};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a sealwatch capture: {reason}")]
    NotACapture { path: PathBuf, reason: String },
    #[error("{path} is a capture of format version {version}, newer than this sealwatch reads ({}); use a newer sealwatch", format::FORMAT_VERSION)]
    Version { path: PathBuf, version: u32 },
    #[error("{0} holds no capture files (capture-*.swc)")]
    Empty(PathBuf),
    #[error("capture directory {path}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading a capture: {0}")]
    Read(std::io::Error),
    #[error("writing a capture: {0}")]
    Write(std::io::Error),
    #[error("compressing a capture frame: {0}")]
    Compress(std::io::Error),
    #[error("encoding a capture record: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("a capture frame of {0} bytes exceeds the format's limit")]
    FrameTooLarge(usize),
    #[error("starting the capture writer thread: {0}")]
    Thread(std::io::Error),
    #[error("the capture writer thread failed: {0}")]
    Writer(String),
}

/// An error with its causes, `a: b: c`, for log lines (`Display` shows only the first).
pub fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

impl CaptureError {
    /// sysexits `EX_DATAERR`: the input data (a capture) is bad.
    pub const EXIT_DATA: u8 = 65;

    /// Whether this error is about bad capture data (as opposed to I/O or the host).
    pub fn is_bad_data(&self) -> bool {
        matches!(
            self,
            CaptureError::NotACapture { .. } | CaptureError::Version { .. }
        )
    }
}
