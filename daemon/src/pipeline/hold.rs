//! Events waiting for facts from outside: their container's metadata, or where a path comes from
//! (image or not); and path-based file records waiting for their syscall's result. Bounded in
//! time (by event timestamps, so replay releases them at the same point) and in size; what leaves
//! by timeout is printed with what is known. Asking for the missing facts happens here too.
use std::collections::VecDeque;

use foldhash::HashMap;

use super::{Pipeline, Request};
use crate::{
    event::{model::FileOp, ExecRecord, FileRecord, NetRecord},
    output::LineSink,
    state::{CgroupLookup, MetaState},
};

/// File records travel on the bulk lane, exec records on the critical lane: a file event can
/// overtake the exec of the process that made it. It is judged only once a tick at least this
/// much later has passed, so the process table shows the right program.
const LANE_SKEW_NS: u64 = 50_000_000;

#[derive(Debug, Clone)]
pub enum Waiting {
    Exec {
        exec: ExecRecord,
        parent_exe: Option<std::sync::Arc<[u8]>>,
        /// Script run through an interpreter, when there is one.
        script: Option<Vec<u8>>,
        /// The executable's own path, when the kernel could not tell its layer.
        exe_lookup: Option<Vec<u8>>,
        /// The login session this exec opens, decided at arrival.
        login: Option<Box<super::logins::SessionStart>>,
        /// The session the process belongs to.
        session_id: Option<String>,
    },
    File {
        file: FileRecord,
        /// Container-relative paths the verdict is about (two for renames).
        paths: Vec<Vec<u8>>,
        /// The kernel could not tell the layer: the paths' origins must be looked up.
        needs_origin: bool,
    },
    /// A connection, accept or listener: judged once the container's workload is known.
    Net(NetRecord),
}

#[derive(Debug, Clone)]
pub struct Held {
    pub cgroup_id: u64,
    pub ktime_ns: u64,
    pub what: Waiting,
}

impl Held {
    /// Paths whose origin the verdict needs.
    pub fn paths(&self) -> Vec<&[u8]> {
        match &self.what {
            Waiting::Exec {
                script, exe_lookup, ..
            } => script.iter().chain(exe_lookup).map(Vec::as_slice).collect(),
            Waiting::File {
                paths,
                needs_origin: true,
                ..
            } => paths.iter().map(Vec::as_slice).collect(),
            Waiting::File { .. } | Waiting::Net(_) => Vec::new(),
        }
    }

    /// Whether the operation acts on the target of a symlink named as its last component: a
    /// script is opened through it, as are chmod, chown (lchown is taken as chown: judging the
    /// target can only add a verdict), truncate and opens; unlink, rename and create act on the
    /// name itself.
    pub fn follows_last(&self) -> bool {
        match &self.what {
            Waiting::File { file, .. } => {
                !matches!(file.op, FileOp::Unlink | FileOp::Rename | FileOp::Create)
            }
            Waiting::Exec { .. } | Waiting::Net(_) => true,
        }
    }

    /// A process of the event's container (its mount table names the layers).
    pub fn pid(&self) -> u32 {
        match &self.what {
            Waiting::Exec { exec, .. } => exec.task.pid,
            // A chrooted process's own root is the chroot: another process of the container
            // resolves its path (0 names none, so the resolver takes any of the container's).
            Waiting::File { file, .. } if file.root.is_some() => 0,
            Waiting::File { file, .. } => file.task.pid,
            Waiting::Net(net) => net.task.pid,
        }
    }
}

#[derive(Debug, Default)]
pub struct HoldQueue {
    queue: VecDeque<Held>,
    /// Path-based file records waiting for their syscall's result, by thread id.
    files: HashMap<u32, FileRecord>,
}

/// More than this many held events release the oldest early.
pub const HOLD_MAX_EVENTS: usize = 4096;

/// Path-based records waiting for their result, at most (one per thread, or per io_uring
/// request, in flight).
const PARKED_MAX: usize = 16_384;
/// A parked record older than this will not get its result.
const PARKED_STALE_NS: u64 = 1_000_000_000;

impl HoldQueue {
    pub fn push(&mut self, held: Held) -> Option<Held> {
        self.queue.push_back(held);
        if self.queue.len() > HOLD_MAX_EVENTS {
            return self.queue.pop_front();
        }
        None
    }

    /// Whether any held event satisfies `test`.
    pub fn any(&self, test: impl FnMut(&Held) -> bool) -> bool {
        self.queue.iter().any(test)
    }

    pub fn is_holding(&self, cgroup_id: u64) -> bool {
        self.queue.iter().any(|h| h.cgroup_id == cgroup_id)
    }

    /// Removes and returns, in arrival order, the events `ready` accepts.
    pub fn take(&mut self, mut ready: impl FnMut(&Held) -> bool) -> Vec<Held> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for held in self.queue.drain(..) {
            if ready(&held) {
                taken.push(held);
            } else {
                kept.push_back(held);
            }
        }
        self.queue = kept;
        taken
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Keeps a file record until its thread's syscall result arrives. Bounded: results come
    /// within microseconds, so when the table is full the records waiting for more than a
    /// second are given up; if it is still full, the new one is. Returns how many were given
    /// up (their results never came: a thread killed in the syscall, a result the kernel lost).
    pub fn park_file(&mut self, file: FileRecord) -> u64 {
        let mut given_up = 0;
        if self.files.len() >= PARKED_MAX && !self.files.contains_key(&file.task.tid) {
            let now = file.task.ktime_ns;
            let before = self.files.len();
            self.files
                .retain(|_, parked| now.saturating_sub(parked.task.ktime_ns) < PARKED_STALE_NS);
            given_up = (before - self.files.len()) as u64;
            if self.files.len() >= PARKED_MAX {
                return given_up + 1;
            }
        }
        self.files.insert(file.task.tid, file);
        given_up
    }

