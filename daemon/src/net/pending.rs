//! DNS queries containers sent that no answer has matched yet: an answer is evidence only when it
//! answers one of them.
//!
//! A container's root can send itself a datagram from port 53, or have a peer send one nobody
//! asked for; either would teach sealwatch any address for an allowed name. So an answer counts
//! only when it repeats the id and the questions of a query the same container sent, comes from
//! the address and port that query went to, and goes to the address and port it came from; and
//! never when it comes from inside the container's own network namespace (over loopback, or from
//! the container's own address), where the container itself could have sent it.
//!
//! Time is boot-time nanoseconds from event timestamps, and containers are kept in an ordered
//! map, so a replay gives the same verdicts. Memory is bounded per container and overall; a
//! query pushed out before it expired is counted.
use std::collections::{BTreeMap, VecDeque};

use super::dns::Question;
use crate::event::DnsEnds;

const NS_PER_SEC: u64 = 1_000_000_000;
/// `ifindex` of the loopback device, in every network namespace.
pub const LOOPBACK_IFINDEX: u32 = 1;

/// How much the table may hold, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimits {
    /// Queries waiting per container; beyond it its oldest goes.
    pub per_container: usize,
    /// Queries waiting on the node; beyond it the oldest of the container with most goes, so
    /// one container flooding queries pushes out its own first.
    pub total: usize,
    /// How long a query waits for its answer (stub resolvers give up after about 5 s).
    pub wait_ns: u64,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            per_container: 256,
            total: 16_384,
            wait_ns: 5 * NS_PER_SEC,
        }
    }
}

/// A DNS message as the matching sees it: one side of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub tcp: bool,
    pub ends: DnsEnds,
    pub id: u16,
    pub questions: Vec<Question>,
}

/// Why an answer taught nothing; the `reason` label of the rejected-answers metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// No query of this container waits with the answer's id on the port it came to.
    Unsolicited,
    /// It came over loopback or from the container's own address: the container may have sent it.
    Loopback,
    /// A query with that id waits there, but the answer comes from another server or port, or
    /// repeats other questions.
    Mismatch,
}

impl Rejection {
    pub const ALL: [Rejection; 3] = [
        Rejection::Unsolicited,
        Rejection::Loopback,
        Rejection::Mismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unsolicited => "unsolicited",
            Rejection::Loopback => "loopback",
            Rejection::Mismatch => "mismatch",
        }
    }
}

/// Queries waiting for their answer, per container.
#[derive(Debug, Default)]
pub struct PendingQueries {
    limits: PendingLimits,
    /// Container id → its queries, oldest first, each with the time it stops waiting.
    containers: BTreeMap<String, VecDeque<(u64, Exchange)>>,
    total: usize,
    evicted: u64,
}

impl PendingQueries {
    pub fn new(limits: PendingLimits) -> PendingQueries {
        PendingQueries {
            limits,
            ..PendingQueries::default()
        }
    }

    /// `container` sent `query` at `now_ns`. The same query again (a retransmission) waits anew.
    pub fn sent(&mut self, container: &str, query: Exchange, now_ns: u64) {
        if self.limits.per_container == 0 || self.limits.total == 0 {
            return;
        }
        let expires = now_ns.saturating_add(self.limits.wait_ns);
        let queue = self.containers.entry(container.to_owned()).or_default();
        if let Some(at) = queue.iter().position(|(_, q)| *q == query) {
            queue.remove(at);
            self.total -= 1;
        }
        while queue.len() >= self.limits.per_container {
            queue.pop_front();
            self.total -= 1;
            self.evicted += 1;
        }
        queue.push_back((expires, query));
        self.total += 1;
        while self.total > self.limits.total {
            self.evict_from_largest();
        }
    }

    /// Whether `answer`, received by `container` at `now_ns` on interface `ifindex` (0: not
    /// known), answers a query it sent; the query it answers stops waiting.
    pub fn answered(
        &mut self,
        container: &str,
        answer: &Exchange,
        ifindex: u32,
        now_ns: u64,
    ) -> Result<(), Rejection> {
        let ends = &answer.ends;
        if ifindex == LOOPBACK_IFINDEX || ends.peer.is_loopback() || ends.peer == ends.local {
            return Err(Rejection::Loopback);
        }
        let queue = self
            .containers
            .get_mut(container)
            .ok_or(Rejection::Unsolicited)?;
        let mut waiting = queue.iter().enumerate().filter(|(_, (expires, q))| {
            *expires > now_ns
                && q.tcp == answer.tcp
                && q.id == answer.id
                && q.ends.local_port == ends.local_port
        });
        let mut found = false;
        let matched = waiting.find_map(|(at, (_, q))| {
            found = true;
            let same = q.ends == *ends && q.questions == answer.questions;
            same.then_some(at)
        });
        match matched {
            Some(at) => {
                queue.remove(at);
                self.total -= 1;
                if queue.is_empty() {
                    self.containers.remove(container);
                }
                Ok(())
            }
            None if found => Err(Rejection::Mismatch),
            None => Err(Rejection::Unsolicited),
        }
    }

    /// Drops the queries that stopped waiting, and containers left with none.
    pub fn expire(&mut self, now_ns: u64) {
        let mut dropped = 0;
        self.containers.retain(|_, queue| {
            let before = queue.len();
            queue.retain(|(expires, _)| *expires > now_ns);
            dropped += before - queue.len();
            !queue.is_empty()
        });
        self.total -= dropped;
    }

    /// Drops a container's queries (it exited).
    pub fn forget_container(&mut self, container: &str) {
        if let Some(queue) = self.containers.remove(container) {
            self.total -= queue.len();
        }
    }

    /// Queries waiting, all containers together.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Queries pushed out by the bounds before they expired.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn evict_from_largest(&mut self) {
        // Most queries first, then the lowest id: deterministic.
        let largest = self
            .containers
            .iter()
            .max_by(|a, b| a.1.len().cmp(&b.1.len()).then(b.0.cmp(a.0)))
            .map(|(id, _)| id.clone());
        let Some(id) = largest else {
            return;
        };
        if let Some(queue) = self.containers.get_mut(&id) {
            queue.pop_front();
            self.total -= 1;
            self.evicted += 1;
            if queue.is_empty() {
                self.containers.remove(&id);
            }
        }
    }
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
