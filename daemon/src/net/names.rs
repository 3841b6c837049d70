//! Which DNS names each container resolved to which addresses, so name-based rules can judge a
//! connection to a bare address.
//!
//! Time is boot-time nanoseconds taken from event timestamps only, and every output is built from
//! ordered maps, so a replay of the same events gives the same names. Memory is bounded per
//! container (a container flooding DNS answers evicts only its own entries) and in the number of
//! containers.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::canonical;
use super::dns::DnsAnswer;

const NS_PER_SEC: u64 = 1_000_000_000;
/// Clients connect right after resolving, even with TTL 0 (or 1), and keep using an address a
/// while after its TTL (connection pools, resolvers' own caches): every answer counts at least
/// this long, here and in the kernel's allowlist (`run::learned`).
pub const MIN_TTL_NS: u64 = 30 * NS_PER_SEC;
/// Longer TTLs are cut to a day so a forged or misconfigured answer does not stick for weeks.
pub const MAX_TTL_NS: u64 = 86_400 * NS_PER_SEC;

/// How much the cache may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameCacheLimits {
    /// (address, name) pairs per container; beyond it the soonest-expiring pairs go first.
    pub max_entries_per_container: usize,
    /// Containers remembered; beyond it the one that learned least recently goes.
    pub max_containers: usize,
}

impl Default for NameCacheLimits {
    fn default() -> Self {
        NameCacheLimits {
            max_entries_per_container: 4096,
            max_containers: 1024,
        }
    }
}

/// Per container: address → names, each with its expiry (boot-time ns).
#[derive(Debug, Default)]
pub struct NameCache {
    limits: NameCacheLimits,
    containers: BTreeMap<String, Names>,
    evicted_entries: u64,
    evicted_containers: u64,
}

#[derive(Debug, Default)]
struct Names {
    by_addr: BTreeMap<IpAddr, BTreeMap<Arc<str>, u64>>,
    /// The same entries ordered by expiry, for expiry and eviction.
    by_expiry: BTreeSet<(u64, IpAddr, Arc<str>)>,
    last_learned_ns: u64,
}

impl NameCache {
    pub fn new(limits: NameCacheLimits) -> NameCache {
        NameCache {
            limits,
            ..NameCache::default()
        }
    }

    /// Remembers what `answer` told `container` at `now_ns`. A pair already known keeps the later
    /// of its two expiries.
    pub fn learn(&mut self, container: &str, answer: &DnsAnswer, now_ns: u64) {
        if answer.is_empty() || self.limits.max_entries_per_container == 0 {
            return;
        }
        if !self.containers.contains_key(container) {
            self.make_room_for_container();
        }
        let names = self.containers.entry(container.to_owned()).or_default();
        names.last_learned_ns = names.last_learned_ns.max(now_ns);
        for (name, addrs) in &answer.names {
            let name: Arc<str> = Arc::from(name.as_str());
            for &(addr, ttl) in addrs {
                names.insert(canonical(addr), &name, expiry(now_ns, ttl));
            }
        }
        names.remove_expired(now_ns);
        while names.by_expiry.len() > self.limits.max_entries_per_container {
            if names.pop_soonest().is_none() {
                break;
            }
            self.evicted_entries += 1;
        }
    }

    /// The unexpired names `container` resolved to `addr`, sorted, each once.
    pub fn names_for(&self, container: &str, addr: IpAddr, now_ns: u64) -> Vec<&str> {
        self.containers
            .get(container)
            .and_then(|names| names.by_addr.get(&canonical(addr)))
            .into_iter()
            .flatten()
            .filter(|(_, &expiry)| expiry > now_ns)
            .map(|(name, _)| &**name)
            .collect()
    }

    /// Drops everything learned for a container (it exited).
    pub fn forget_container(&mut self, container: &str) {
        self.containers.remove(container);
    }

    /// Drops expired entries, and containers left with none.
    pub fn expire(&mut self, now_ns: u64) {
        self.containers.retain(|_, names| {
            names.remove_expired(now_ns);
            !names.by_expiry.is_empty()
        });
    }

