//! The records of a capture file (see `docs/capture-format.md`): what each frame type holds.
//!
//! Every payload is JSON (inputs as JSON lines), so a capture explains itself to anyone with a
//! zstd decoder and a JSON parser; compression keeps JSON's verbosity cheap on disk.
use serde::{Deserialize, Serialize};

use crate::{clock::BootClock, policy::Policy};

/// First bytes of every capture file. The high first byte catches 7-bit and text-mode transfers,
/// `\r\n` catches newline conversion (the trick PNG uses).
pub const MAGIC: [u8; 8] = *b"\x89SWCAP\r\n";
/// `format` in every header.
pub const FORMAT_NAME: &str = "sealwatch.capture";
/// Bumped on any change an older reader would misread; readers refuse newer versions.
pub const FORMAT_VERSION: u32 = 1;

/// Frame types. Readers skip types they do not know (optional additions keep the version).
pub mod frame_type {
    /// [`super::Header`], uncompressed JSON; always the first frame of a file.
    pub const HEADER: u8 = 1;
    /// Inputs that rebuild the pipeline's state at the start of a file (JSON lines, zstd).
    pub const SNAPSHOT: u8 = 2;
    /// Recorded inputs in order (JSON lines, zstd).
    pub const INPUTS: u8 = 3;
    /// [`super::PolicyRecord`]: the policy changed (reload) at this point of the stream.
    pub const POLICY: u8 = 4;
    /// [`super::LossRecord`]: inputs that could not be recorded at this point.
    pub const LOSS: u8 = 5;
    /// [`super::ViolationsRecord`]: violations were reported while this file was written.
    pub const VIOLATIONS: u8 = 6;
    /// [`super::EndRecord`]: the file was closed cleanly.
    pub const END: u8 = 7;
}

/// Who wrote the capture, where, and how to interpret it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// How frames of inputs are encoded: `json-lines`.
    pub encoding: String,
    /// How compressed frames are compressed: `zstd`.
    pub compression: String,
    /// One daemon run; consecutive files of a run continue each other.
    pub run_id: String,
    /// Sequence number of the file in its directory (also in its name).
    pub seq: u64,
    /// Wall-clock time the file was started (Unix ns).
    pub started_unix_ns: i64,
    pub node: NodeInfo,
    pub config: ConfigRecord,
    /// The policy in force when the file was started.
    pub policy: PolicyRecord,
}

/// The machine the capture comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub hostname: String,
    pub kernel_release: String,
    pub boot_id: String,
    pub sealwatch_version: String,
}

impl NodeInfo {
    /// Reads the running machine's identity; a field that cannot be read is left empty.
    pub fn current() -> NodeInfo {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        NodeInfo {
            hostname: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kernel_release: read("/proc/sys/kernel/osrelease"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            sealwatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The pipeline configuration of the run: replay builds the same pipeline from it
/// (`driver::recording` converts both ways).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    pub node: String,
    pub clock: BootClock,
    pub hold_ns: u64,
    #[serde(default)]
    pub host_mnt_ns: u32,
    /// `NetEnvironment`: what the built-in network sets stood for (CIDRs as text).
    #[serde(default)]
    pub cluster_cidrs: Vec<String>,
    #[serde(default)]
    pub kubernetes_api: Vec<String>,
}

/// A policy exactly as it was loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub source: String,
    pub text: String,
}

impl PolicyRecord {
    pub fn of(policy: &Policy) -> PolicyRecord {
        PolicyRecord {
            source: policy.source().to_owned(),
            text: policy.text().to_owned(),
        }
    }
}

/// `inputs` inputs were not recorded just before this point (the recorder's queue was full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossRecord {
    pub inputs: u64,
}

/// `count` violation lines were printed around wall-clock time `unix_ns`; drives retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationsRecord {
    pub unix_ns: i64,
    pub count: u64,
}

/// Why and when a file was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndRecord {
    /// `rotated` (a next file of the run follows) or `stopped` (the daemon stopped).
    pub reason: String,
    pub unix_ns: i64,
    /// Inputs recorded in this file (snapshot excluded).
    pub inputs: u64,
}

/// Wall-clock now in Unix ns (retention and file names only; never fed to the pipeline).
pub fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
