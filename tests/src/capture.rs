//! Helpers for the capture, replay and tail tests: run the `sealwatch` binary's offline commands,
//! look inside capture files (frame boundaries, sizes), write policy files.
//!
//! The frame layout read here is the one `docs/capture-format.md` documents: 8 bytes of magic,
//! then frames of `len u32 LE | type u8 | flags u8 | reserved u16 | crc32 u32 LE | payload`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::cmd;
use crate::daemon::daemon_bin;

/// Bytes before the first frame.
pub const MAGIC_LEN: u64 = 8;
/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: u64 = 12;
/// Frame type of recorded inputs.
pub const FRAME_INPUTS: u8 = 3;

/// How long an offline command may take.
const OFFLINE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `sealwatch <args>` to completion, whatever its exit status.
pub fn sealwatch<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<Output> {
    let bin = daemon_bin()?;
    let bin = bin.to_str().context("daemon path is not UTF-8")?;
    let mut command = cmd::command(bin, args);
    command.env("NO_COLOR", "1");
    cmd::run(&mut command, OFFLINE_TIMEOUT)
}

/// What a successful offline command printed.
#[derive(Debug)]
pub struct Printed {
    pub lines: Vec<String>,
    pub stderr: String,
}

/// Runs `sealwatch <args>` and requires exit status 0.
pub fn sealwatch_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<Printed> {
    let out = sealwatch(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    ensure!(
        out.status.success(),
        "`sealwatch {}` exited with {}; stderr:\n{stderr}",
        shown.join(" "),
        out.status
    );
    let stdout = String::from_utf8(out.stdout).context("stdout is not UTF-8")?;
    Ok(Printed {
        lines: stdout.lines().map(str::to_owned).collect(),
        stderr,
    })
}

/// `sealwatch replay <path> <extra...>` with exit status 0: its stdout lines.
pub fn replay(path: &Path, extra: &[&str]) -> Result<Printed> {
    let mut args = vec!["replay".to_owned(), path.display().to_string()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    sealwatch_ok(&args)
}

/// One frame of a capture file: where it starts and ends, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpan {
    pub start: u64,
    pub end: u64,
    pub kind: u8,
}

/// The frames of a capture file, read from their length prefixes (checks nothing else).
pub fn frames(path: &Path) -> Result<Vec<FrameSpan>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut spans = Vec::new();
    let mut at = MAGIC_LEN as usize;
    while at + FRAME_HEADER_LEN as usize <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let end = at + FRAME_HEADER_LEN as usize + len as usize;
        ensure!(end <= bytes.len(), "frame at {at} runs past the end");
        spans.push(FrameSpan {
            start: at as u64,
            end: end as u64,
            kind: bytes[at + 4],
        });
        at = end;
    }
    Ok(spans)
}

/// The capture files in `dir` (`capture-*.swc`), in name (= sequence) order.
pub fn capture_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("capture-") && n.ends_with(".swc"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Total size of the capture files in `dir`.
pub fn capture_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for file in capture_files(dir)? {
        // A file deleted between listing and stat no longer counts.
        total += std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    }
    Ok(total)
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A fresh directory under the harness's artifacts (kept after the test for inspection).
pub fn fresh_dir(prefix: &str) -> Result<PathBuf> {
    let dir = crate::artifacts_dir()?.join(crate::unique_name(prefix));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The first index where two line lists differ, for readable assertion messages.
pub fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    if a == b {
        return None;
    }
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    Some(format!(
        "{} vs {} lines; first difference at line {i}:\n  left:  {}\n  right: {}",
        a.len(),
        b.len(),
        a.get(i).map_or("<none>", String::as_str),
        b.get(i).map_or("<none>", String::as_str)
    ))
}

/// Whether `sub` appears in `full` in order (not necessarily contiguously).
pub fn is_subsequence(sub: &[String], full: &[String]) -> bool {
    let mut rest = full.iter();
    sub.iter().all(|line| rest.any(|l| l == line))
}