    /// (address, name) pairs held, all containers together.
    pub fn len(&self) -> usize {
        self.containers.values().map(|n| n.by_expiry.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.containers.values().all(|n| n.by_expiry.is_empty())
    }

    pub fn containers(&self) -> usize {
        self.containers.len()
    }

    /// Pairs dropped before they expired because their container was at its limit.
    pub fn evicted_entries(&self) -> u64 {
        self.evicted_entries
    }

    /// Containers dropped (with all their pairs) because the cache held too many.
    pub fn evicted_containers(&self) -> u64 {
        self.evicted_containers
    }

    fn make_room_for_container(&mut self) {
        while self.containers.len() >= self.limits.max_containers {
            let oldest = self
                .containers
                .iter()
                .min_by_key(|(id, names)| (names.last_learned_ns, *id))
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { return };
            self.containers.remove(&oldest);
            self.evicted_containers += 1;
        }
    }
}

impl Names {
    fn insert(&mut self, addr: IpAddr, name: &Arc<str>, expiry: u64) {
        let by_name = self.by_addr.entry(addr).or_default();
        match by_name.get_mut(&**name) {
            Some(current) if *current >= expiry => {}
            Some(current) => {
                let old = *current;
                *current = expiry;
                let key = Arc::clone(name);
                self.by_expiry.remove(&(old, addr, key));
                self.by_expiry.insert((expiry, addr, Arc::clone(name)));
            }
            None => {
                by_name.insert(Arc::clone(name), expiry);
                self.by_expiry.insert((expiry, addr, Arc::clone(name)));
            }
        }
    }

    fn remove_expired(&mut self, now_ns: u64) {
        while self
            .by_expiry
            .first()
            .is_some_and(|(expiry, _, _)| *expiry <= now_ns)
        {
            self.pop_soonest();
        }
    }

