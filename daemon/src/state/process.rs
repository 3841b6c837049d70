//! The process table: parent and executable of every live process, so an exec event can name its
//! parent's executable even when the parent is older than the daemon.
use std::collections::VecDeque;
use std::sync::Arc;

use foldhash::HashMap;

use super::seed::ProcSeed;

/// How long an exited process stays in the table: its children's events may still be in flight.
const EXITED_GRACE_NS: u64 = 5_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    pub ppid: u32,
    /// Image facts are shared (`Arc`) between a parent and the children it forks, which run the
    /// same image until they exec: a fork copies pointers, not every argument.
    pub exe: Arc<[u8]>,
    pub comm: Vec<u8>,
    /// argv and cwd of the current image, so later events of the process can show them.
    pub args: Arc<[Vec<u8>]>,
    pub cwd: Arc<[u8]>,
    /// Boot-time nanoseconds of the exit, once it happened.
    pub exited_at: Option<u64>,
    /// When this image was exec'd (0: before the daemon started, or inherited at fork).
    pub exec_ns: u64,
    /// The image it replaced: events of the old program can arrive after the exec (they travel
    /// on another ring-buffer lane).
    pub previous: Option<Box<ProcEntry>>,
    /// Names this entry among every one the table ever held (set by the table at seed, fork and
    /// exec; never reused), so a consumer can keep what it derived from the entry (the render
    /// layer's process object) and drop it when the id is retired.
    pub image: ImageId,
    /// A container's workload, judged whatever its root is: it ran a program inside the
    /// container's root, or descends from a process that did. A process in a container's cgroup
    /// that is not (runc init before `pivot_root`, entered from the runtime on the host) is the
    /// runtime setting the container up. Decided by lineage, never by where the root is now: a
    /// workload that `chroot`s elsewhere stays a workload.
    pub workload: bool,
}

/// See [`ProcEntry::image`].
pub type ImageId = u64;

#[derive(Debug, Default)]
pub struct ProcessTable {
    procs: HashMap<u32, ProcEntry>,
    /// (exit time, pid) in the order exits arrived, so a sweep visits only the processes whose
    /// grace ended: walking the whole table every tick cost about 6% of the daemon's CPU in a
    /// connect storm that followed an exec storm (tens of thousands of exited processes).
    exits: VecDeque<(u64, u32)>,
    /// The last [`ImageId`] handed out.
    last_image: ImageId,
    /// Images that left the table since [`ProcessTable::take_retired`] was last called.
    retired: Vec<ImageId>,
}

impl ProcessTable {
    pub fn seed(&mut self, seeds: &[ProcSeed]) {
        for seed in seeds {
            if self.procs.contains_key(&seed.pid) {
                continue;
            }
            let image = self.next_image();
            self.procs.insert(
                seed.pid,
                ProcEntry {
                    ppid: seed.ppid,
                    exe: Arc::from(seed.exe.as_slice()),
                    comm: seed.comm.clone(),
                    args: Arc::from(seed.args.as_slice()),
                    cwd: Arc::from(seed.cwd.as_slice()),
                    exited_at: None,
                    exec_ns: 0,
                    previous: None,
                    image,
                    workload: seed.workload,
                },
            );
        }
    }

    fn next_image(&mut self) -> ImageId {
        self.last_image += 1;
        self.last_image
    }

    /// Records that `entry` (and the image it kept as `previous`) left the table.
    fn retire(&mut self, entry: &ProcEntry) {
        self.retired.push(entry.image);
        if let Some(previous) = &entry.previous {
            self.retired.push(previous.image);
        }
    }

    /// Images that left the table since the last call: what was derived from them can go.
    pub fn take_retired(&mut self) -> Vec<ImageId> {
        std::mem::take(&mut self.retired)
    }

    /// A new process starts as a copy of its parent's image.
    pub fn fork(&mut self, parent: u32, child: u32, comm: &[u8]) {
        // The parent's image without its `previous` one: cloning that too doubled the work of
        // every fork.
        let image = self.next_image();
        let inherited = self.procs.get(&parent).map(|p| ProcEntry {
            ppid: p.ppid,
            exe: p.exe.clone(),
            comm: Vec::new(),
            args: p.args.clone(),
            cwd: p.cwd.clone(),
            exited_at: None,
            exec_ns: p.exec_ns,
            previous: None,
            image,
            workload: p.workload,
        });
        let mut entry = inherited.unwrap_or(ProcEntry {
            ppid: parent,
            exe: Arc::default(),
            comm: Vec::new(),
            args: Arc::default(),
            cwd: Arc::default(),
            exited_at: None,
            exec_ns: 0,
            previous: None,
            image,
            workload: false,
        });
        entry.ppid = parent;
        entry.comm = comm.to_vec();
        entry.exited_at = None;
        entry.previous = None;
        // A pid reused before its predecessor's grace ended replaces it.
        if let Some(replaced) = self.procs.insert(child, entry) {
            self.retire(&replaced);
        }
    }

