//! `sets:` and the peer lists of entries (`to`, `from`), `set:` references checked as read.

use std::fmt;

use ipnet::IpNet;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::KnownSets;
use crate::policy::network::peer::{parse_peer, Peer, PeerPlace, SetRef};
use crate::policy::network::sets::Builtin;

/// `sets:`: set name to a non-empty list of CIDRs and addresses.
pub(super) struct Sets(pub(super) Vec<(String, Vec<IpNet>)>);

impl<'de> Deserialize<'de> for Sets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Sets;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from set name to a list of CIDRs and addresses")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sets, A::Error> {
                let mut sets: Vec<(String, Vec<IpNet>)> = Vec::new();
                loop {
                    let taken: Vec<&str> = sets.iter().map(|(name, _)| name.as_str()).collect();
                    let Some(name) = map.next_key_seed(SetName { taken: &taken })? else {
                        break;
                    };
                    let peers = map.next_value_seed(PeerList {
                        known: KnownSets(None),
                        place: PeerPlace::Set,
                    })?;
                    let nets = peers
                        .into_iter()
                        .filter_map(|peer| match peer {
                            Peer::Net(net) => Some(net),
                            // parse_peer accepts networks only in a set.
                            Peer::Set(_) | Peer::Name(_) => None,
                        })
                        .collect();
                    sets.push((name, nets));
                }
                Ok(Sets(sets))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A key under `sets:`: a new, well-formed name that is not a built-in set's.
struct SetName<'a> {
    taken: &'a [&'a str],
}

impl<'de> DeserializeSeed<'de> for SetName<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for SetName<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a set name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        if Builtin::from_name(name).is_some() {
            return Err(E::custom(format_args!(
                "`{name}` is a built-in set and cannot be redefined; built-in sets: {}",
                builtin_names()
            )));
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(E::custom(format_args!(
                "invalid set name `{name}`; a set name has letters, digits, `-`, `_` and `.` only"
            )));
        }
        if self.taken.contains(&name) {
            return Err(E::custom(format_args!("duplicate set `{name}`")));
        }
        Ok(name.to_owned())
    }
}

fn builtin_names() -> String {
    Builtin::ALL.map(Builtin::as_str).join(", ")
}

/// `to:`, `from:` or a set's members: a non-empty list of peer strings.
#[derive(Clone, Copy)]
pub(super) struct PeerList<'a> {
    pub(super) known: KnownSets<'a>,
    pub(super) place: PeerPlace,
}

impl<'de> DeserializeSeed<'de> for PeerList<'_> {
    type Value = Vec<Peer>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Peer>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PeerList<'_> {
    type Value = Vec<Peer>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            PeerPlace::Set => f.write_str("a list of CIDRs and addresses"),
            PeerPlace::From => f.write_str("a list of peers: set:NAME, CIDRs, addresses"),
            PeerPlace::To => f.write_str("a list of peers: set:NAME, CIDRs, addresses, host names"),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Peer>, A::Error> {
        let mut peers = Vec::new();
        while let Some(peer) = seq.next_element_seed(PeerSeed {
            known: self.known,
            place: self.place,
        })? {
            peers.push(peer);
        }
        if peers.is_empty() {
            return Err(de::Error::custom(match self.place {
                PeerPlace::To => "`to` is empty; list at least one peer",
                PeerPlace::From => "`from` is empty; list at least one peer",
                PeerPlace::Set => "the set is empty; list at least one CIDR or address",
            }));
        }
        Ok(peers)
    }
}

/// One peer string, its `set:` reference checked against the known sets.
#[derive(Clone, Copy)]
struct PeerSeed<'a> {
    known: KnownSets<'a>,
    place: PeerPlace,
}

impl<'de> DeserializeSeed<'de> for PeerSeed<'_> {
    type Value = Peer;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Peer, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for PeerSeed<'_> {
    type Value = Peer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a peer string: set:NAME, a CIDR, an address or a host name")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Peer, E> {
        let peer = parse_peer(text, self.place).map_err(E::custom)?;
        if let (Peer::Set(SetRef::Defined(name)), KnownSets(Some(known))) = (&peer, self.known) {
            if !known.contains(name) {
                return Err(E::custom(unknown_set(
                    name,
                    known.iter().map(String::as_str),
                )));
            }
        }
        Ok(peer)
    }
}

/// The message for a `set:NAME` that names no set.
pub(crate) fn unknown_set<'a>(name: &str, defined: impl Iterator<Item = &'a str>) -> String {
    let mut known = builtin_names();
    for set in defined {
        known.push_str(", ");
        known.push_str(set);
    }
    format!("unknown set `{name}`; known sets: {known}")
}