    fn pop_soonest(&mut self) -> Option<()> {
        let (_, addr, name) = self.by_expiry.pop_first()?;
        if let Some(by_name) = self.by_addr.get_mut(&addr) {
            by_name.remove(&name);
            if by_name.is_empty() {
                self.by_addr.remove(&addr);
            }
        }
        Some(())
    }
}

fn expiry(now_ns: u64, ttl_secs: u32) -> u64 {
    let ttl_ns = u64::from(ttl_secs).saturating_mul(NS_PER_SEC);
    now_ns.saturating_add(ttl_ns.clamp(MIN_TTL_NS, MAX_TTL_NS))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const S: u64 = NS_PER_SEC;

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn answer(entries: &[(&str, &[(&str, u32)])]) -> DnsAnswer {
        DnsAnswer {
            names: entries
                .iter()
                .map(|(name, addrs)| {
                    (
                        (*name).to_owned(),
                        addrs.iter().map(|(a, ttl)| (addr(a), *ttl)).collect(),
                    )
                })
                .collect(),
            ..DnsAnswer::default()
        }
    }

    #[test]
    fn names_are_per_container_sorted_and_expire() {
        let mut cache = NameCache::default();
        cache.learn(
            "c1",
            &answer(&[
                ("b.test", &[("10.0.0.1", 60)]),
                ("a.test", &[("10.0.0.1", 30), ("fd00::1", 30)]),
            ]),
            100 * S,
        );
        let ip = addr("10.0.0.1");
        assert_eq!(cache.names_for("c1", ip, 100 * S), ["a.test", "b.test"]);
        assert!(cache.names_for("c2", ip, 100 * S).is_empty());
        assert_eq!(cache.names_for("c1", ip, 130 * S), ["b.test"]);
        assert!(cache.names_for("c1", ip, 160 * S).is_empty());
        assert_eq!(cache.len(), 3);
        cache.expire(130 * S);
        assert_eq!(cache.len(), 1);
        cache.expire(160 * S);
        assert!(cache.is_empty());
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let mut cache = NameCache::default();
        cache.learn("c", &answer(&[("a.test", &[("::ffff:10.0.0.1", 60)])]), 0);
        cache.learn("c", &answer(&[("b.test", &[("10.0.0.1", 60)])]), 0);
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(cache.names_for("c", mapped, S), ["a.test", "b.test"]);
        assert_eq!(
            cache.names_for("c", addr("10.0.0.1"), S),
            ["a.test", "b.test"]
        );
        assert!(cache
            .names_for("c", IpAddr::V6(Ipv6Addr::LOCALHOST), S)
            .is_empty());
    }

    #[test]
    fn ttls_get_a_grace_and_a_cap() {
        let mut cache = NameCache::default();
        cache.learn("c", &answer(&[("zero.test", &[("10.0.0.1", 0)])]), 10 * S);
        cache.learn(
            "c",
            &answer(&[("forever.test", &[("10.0.0.2", u32::MAX)])]),
            10 * S,
        );
        assert_eq!(
            cache.names_for("c", addr("10.0.0.1"), 39 * S),
            ["zero.test"]
        );
        assert!(cache.names_for("c", addr("10.0.0.1"), 40 * S).is_empty());
        let day = 86_400 * S;
        assert_eq!(
            cache.names_for("c", addr("10.0.0.2"), 9 * S + day),
            ["forever.test"]
        );
        assert!(cache
            .names_for("c", addr("10.0.0.2"), 10 * S + day)
            .is_empty());
    }

    #[test]
    fn a_repeated_answer_keeps_the_later_expiry() {
        let mut cache = NameCache::default();
        cache.learn("c", &answer(&[("a.test", &[("10.0.0.1", 100)])]), 0);
        cache.learn("c", &answer(&[("a.test", &[("10.0.0.1", 10)])]), 5 * S);
        cache.learn("c", &answer(&[("a.test", &[("10.0.0.1", 200)])]), 10 * S);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.names_for("c", addr("10.0.0.1"), 209 * S), ["a.test"]);
        cache.expire(210 * S);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_container_evicts_its_soonest_expiring_entries() {
        let mut cache = NameCache::new(NameCacheLimits {
            max_entries_per_container: 3,
            max_containers: 10,
        });
        cache.learn("other", &answer(&[("keep.test", &[("10.9.9.9", 1)])]), 0);
        for (i, ttl) in [(1, 100u32), (2, 50), (3, 300), (4, 200)] {
            let name = format!("n{i}.test");
            let ip = format!("10.0.0.{i}");
            cache.learn("c", &answer(&[(&name, &[(&ip, ttl)])]), 0);
        }
        assert_eq!(cache.evicted_entries(), 1);
        assert!(cache.names_for("c", addr("10.0.0.2"), 0).is_empty());
        for i in [1, 3, 4] {
            assert_eq!(
                cache.names_for("c", addr(&format!("10.0.0.{i}")), 0).len(),
                1
            );
        }
        assert_eq!(cache.names_for("other", addr("10.9.9.9"), 0), ["keep.test"]);
    }

    #[test]
    fn too_many_containers_evict_the_least_recent_learner() {
        let mut cache = NameCache::new(NameCacheLimits {
            max_entries_per_container: 10,
            max_containers: 2,
        });
        let a = answer(&[("a.test", &[("10.0.0.1", 600)])]);
        cache.learn("c1", &a, S);
        cache.learn("c2", &a, 2 * S);
        cache.learn("c1", &a, 3 * S);
        cache.learn("c3", &a, 4 * S);
        assert_eq!(cache.evicted_containers(), 1);
        assert_eq!(cache.containers(), 2);
        assert!(cache.names_for("c2", addr("10.0.0.1"), 5 * S).is_empty());
        assert_eq!(cache.names_for("c1", addr("10.0.0.1"), 5 * S), ["a.test"]);
        cache.forget_container("c1");
        assert!(cache.names_for("c1", addr("10.0.0.1"), 5 * S).is_empty());
        assert_eq!(cache.containers(), 1);
    }

    #[test]
    fn replay_gives_identical_results() {
        let run = || {
            let mut cache = NameCache::new(NameCacheLimits {
                max_entries_per_container: 5,
                max_containers: 3,
            });
            let mut seen = Vec::new();
            for step in 0..200u64 {
                let container = format!("c{}", step % 5);
                let name = format!("n{}.test", step % 7);
                let ip = format!("10.0.{}.{}", step % 3, step % 11);
                cache.learn(
                    &container,
                    &answer(&[(&name, &[(&ip, (step % 13) as u32)])]),
                    step * S,
                );
                let names: Vec<String> = cache
                    .names_for(&container, addr(&ip), step * S)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                seen.push((names, cache.len(), cache.evicted_entries()));
            }
            seen
        };
        assert_eq!(run(), run());
    }
}
