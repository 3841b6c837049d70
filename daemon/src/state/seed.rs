//! Start-up snapshot of the processes that are older than the daemon.
use serde::{Deserialize, Serialize};

/// One process as `/proc` showed it at start-up. Recorded in captures, so replay starts from the
/// same table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcSeed {
    pub pid: u32,
    pub ppid: u32,
    pub exe: Vec<u8>,
    pub comm: Vec<u8>,
    #[serde(default)]
    pub args: Vec<Vec<u8>>,
    #[serde(default)]
    pub cwd: Vec<u8>,
    /// A container's workload: its root was on overlayfs when seen (see
    /// `ProcEntry::workload`). False in captures made before it was recorded.
    #[serde(default)]
    pub workload: bool,
}

/// Reads every process from `/proc`. Processes that vanish during the scan are skipped; kernel
/// threads have no exe and get an empty one.
pub fn scan_proc() -> Vec<ProcSeed> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(Result::ok)
        .filter_map(|process| {
            let stat = process.stat().ok()?;
            let exe = process
                .exe()
                .map(|path| path.as_os_str().as_bytes().to_vec())
                .unwrap_or_default();
            let args = std::fs::read(format!("/proc/{}/cmdline", stat.pid))
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .filter(|a| !a.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect()
                })
                .unwrap_or_default();
            let cwd = process
                .cwd()
                .map(|path| path.as_os_str().as_bytes().to_vec())
                .unwrap_or_default();
            // Which process is a container's workload is otherwise learned from its exec; for
            // processes older than the daemon, from where their root is now.
            let workload = nix::sys::statfs::statfs(format!("/proc/{}/root", stat.pid).as_str())
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
            Some(ProcSeed {
                pid: u32::try_from(stat.pid).ok()?,
                ppid: u32::try_from(stat.ppid).ok()?,
                exe,
                comm: stat.comm.into_bytes(),
                args,
                cwd,
                workload,
            })
        })
        .collect()
}
