//! The process table: parent and executable of every live process, so an exec event can name its
//! parent's executable even when the parent is older than the daemon.
use std::collections::HashMap;

use super::seed::ProcSeed;

/// How long an exited process stays in the table: its children's events may still be in flight.
const EXITED_GRACE_NS: u64 = 5_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    pub ppid: u32,
    pub exe: Vec<u8>,
    pub comm: Vec<u8>,
    /// Boot-time nanoseconds of the exit, once it happened.
    pub exited_at: Option<u64>,
}

#[derive(Debug, Default)]
pub struct ProcessTable {
    procs: HashMap<u32, ProcEntry>,
}

impl ProcessTable {
    pub fn seed(&mut self, seeds: &[ProcSeed]) {
        for seed in seeds {
            self.procs.entry(seed.pid).or_insert_with(|| ProcEntry {
                ppid: seed.ppid,
                exe: seed.exe.clone(),
                comm: seed.comm.clone(),
                exited_at: None,
            });
        }
    }

    /// A new process starts as a copy of its parent's image.
    pub fn fork(&mut self, parent: u32, child: u32, comm: &[u8]) {
        let exe = self
            .procs
            .get(&parent)
            .map(|p| p.exe.clone())
            .unwrap_or_default();
        self.procs.insert(
            child,
            ProcEntry {
                ppid: parent,
                exe,
                comm: comm.to_vec(),
                exited_at: None,
            },
        );
    }

    pub fn exec(&mut self, pid: u32, ppid: u32, exe: &[u8], comm: &[u8]) {
        self.procs.insert(
            pid,
            ProcEntry {
                ppid,
                exe: exe.to_vec(),
                comm: comm.to_vec(),
                exited_at: None,
            },
        );
    }

    pub fn exit(&mut self, pid: u32, ktime_ns: u64) {
        if let Some(entry) = self.procs.get_mut(&pid) {
            entry.exited_at = Some(ktime_ns);
        }
    }

    /// Forgets processes that exited more than the grace period before `now_ns`.
    pub fn sweep(&mut self, now_ns: u64) {
        self.procs.retain(|_, entry| match entry.exited_at {
            Some(at) => now_ns.saturating_sub(at) < EXITED_GRACE_NS,
            None => true,
        });
    }

    pub fn get(&self, pid: u32) -> Option<&ProcEntry> {
        self.procs.get(&pid)
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_inherits_exe_exec_replaces_it_exit_is_swept_after_grace() {
        let mut table = ProcessTable::default();
        table.seed(&[ProcSeed {
            pid: 10,
            ppid: 1,
            exe: b"/usr/bin/bash".to_vec(),
            comm: b"bash".to_vec(),
        }]);
        table.fork(10, 11, b"bash");
        assert_eq!(
            table.get(11).map(|p| p.exe.as_slice()),
            Some(&b"/usr/bin/bash"[..])
        );
        table.exec(11, 10, b"/usr/bin/id", b"id");
        assert_eq!(
            table.get(11).map(|p| p.exe.as_slice()),
            Some(&b"/usr/bin/id"[..])
        );
        table.exit(11, 1_000);
        table.sweep(1_000 + EXITED_GRACE_NS - 1);
        assert!(table.get(11).is_some(), "kept during the grace period");
        table.sweep(1_000 + EXITED_GRACE_NS);
        assert!(table.get(11).is_none());
        assert_eq!(table.len(), 1);
    }
}
