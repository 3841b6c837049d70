//! Checks before loading anything, each failing with one line that names what is missing.
use std::path::Path;

use aya::{maps::MapType, sys::is_map_supported};
use thiserror::Error;

use super::offsets::VMLINUX_BTF;

#[derive(Debug, Error)]
pub enum PreflightError {
    #[error(
        "missing privilege: {0} (run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)"
    )]
    Privilege(String),
    #[error("kernel BTF not found at {VMLINUX_BTF}: sealwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf,
    #[error("kernel lacks BPF ring buffers (BPF_MAP_TYPE_RINGBUF, Linux 5.8+)")]
    NoRingBuf,
    #[error("tracefs is not mounted and mounting it at {TRACEFS} failed ({0}): syscall tracepoints cannot be attached; mount it with `mount -t tracefs tracefs {TRACEFS}`")]
    NoTracefs(String),
}

/// Capability bits (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

pub fn check() -> Result<(), PreflightError> {
    check_capabilities()?;
    if !Path::new(VMLINUX_BTF).exists() {
        return Err(PreflightError::NoBtf);
    }
    match is_map_supported(MapType::RingBuf) {
        Ok(true) => {}
        Ok(false) => return Err(PreflightError::NoRingBuf),
        Err(err) => {
            return Err(PreflightError::Privilege(format!(
                "bpf(BPF_MAP_CREATE) failed: {err}"
            )))
        }
    }
    // tp_btf support is not probed here: aya's generic probe needs an attach target and fails
    // on kernels that do support it. Loading the real programs names the failing one instead.
    Ok(())
}

/// Reads the effective capability set from /proc/self/status: BPF programs need CAP_BPF and
/// CAP_PERFMON (or CAP_SYS_ADMIN on kernels before 5.8), reading other processes' /proc entries
/// needs CAP_SYS_PTRACE.
fn check_capabilities() -> Result<(), PreflightError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|err| {
        PreflightError::Privilege(format!("cannot read /proc/self/status: {err}"))
    })?;
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    let bpf = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
    if !bpf {
        return Err(PreflightError::Privilege(
            "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) are needed to load eBPF programs".into(),
        ));
    }
    if !has(CAP_SYS_PTRACE) && !has(CAP_SYS_ADMIN) {
        return Err(PreflightError::Privilege(
            "CAP_SYS_PTRACE is needed to read other processes' /proc entries".into(),
        ));
    }
    Ok(())
}

const TRACEFS: &str = "/sys/kernel/tracing";

/// Syscall tracepoints are attached by id, read from tracefs: mount it when nobody has.
pub fn ensure_tracefs() -> Result<(), PreflightError> {
    for candidate in [TRACEFS, "/sys/kernel/debug/tracing"] {
        if Path::new(candidate).join("events").is_dir() {
            return Ok(());
        }
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|err| PreflightError::NoTracefs(err.to_string()))?;
    tracing::info!(path = TRACEFS, "mounted tracefs for syscall tracepoints");
    Ok(())
}