    /// `pid` runs a new image; the one it replaced is kept (one level) for late events. The
    /// table gives the entry its [`ImageId`].
    pub fn exec(&mut self, pid: u32, mut entry: ProcEntry) {
        entry.image = self.next_image();
        if let Some(mut old) = self.procs.remove(&pid) {
            if let Some(gone) = old.previous.take() {
                self.retired.push(gone.image);
            }
            entry.previous = Some(Box::new(old));
        }
        self.procs.insert(pid, entry);
    }

    /// The image `pid` ran at boot-time `ktime_ns`: the current one, or the one before it when
    /// the current exec came later.
    pub fn image_at(&self, pid: u32, ktime_ns: u64) -> Option<&ProcEntry> {
        let current = self.procs.get(&pid)?;
        match &current.previous {
            Some(previous) if current.exec_ns > ktime_ns => Some(previous),
            _ => Some(current),
        }
    }

    pub fn exit(&mut self, pid: u32, ktime_ns: u64) {
        if let Some(entry) = self.procs.get_mut(&pid) {
            entry.exited_at = Some(ktime_ns);
            self.exits.push_back((ktime_ns, pid));
        }
    }

    /// Forgets processes that exited more than the grace period before `now_ns`. Exits arrive
    /// nearly in time order (the lanes reorder them by microseconds), so one out of order only
    /// waits for the ones before it.
    pub fn sweep(&mut self, now_ns: u64) {
        while let Some(&(at, pid)) = self.exits.front() {
            if now_ns.saturating_sub(at) < EXITED_GRACE_NS {
                break;
            }
            self.exits.pop_front();
            // Not if the pid was reused since (its new process has not exited, or later).
            if self
                .procs
                .get(&pid)
                .is_some_and(|e| e.exited_at == Some(at))
            {
                if let Some(gone) = self.procs.remove(&pid) {
                    self.retire(&gone);
                }
            }
        }
    }

    pub fn get(&self, pid: u32) -> Option<&ProcEntry> {
        self.procs.get(&pid)
    }

    /// Every process in the table (any order).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &ProcEntry)> {
        self.procs.iter().map(|(pid, entry)| (*pid, entry))
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
            workload: false,
            pid: 10,
            ppid: 1,
            exe: b"/usr/bin/bash".to_vec(),
            comm: b"bash".to_vec(),
            args: vec![b"bash".to_vec()],
            cwd: b"/".to_vec(),
        }]);
        table.fork(10, 11, b"bash");
        assert_eq!(table.get(11).map(|p| &*p.exe), Some(&b"/usr/bin/bash"[..]));
        let parent = table.get(10).expect("seeded");
        let child = table.get(11).expect("forked");
        assert!(Arc::ptr_eq(&parent.args, &child.args), "a fork shares argv");
        table.exec(
            11,
            ProcEntry {
                ppid: 10,
                exe: Arc::from(&b"/usr/bin/id"[..]),
                comm: b"id".to_vec(),
                args: Arc::from([b"id".to_vec()]),
                cwd: Arc::from(&b"/"[..]),
                exited_at: None,
                exec_ns: 500,
                previous: None,
                image: 0,
                workload: false,
            },
        );
        assert_eq!(
            table.image_at(11, 499).map(|p| &*p.exe),
            Some(&b"/usr/bin/bash"[..]),
            "an event from before the exec sees the old image"
        );
        assert_eq!(
            table.image_at(11, 500).map(|p| &*p.exe),
            Some(&b"/usr/bin/id"[..])
        );
        assert_eq!(table.get(11).map(|p| &*p.exe), Some(&b"/usr/bin/id"[..]));
        table.exit(11, 1_000);
        table.sweep(1_000 + EXITED_GRACE_NS - 1);
        assert!(table.get(11).is_some(), "kept during the grace period");
        let (bash, id) = (
            table.get(10).map(|p| p.image),
            table.get(11).map(|p| p.image),
        );
        assert_ne!(bash, id, "every image has its own id");
        assert!(table.take_retired().is_empty());
        table.sweep(1_000 + EXITED_GRACE_NS);
        assert!(table.get(11).is_none());
        assert_eq!(table.len(), 1);
        let old = table.take_retired();
        assert_eq!(old.len(), 2, "the swept image and the one it replaced");
        assert!(id.is_some_and(|id| old.contains(&id)));
    }

    #[test]
    fn a_reused_pid_outlives_the_sweep_of_its_predecessor() {
        let mut table = ProcessTable::default();
        table.fork(1, 20, b"a");
        table.exit(20, 1_000);
        // The pid comes back before the first one's grace ends.
        table.fork(1, 20, b"b");
        table.fork(1, 21, b"c");
        table.exit(21, 2_000);
        table.sweep(2_000 + EXITED_GRACE_NS);
        assert_eq!(table.get(20).map(|p| &p.comm[..]), Some(&b"b"[..]));
        assert!(table.get(21).is_none(), "its own exit's grace ended");
        table.exit(20, 3_000);
        table.sweep(3_000 + EXITED_GRACE_NS - 1);
        assert!(table.get(20).is_some(), "kept during its own grace period");
        table.sweep(3_000 + EXITED_GRACE_NS);
        assert!(table.is_empty());
        assert!(table.exits.is_empty(), "the queue holds no stale exits");
    }
}
