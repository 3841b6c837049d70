//! What was learned about one image: peers, ports and protocols, each with when it was first
//! seen and how often.
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::SystemTime;

use super::event::{NetEvent, What};
use crate::net::Protocol;

/// Distinct peers and ports kept per image; a scan or a flood beyond it is counted, not listed,
/// so memory and the file stay bounded.
pub(super) const MAX_ITEMS_PER_IMAGE: usize = 10_000;

/// An event time: parsed to order, and the line's own text to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) time: SystemTime,
    pub(super) text: String,
}

impl Stamp {
    pub(super) fn new(time: SystemTime, text: &str) -> Stamp {
        Stamp {
            time,
            text: text.to_owned(),
        }
    }
}

/// How a connection ended: `None` for success and in-progress, else the event's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome(pub(super) Option<&'static str>);

impl Outcome {
    pub(super) fn from_result(result: Option<&str>) -> Outcome {
        Outcome(match result {
            None | Some("success" | "in-progress") => None,
            Some("blocked") => Some("blocked"),
            Some("refused") => Some("refused"),
            Some("unreachable") => Some("unreachable"),
            Some("timed-out") => Some("timed-out"),
            Some(_) => Some("failed"),
        })
    }
}

/// First sighting and counts of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) first: Stamp,
    pub(super) count: u64,
    /// Unsuccessful ones by result (blocked, refused, ...); held-back repeats are in `count`
    /// only, as the daemon does not say how each of them ended.
    pub(super) failed: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn new(event: &NetEvent) -> Tally {
        let mut tally = Tally {
            first: event.stamp.clone(),
            count: 0,
            failed: BTreeMap::new(),
        };
        tally.record(event);
        tally
    }

    fn record(&mut self, event: &NetEvent) {
        if event.stamp.time < self.first.time {
            self.first = event.stamp.clone();
        }
        self.count = self.count.saturating_add(1).saturating_add(event.repeats);
        if let Outcome(Some(result)) = event.outcome {
            *self.failed.entry(result).or_default() += 1;
        }
    }

    fn add_to(slot: &mut Option<Tally>, event: &NetEvent) {
        match slot {
            Some(tally) => tally.record(event),
            None => *slot = Some(Tally::new(event)),
        }
    }
}

/// One policy entry in the making: its tally and its members (ports, or peers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group<T> {
    pub(super) tally: Tally,
    pub(super) members: BTreeSet<T>,
}

/// A peer as the policy will name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PeerKey {
    /// The DNS name the daemon tied the address to (names sort before addresses).
    Name(String),
    Addr(IpAddr),
}

/// Everything learned about one image.
#[derive(Debug, Default)]
pub(super) struct ImageNet {
    /// (peer, protocol) → remote ports.
    pub(super) egress: BTreeMap<(PeerKey, Protocol), Group<u16>>,
    /// (local port, protocol) → remote addresses.
    pub(super) ingress: BTreeMap<(u16, Protocol), Group<IpAddr>>,
    /// protocol → local ports.
    pub(super) listen: BTreeMap<Protocol, Group<u16>>,
    /// Loopback addresses, folded into one `set:loopback` entry per direction.
    pub(super) loopback_egress: Option<Tally>,
    pub(super) loopback_ingress: Option<Tally>,
    /// Observations left out at the `MAX_ITEMS_PER_IMAGE` limit.
    pub(super) dropped: u64,
    items: usize,
}

impl ImageNet {
    /// Adds one event; false when it was left out at the limit.
    pub(super) fn add(&mut self, event: &NetEvent) -> bool {
        let kept = match &event.what {
            What::Egress {
                peer: PeerKey::Addr(addr),
                ..
            } if addr.is_loopback() => {
                Tally::add_to(&mut self.loopback_egress, event);
                true
            }
            What::Ingress { peer, .. } if peer.is_loopback() => {
                Tally::add_to(&mut self.loopback_ingress, event);
                true
            }
            What::Egress { peer, port } => add(
                &mut self.egress,
                &mut self.items,
                (peer.clone(), event.protocol),
                *port,
                event,
            ),
            What::Ingress { peer, port } => add(
                &mut self.ingress,
                &mut self.items,
                (*port, event.protocol),
                *peer,
                event,
            ),
            What::Listen { port } => add(
                &mut self.listen,
                &mut self.items,
                event.protocol,
                *port,
                event,
            ),
        };
        if !kept {
            self.dropped += 1;
        }
        kept
    }
}

/// Adds `member` to the group at `key`; false when that would pass the image's item limit.
fn add<K: Ord, T: Ord>(
    groups: &mut BTreeMap<K, Group<T>>,
    items: &mut usize,
    key: K,
    member: T,
    event: &NetEvent,
) -> bool {
    match groups.entry(key) {
        Entry::Occupied(mut entry) => {
            let group = entry.get_mut();
            if !group.members.contains(&member) {
                if *items >= MAX_ITEMS_PER_IMAGE {
                    return false;
                }
                *items += 1;
                group.members.insert(member);
            }
            group.tally.record(event);
        }
        Entry::Vacant(entry) => {
            if *items >= MAX_ITEMS_PER_IMAGE {
                return false;
            }
            *items += 1;
            entry.insert(Group {
                tally: Tally::new(event),
                members: BTreeSet::from([member]),
            });
        }
    }
    true
}
