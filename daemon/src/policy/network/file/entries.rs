//! `egress:` and `ingress:` entries: peers, ports, protocol.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::peers::PeerList;
use super::values::{PortList, ProtocolValue};
use super::{EntryFile, KnownSets};
use crate::policy::keys::{field_keys, Key, UniqueKey};
use crate::policy::network::peer::{Peer, PeerPlace};
use crate::policy::network::ports::Ports;

field_keys! {
    enum EgressField { To => "to", Ports => "ports", Protocol => "protocol" }
}

field_keys! {
    enum IngressField { From => "from", Ports => "ports", Protocol => "protocol" }
}

/// `egress:` or `ingress:`: a list of entries (empty allows nothing).
#[derive(Clone, Copy)]
pub(super) struct Entries<'a> {
    known: KnownSets<'a>,
    place: PeerPlace,
}

impl<'a> Entries<'a> {
    pub(super) fn egress(known: KnownSets<'a>) -> Self {
        Entries {
            known,
            place: PeerPlace::To,
        }
    }

    pub(super) fn ingress(known: KnownSets<'a>) -> Self {
        Entries {
            known,
            place: PeerPlace::From,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = Vec<EntryFile>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Vec<EntryFile>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = Vec<EntryFile>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place {
            PeerPlace::From => f.write_str("a list of ingress entries ({from, ports, protocol})"),
            PeerPlace::To | PeerPlace::Set => {
                f.write_str("a list of egress entries ({to, ports, protocol})")
            }
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<EntryFile>, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element_seed(EntrySeed(self))? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// What a key of an entry mapping stands for, whichever direction.
enum EntryKey {
    Peers,
    Ports,
    Protocol,
}

impl From<EgressField> for EntryKey {
    fn from(field: EgressField) -> Self {
        match field {
            EgressField::To => EntryKey::Peers,
            EgressField::Ports => EntryKey::Ports,
            EgressField::Protocol => EntryKey::Protocol,
        }
    }
}

impl From<IngressField> for EntryKey {
    fn from(field: IngressField) -> Self {
        match field {
            IngressField::From => EntryKey::Peers,
            IngressField::Ports => EntryKey::Ports,
            IngressField::Protocol => EntryKey::Protocol,
        }
    }
}

/// One `egress` or `ingress` entry.
struct EntrySeed<'a>(Entries<'a>);

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = EntryFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EntryFile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = EntryFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.place {
            PeerPlace::From => {
                f.write_str("an ingress entry: a mapping with from, ports, protocol")
            }
            PeerPlace::To | PeerPlace::Set => {
                f.write_str("an egress entry: a mapping with to, ports, protocol")
            }
        }
    }

    // Errors returned here are reported at the start of the entry's mapping.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EntryFile, A::Error> {
        let Entries { known, place } = self.0;
        let (peers, ports) = match place {
            PeerPlace::From => entry_fields::<IngressField, A>(map, known, place)?,
            PeerPlace::To | PeerPlace::Set => entry_fields::<EgressField, A>(map, known, place)?,
        };
        let Some(peers) = peers else {
            return Err(de::Error::custom(match place {
                PeerPlace::From => "ingress entry has no `from`: list the peers it accepts",
                PeerPlace::To | PeerPlace::Set => {
                    "egress entry has no `to`: list the peers it allows"
                }
            }));
        };
        Ok(EntryFile { peers, ports })
    }
}

/// Reads the keys of one entry mapping, named as `K` says.
fn entry_fields<'de, K, A>(
    mut map: A,
    known: KnownSets<'_>,
    place: PeerPlace,
) -> Result<(Option<Vec<Peer>>, Ports), A::Error>
where
    K: Key + Into<EntryKey>,
    A: MapAccess<'de>,
{
    let mut seen: Vec<K> = Vec::new();
    let mut peers = None;
    let mut ports = Ports::ANY;
    while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
        match field.into() {
            EntryKey::Peers => peers = Some(map.next_value_seed(PeerList { known, place })?),
            EntryKey::Ports => ports.ranges = Some(map.next_value::<PortList>()?.0),
            EntryKey::Protocol => ports.protocols = map.next_value::<ProtocolValue>()?.0,
        }
    }
    Ok((peers, ports))
}
