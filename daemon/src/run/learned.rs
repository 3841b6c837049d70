//! When the addresses DNS answers added to the kernel's allowlists expire: each (workload,
//! address) leaves the kernel when its TTL runs out, unless an answer taught it again meanwhile,
//! which pushes its expiry out. Kept apart from the enforcer so the bookkeeping is testable
//! without a kernel.
use std::{
    collections::{BTreeSet, HashMap},
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use crate::net::names::{MAX_TTL_NS, MIN_TTL_NS};

/// The kernel's key for a workload.
pub type WorkloadKey = u32;

/// Learned addresses by expiry.
#[derive(Debug, Default)]
pub struct LearnedAddresses {
    /// (expiry, workload, address); an entry older than `until` says is stale.
    by_expiry: BTreeSet<(Instant, WorkloadKey, Ipv6Addr)>,
    /// The current expiry of each learned (workload, address).
    until: HashMap<(WorkloadKey, Ipv6Addr), Instant>,
}

impl LearnedAddresses {
    /// `addr` was allowed for `workload` at `now` by an answer with `ttl_secs`, clamped as the
    /// user-space name table clamps it (so the kernel and the lines agree). Keeps the later of
    /// its current and its new expiry.
    pub fn learned(&mut self, workload: WorkloadKey, addr: Ipv6Addr, ttl_secs: u32, now: Instant) {
        let ttl = Duration::from_secs(u64::from(ttl_secs)).clamp(
            Duration::from_nanos(MIN_TTL_NS),
            Duration::from_nanos(MAX_TTL_NS),
        );
        let expires = now + ttl;
        let current = self.until.entry((workload, addr)).or_insert(expires);
        if *current < expires {
            *current = expires;
        }
        self.by_expiry.insert((*current, workload, addr));
    }

    /// Takes the (workload, address) pairs whose expiry is `now` or earlier.
    pub fn take_expired(&mut self, now: Instant) -> Vec<(WorkloadKey, Ipv6Addr)> {
        let mut gone = Vec::new();
        while let Some(&(expires, workload, addr)) = self.by_expiry.first() {
            if expires > now {
                break;
            }
            self.by_expiry.pop_first();
            // Taught again since: a later entry stands for it.
            if self.until.get(&(workload, addr)) != Some(&expires) {
                continue;
            }
            self.until.remove(&(workload, addr));
            gone.push((workload, addr));
        }
        gone
    }

    /// Forgets everything (a new policy rebuilds the allowlists).
    pub fn clear(&mut self) {
        self.by_expiry.clear();
        self.until.clear();
    }

    /// (workload, address) pairs learned and not expired.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn addr(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, last)
    }

    #[test]
    fn an_address_leaves_when_its_ttl_runs_out() {
        let t0 = Instant::now();
        let mut learned = LearnedAddresses::default();
        learned.learned(1, addr(1), 60, t0);
        learned.learned(2, addr(1), 120, t0);
        assert!(learned.take_expired(t0 + 59 * S).is_empty());
        assert_eq!(learned.take_expired(t0 + 60 * S), [(1, addr(1))]);
        assert_eq!(learned.len(), 1, "the other workload's entry stays");
        assert_eq!(learned.take_expired(t0 + 120 * S), [(2, addr(1))]);
        assert!(learned.is_empty());
    }

    #[test]
    fn learning_again_refreshes_and_never_shortens() {
        let t0 = Instant::now();
        let mut learned = LearnedAddresses::default();
        learned.learned(1, addr(1), 60, t0);
        learned.learned(1, addr(1), 60, t0 + 50 * S);
        // A shorter TTL later does not cut the standing expiry.
        learned.learned(1, addr(1), 30, t0 + 55 * S);
        assert!(learned.take_expired(t0 + 100 * S).is_empty());
        assert_eq!(learned.take_expired(t0 + 110 * S), [(1, addr(1))]);
        assert!(learned.take_expired(t0 + 1000 * S).is_empty(), "once");
    }

    #[test]
    fn ttls_have_a_floor_and_a_ceiling() {
        let t0 = Instant::now();
        let mut learned = LearnedAddresses::default();
        learned.learned(1, addr(1), 0, t0);
        learned.learned(1, addr(2), u32::MAX, t0);
        let floor = Duration::from_nanos(MIN_TTL_NS);
        let day = Duration::from_nanos(MAX_TTL_NS);
        assert!(learned.take_expired(t0 + floor - S).is_empty());
        assert_eq!(learned.take_expired(t0 + floor), [(1, addr(1))]);
        assert!(learned.take_expired(t0 + day - S).is_empty());
        assert_eq!(learned.take_expired(t0 + day), [(1, addr(2))]);
        learned.learned(1, addr(3), 10, t0);
        learned.clear();
        assert!(learned.is_empty() && learned.take_expired(t0 + day).is_empty());
    }
}
