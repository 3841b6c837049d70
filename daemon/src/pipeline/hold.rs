//! Events waiting for facts from outside: their container's metadata, or where a path comes from
//! (image or not). Bounded in time (by event timestamps, so replay releases them at the same
//! point) and in size; what leaves by timeout is printed with what is known.
use std::collections::VecDeque;

use crate::event::{ExecRecord, FileRecord, NetRecord};

#[derive(Debug, Clone)]
pub enum Waiting {
    Exec {
        exec: ExecRecord,
        parent_exe: Option<std::sync::Arc<[u8]>>,
        /// Script run through an interpreter, when there is one.
        script: Option<Vec<u8>>,
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
            Waiting::Exec { script, .. } => script.iter().map(Vec::as_slice).collect(),
            Waiting::File {
                paths,
                needs_origin: true,
                ..
            } => paths.iter().map(Vec::as_slice).collect(),
            Waiting::File { .. } | Waiting::Net(_) => Vec::new(),
        }
    }

    /// A process of the event's container (its mount table names the layers).
    pub fn pid(&self) -> u32 {
        match &self.what {
            Waiting::Exec { exec, .. } => exec.task.pid,
            Waiting::File { file, .. } => file.task.pid,
            Waiting::Net(net) => net.task.pid,
        }
    }
}

#[derive(Debug, Default)]
pub struct HoldQueue {
    queue: VecDeque<Held>,
}

/// More than this many held events release the oldest early.
pub const HOLD_MAX_EVENTS: usize = 4096;

impl HoldQueue {
    pub fn push(&mut self, held: Held) -> Option<Held> {
        self.queue.push_back(held);
        if self.queue.len() > HOLD_MAX_EVENTS {
            return self.queue.pop_front();
        }
        None
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
}