    /// The file record waiting for thread `tid`'s syscall result.
    pub fn take_file(&mut self, tid: u32) -> Option<FileRecord> {
        self.files.remove(&tid)
    }
}

impl Pipeline {
    /// Emits `held` now if everything its verdict needs is known, else holds it (and asks).
    pub(super) fn hold_or_emit(&mut self, held: Held, sink: &mut dyn LineSink) {
        let must_wait = !self.is_ready(&held);
        self.ask_for(&held);
        // Later events of a cgroup wait behind earlier ones, so a container's lines stay in order.
        if must_wait || self.held.is_holding(held.cgroup_id) {
            if let Some(oldest) = self.held.push(held) {
                self.emit(oldest, sink);
            }
        } else {
            self.emit(held, sink);
        }
    }

    fn is_ready(&self, held: &Held) -> bool {
        if matches!(held.what, Waiting::File { .. })
            && self.state.now_ns < held.ktime_ns.saturating_add(LANE_SKEW_NS)
        {
            return false;
        }
        match self.state.containers.lookup(held.cgroup_id) {
            CgroupLookup::Unknown => false,
            CgroupLookup::Host => true,
            CgroupLookup::Container(entry) => {
                entry.meta != MetaState::Pending
                    && held
                        .paths()
                        .iter()
                        .all(|path| self.state.origins.knows(&entry.info.id, path))
            }
        }
    }

    /// Asks (once) for what `held` is missing: the cgroup's path, or where its paths come from.
    fn ask_for(&mut self, held: &Held) {
        let state = &mut self.state;
        match state.containers.lookup(held.cgroup_id) {
            CgroupLookup::Unknown => {
                if state.asked_paths.insert(held.cgroup_id) {
                    self.requests.push(Request::CgroupPath(held.cgroup_id));
                }
            }
            CgroupLookup::Host => {}
            CgroupLookup::Container(entry) => {
                let missing: Vec<Vec<u8>> = held
                    .paths()
                    .into_iter()
                    .filter(|path| state.origins.ask(&entry.info.id, path))
                    .map(<[u8]>::to_vec)
                    .collect();
                if !missing.is_empty() {
                    self.requests.push(Request::PathOrigins {
                        container_id: entry.info.id.clone(),
                        pid: held.pid(),
                        paths: missing,
                        follow_last: held.follows_last(),
                    });
                }
            }
        }
    }

    /// Forgets the container's path answers once no held event needs them: an answer is true
    /// for the moment it was given, not for later events (see `state::origins`).
    pub(super) fn settle_origins(&mut self, container_id: &str) {
        let state = &self.state;
        let held = &self.held;
        let needed: Vec<Vec<u8>> = state
            .origins
            .known_paths(container_id)
            .filter(|path| {
                held.any(|h| {
                    state
                        .container(h.cgroup_id)
                        .is_some_and(|entry| entry.info.id == container_id)
                        && h.paths().contains(&path.as_slice())
                })
            })
            .collect();
        self.state
            .origins
            .settle(container_id, |path| needed.iter().any(|n| n == path));
    }

    /// Emits held events that are resolved, or that `force` says must go now.
    pub(super) fn release(
        &mut self,
        sink: &mut dyn LineSink,
        mut force: impl FnMut(&Held) -> bool,
    ) {
        if self.held.is_empty() {
            return;
        }
        // Events whose container just became known may now need path lookups.
        let snapshot: Vec<Held> = self.held.take(|_| true);
        for held in &snapshot {
            self.ask_for(held);
        }
        let mut ready = Vec::new();
        for held in snapshot {
            if self.is_ready(&held) || force(&held) {
                ready.push(held);
            } else if let Some(oldest) = self.held.push(held) {
                ready.push(oldest);
            }
        }
        for held in ready {
            self.emit(held, sink);
        }
    }

    fn emit(&mut self, held: Held, sink: &mut dyn LineSink) {
        match held.what {
            Waiting::Exec {
                exec,
                parent_exe,
                script,
                login,
                session_id,
                ..
            } => self.emit_exec(exec, parent_exe, script, login, session_id, sink),
            Waiting::File { file, paths, .. } => self.emit_file(file, paths, sink),
            Waiting::Net(net) => self.emit_net(net, sink),
        }
    }
}

#[cfg(test)]
mod parked_tests {
    use super::*;
    use crate::{
        event::model::FileOp,
        pipeline::test_support::{path_record, task_100},
    };

    fn record(tid: u32, ktime_ns: u64) -> FileRecord {
        let task = crate::event::Task {
            tid,
            ..task_100(ktime_ns, 7, b"rm")
        };
        FileRecord {
            needs_result: true,
            ..path_record(task, FileOp::Unlink, b"x")
        }
    }

    /// Records whose results never come cannot grow the table without end: stale ones are given
    /// up first, then new ones, and each is counted.
    #[test]
    fn records_waiting_for_results_are_bounded_and_counted() {
        let mut held = HoldQueue::default();
        for tid in 0..PARKED_MAX as u32 {
            assert_eq!(held.park_file(record(tid, 1)), 0);
        }
        // Still fresh: the new record is the one given up.
        assert_eq!(held.park_file(record(1 << 30, 2)), 1);
        assert_eq!(held.files.len(), PARKED_MAX);
        // A second later every waiting one is stale.
        assert_eq!(
            held.park_file(record(1 << 30, 2 + PARKED_STALE_NS)),
            PARKED_MAX as u64
        );
        assert!(held.take_file(1 << 30).is_some());
    }
}
