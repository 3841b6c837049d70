//! Events waiting for their container's metadata. Bounded in time (by event timestamps, so replay
//! releases them at the same point) and in size; what leaves by timeout is marked `pending`.
use std::collections::VecDeque;

use crate::event::ExecRecord;

/// An exec whose line cannot be written yet.
#[derive(Debug, Clone)]
pub struct Held {
    pub exec: ExecRecord,
    pub parent_exe: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
pub struct HoldQueue {
    queue: VecDeque<Held>,
}

/// More than this many held events release the oldest early (marked pending).
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
        self.queue
            .iter()
            .any(|h| h.exec.task.cgroup_id == cgroup_id)
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
