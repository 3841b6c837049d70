//! `sealwatch run` flags of the flight recorder.
use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::{recorder::RecorderOptions, retention::RetentionPolicy};

/// The smallest file size accepted: a header, a snapshot and a few frames.
const MIN_FILE_BYTES: u64 = 16 * 1024;

#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// Record every event the kernel delivers, with the state needed to replay it, into rotating
    /// files `DIR/capture-<seq>-<start>.swc` (DIR is created with mode 0700). Replay them with
    /// `sealwatch replay DIR`. See docs/capture-format.md.
    #[arg(long, value_name = "DIR", env = "SEALWATCH_CAPTURE")]
    pub capture: Option<PathBuf>,
    /// Bound on the total size of the capture files in DIR (e.g. 512MiB, 2GiB). Oldest files go
    /// first; violation windows last; the bound always holds.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    pub capture_max_bytes: u64,
    /// A capture file is closed and the next one begun at this size (at most a quarter of
    /// --capture-max-bytes, at least 16KiB).
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_bytes)]
    pub capture_file_bytes: u64,
    /// ... or when it is this old (e.g. 30s, 10m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub capture_file_age: Duration,
    /// Capture files whose last event is older than this are deleted (unless they hold a
    /// violation window, see below).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub capture_max_age: Duration,
    /// Files that cover the time from this long before to this long after a violation are
    /// protected: kept for --capture-keep-violation-age and deleted last for size.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub capture_keep_violation_window: Duration,
    /// How long protected files are kept.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub capture_keep_violation_age: Duration,
    /// Inputs that may wait for the capture writer before inputs are not recorded (counted in
    /// the `output` field of loss lines).
    #[arg(long, value_name = "INPUTS", default_value_t = 16384)]
    pub capture_queue: usize,
}

impl CaptureArgs {
    /// The recorder's options when `--capture` is given.
    pub fn recorder_options(&self) -> Option<RecorderOptions> {
        let dir = self.capture.clone()?;
        let ns = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Some(RecorderOptions {
            dir,
            file_bytes: self
                .capture_file_bytes
                .min(self.capture_max_bytes / 4)
                .max(MIN_FILE_BYTES),
            file_age: self.capture_file_age,
            retention: RetentionPolicy {
                max_bytes: self.capture_max_bytes,
                max_age_ns: ns(self.capture_max_age),
                violation_window_ns: ns(self.capture_keep_violation_window),
                violation_max_age_ns: ns(self.capture_keep_violation_age),
            },
            queue: self.capture_queue,
        })
    }
}

/// `1048576`, `64KiB`, `64MiB`, `1GiB`, `1G` (binary units: sizes of files on disk).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 512MiB"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB, GiB)")),
    };
    n.checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// `30s`, `10m`, `24h`, `7d`, `1h 30m` (humantime syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("{text:?}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }
}
