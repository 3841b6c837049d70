//! The serde model of the `network:` section, strict like the rest of the policy file: known
//! keys only, each once, every value checked where it is read so errors carry its line and
//! column.
//!
//! Peers may name sets defined anywhere in the section (`sets` may come after `workloads`), so
//! the names of the defined sets are read first from the raw document (see
//! `compile::declared_sets`) and handed down through seeds.

use std::collections::BTreeSet;
use std::fmt;

use ipnet::IpNet;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::model::WorkloadMatch;
use super::peer::{parse_peer, Peer, PeerPlace, SetRef};
use super::ports::{PortRange, Ports, Protocols};
use super::sets::Builtin;
use super::{NetAction, DEFAULT_WORKLOAD_NAME};
use crate::policy::keys::{checked_str, field_keys, Key, UniqueKey};

/// The `network:` section as written, `set:` references checked but not resolved.
#[derive(Debug, Default)]
pub(crate) struct NetworkFile {
    /// `sets:` in file order; every member is a network.
    pub(crate) sets: Vec<(String, Vec<IpNet>)>,
    pub(crate) default: DefaultFile,
    pub(crate) workloads: Vec<WorkloadFile>,
}

/// `default:`; a field left out keeps the built-in default workload's value.
#[derive(Debug, Default)]
pub(crate) struct DefaultFile {
    pub(crate) action: Option<NetAction>,
    pub(crate) egress: Option<Vec<EntryFile>>,
    pub(crate) ingress: Option<Vec<EntryFile>>,
    pub(crate) listen: Option<Vec<Ports>>,
}

/// One entry of `workloads:`; a list left out allows nothing.
#[derive(Debug)]
pub(crate) struct WorkloadFile {
    pub(crate) name: String,
    pub(crate) matcher: WorkloadMatch,
    pub(crate) action: NetAction,
    pub(crate) egress: Vec<EntryFile>,
    pub(crate) ingress: Vec<EntryFile>,
    pub(crate) listen: Vec<Ports>,
}

/// One `egress` or `ingress` entry: its peers (`to` / `from`) and ports.
#[derive(Debug)]
pub(crate) struct EntryFile {
    pub(crate) peers: Vec<Peer>,
    pub(crate) ports: Ports,
}

/// The names of the sets the section defines; `None` when they could not be read ahead (the
/// references are then checked after parsing, without a location).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KnownSets<'a>(pub(crate) Option<&'a BTreeSet<String>>);

field_keys! {
    enum NetworkField { Sets => "sets", Default => "default", Workloads => "workloads" }
}

field_keys! {
    enum DefaultField {
        Action => "action",
        Egress => "egress",
        Ingress => "ingress",
        Listen => "listen",
    }
}

field_keys! {
    enum WorkloadField {
        Name => "name",
        Match => "match",
        Action => "action",
        Egress => "egress",
        Ingress => "ingress",
        Listen => "listen",
    }
}

field_keys! {
    enum MatchField {
        Image => "image",
        ContainerName => "container_name",
        PodNamespace => "pod_namespace",
    }
}

field_keys! {
    enum EgressField { To => "to", Ports => "ports", Protocol => "protocol" }
}

field_keys! {
    enum IngressField { From => "from", Ports => "ports", Protocol => "protocol" }
}

field_keys! {
    enum ListenField { Ports => "ports", Protocol => "protocol" }
}

/// Seed for the `network:` mapping.
pub(crate) struct NetworkSeed<'a> {
    pub(crate) known: KnownSets<'a>,
}

impl<'de> DeserializeSeed<'de> for NetworkSeed<'_> {
    type Value = NetworkFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<NetworkFile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NetworkSeed<'_> {
    type Value = NetworkFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the network policy: a mapping with sets, default, workloads")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NetworkFile, A::Error> {
        let mut seen = Vec::new();
        let mut network = NetworkFile::default();
        while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
            match field {
                NetworkField::Sets => network.sets = map.next_value::<Sets>()?.0,
                NetworkField::Default => {
                    network.default = map.next_value_seed(DefaultSeed { known: self.known })?;
                }
                NetworkField::Workloads => {
                    network.workloads = map.next_value_seed(WorkloadsSeed { known: self.known })?;
                }
            }
        }
        Ok(network)
    }
}

/// `sets:`: set name to a non-empty list of CIDRs and addresses.
struct Sets(Vec<(String, Vec<IpNet>)>);

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
struct PeerList<'a> {
    known: KnownSets<'a>,
    place: PeerPlace,
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

/// `default:`.
struct DefaultSeed<'a> {
    known: KnownSets<'a>,
}

impl<'de> DeserializeSeed<'de> for DefaultSeed<'_> {
    type Value = DefaultFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<DefaultFile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DefaultSeed<'_> {
    type Value = DefaultFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the default workload: a mapping with action, egress, ingress, listen")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DefaultFile, A::Error> {
        let mut seen = Vec::new();
        let mut default = DefaultFile::default();
        while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
            match field {
                DefaultField::Action => default.action = Some(map.next_value::<ActionValue>()?.0),
                DefaultField::Egress => {
                    default.egress = Some(map.next_value_seed(Entries::egress(self.known))?);
                }
                DefaultField::Ingress => {
                    default.ingress = Some(map.next_value_seed(Entries::ingress(self.known))?);
                }
                DefaultField::Listen => default.listen = Some(map.next_value::<Listen>()?.0),
            }
        }
        Ok(default)
    }
}

/// `workloads:`, a list whose names are unique.
struct WorkloadsSeed<'a> {
    known: KnownSets<'a>,
}

impl<'de> DeserializeSeed<'de> for WorkloadsSeed<'_> {
    type Value = Vec<WorkloadFile>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Vec<WorkloadFile>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for WorkloadsSeed<'_> {
    type Value = Vec<WorkloadFile>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of workloads")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<WorkloadFile>, A::Error> {
        let mut workloads: Vec<WorkloadFile> = Vec::new();
        loop {
            let taken: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
            let seed = WorkloadSeed {
                known: self.known,
                taken: &taken,
            };
            let Some(workload) = seq.next_element_seed(seed)? else {
                break;
            };
            workloads.push(workload);
        }
        Ok(workloads)
    }
}

/// One workload; `taken` holds the names of the workloads before it.
struct WorkloadSeed<'a> {
    known: KnownSets<'a>,
    taken: &'a [&'a str],
}

impl<'de> DeserializeSeed<'de> for WorkloadSeed<'_> {
    type Value = WorkloadFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<WorkloadFile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for WorkloadSeed<'_> {
    type Value = WorkloadFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a workload: a mapping with name, match, action, egress, ingress, listen")
    }

    // Errors returned here are reported at the start of the workload's mapping.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WorkloadFile, A::Error> {
        let mut seen = Vec::new();
        let (mut name, mut matcher, mut action) = (None, None, None);
        let (mut egress, mut ingress, mut listen) = (None, None, None);
        while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
            match field {
                WorkloadField::Name => {
                    name = Some(map.next_value_seed(WorkloadName { taken: self.taken })?);
                }
                WorkloadField::Match => matcher = Some(map.next_value::<MatchValue>()?.0),
                WorkloadField::Action => action = Some(map.next_value::<ActionValue>()?.0),
                WorkloadField::Egress => {
                    egress = Some(map.next_value_seed(Entries::egress(self.known))?);
                }
                WorkloadField::Ingress => {
                    ingress = Some(map.next_value_seed(Entries::ingress(self.known))?);
                }
                WorkloadField::Listen => listen = Some(map.next_value::<Listen>()?.0),
            }
        }
        let Some(name) = name else {
            return Err(de::Error::custom(
                "workload has no `name`: every workload needs a unique name, reported in events",
            ));
        };
        let Some(matcher) = matcher else {
            return Err(de::Error::custom(format_args!(
                "workload `{name}` has no `match`: say which containers it is for with image, \
                 container_name or pod_namespace"
            )));
        };
        Ok(WorkloadFile {
            name,
            matcher,
            action: action.unwrap_or(NetAction::Alert),
            egress: egress.unwrap_or_default(),
            ingress: ingress.unwrap_or_default(),
            listen: listen.unwrap_or_default(),
        })
    }
}

/// A workload's `name:`: printable ASCII without spaces, unique, not the default's.
struct WorkloadName<'a> {
    taken: &'a [&'a str],
}

/// Longest workload name: it is reported in every network event.
const MAX_WORKLOAD_NAME: usize = 128;

impl<'de> DeserializeSeed<'de> for WorkloadName<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for WorkloadName<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a workload name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        if name.is_empty() {
            return Err(E::custom("empty workload name"));
        }
        if name.len() > MAX_WORKLOAD_NAME || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(E::custom(format_args!(
                "invalid workload name `{name}`; a name is 1-{MAX_WORKLOAD_NAME} printable ASCII \
                 characters without spaces"
            )));
        }
        if name == DEFAULT_WORKLOAD_NAME {
            return Err(E::custom(format_args!(
                "`{DEFAULT_WORKLOAD_NAME}` is the name of the default workload; configure it \
                 under `network.default` or pick another name"
            )));
        }
        if self.taken.contains(&name) {
            return Err(E::custom(format_args!(
                "duplicate workload name `{name}`; names must be unique"
            )));
        }
        Ok(name.to_owned())
    }
}

/// A workload's `match:`: globs, at least one.
struct MatchValue(WorkloadMatch);

impl<'de> Deserialize<'de> for MatchValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatchValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with one or more of image, container_name, pod_namespace")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatchValue, A::Error> {
                let mut seen = Vec::new();
                let mut matcher = WorkloadMatch {
                    image: None,
                    container_name: None,
                    pod_namespace: None,
                };
                while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
                    match field {
                        MatchField::Image => matcher.image = Some(map.next_value()?),
                        MatchField::ContainerName => {
                            matcher.container_name = Some(map.next_value()?);
                        }
                        MatchField::PodNamespace => matcher.pod_namespace = Some(map.next_value()?),
                    }
                }
                if seen.is_empty() {
                    return Err(de::Error::custom(
                        "`match` is empty: give at least one of image, container_name, \
                         pod_namespace",
                    ));
                }
                Ok(MatchValue(matcher))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `action:`.
struct ActionValue(NetAction);

impl<'de> Deserialize<'de> for ActionValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "an action, alert or block", |name| {
            NetAction::from_name(name)
                .map(ActionValue)
                .ok_or_else(|| format!("unknown action `{name}`; expected one of: alert, block"))
        })
    }
}

/// `egress:` or `ingress:`: a list of entries (empty allows nothing).
#[derive(Clone, Copy)]
struct Entries<'a> {
    known: KnownSets<'a>,
    place: PeerPlace,
}

impl<'a> Entries<'a> {
    fn egress(known: KnownSets<'a>) -> Self {
        Entries {
            known,
            place: PeerPlace::To,
        }
    }

    fn ingress(known: KnownSets<'a>) -> Self {
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

/// `listen:`: a list of `{ports, protocol}`, `ports` required.
struct Listen(Vec<Ports>);

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Listen;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of listen entries ({ports, protocol})")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listen, A::Error> {
                let mut entries = Vec::new();
                while let Some(ListenEntry(ports)) = seq.next_element()? {
                    entries.push(ports);
                }
                Ok(Listen(entries))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

struct ListenEntry(Ports);

impl<'de> Deserialize<'de> for ListenEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ListenEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a listen entry: a mapping with ports, protocol")
            }

            // Errors returned here are reported at the start of the entry's mapping.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListenEntry, A::Error> {
                let mut seen = Vec::new();
                let mut ports = Ports::ANY;
                let mut ranges = None;
                while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
                    match field {
                        ListenField::Ports => ranges = Some(map.next_value::<PortList>()?.0),
                        ListenField::Protocol => {
                            ports.protocols = map.next_value::<ProtocolValue>()?.0;
                        }
                    }
                }
                if ranges.is_none() {
                    return Err(de::Error::custom(
                        "listen entry has no `ports`: list the ports the workload may listen on",
                    ));
                }
                ports.ranges = ranges;
                Ok(ListenEntry(ports))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `protocol:`.
struct ProtocolValue(Protocols);

impl<'de> Deserialize<'de> for ProtocolValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "a protocol, tcp, udp or any", |name| {
            Protocols::from_name(name)
                .map(ProtocolValue)
                .ok_or_else(|| {
                    format!(
                        "unknown protocol `{name}`; expected one of: {}",
                        Protocols::NAMES
                    )
                })
        })
    }
}

/// `ports:`: a non-empty list of ports and ranges.
struct PortList(Vec<PortRange>);

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of ports and ranges, e.g. [443, \"8000-8100\"]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortList, A::Error> {
                let mut ranges = Vec::new();
                while let Some(PortValue(range)) = seq.next_element()? {
                    ranges.push(range);
                }
                if ranges.is_empty() {
                    return Err(de::Error::custom(
                        "`ports` is empty; list at least one port, or omit `ports` to allow any",
                    ));
                }
                Ok(PortList(ranges))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// One item of `ports:`: a number 1-65535 or a `"lo-hi"` string.
struct PortValue(PortRange);

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port 1-65535 or a range \"lo-hi\"")
            }

            fn visit_u64<E: de::Error>(self, port: u64) -> Result<PortValue, E> {
                PortRange::single(port).map(PortValue).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, port: i64) -> Result<PortValue, E> {
                match u64::try_from(port) {
                    Ok(port) => self.visit_u64(port),
                    Err(_) => Err(E::custom(format_args!(
                        "port {port} is out of range; ports are 1-65535"
                    ))),
                }
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<PortValue, E> {
                PortRange::parse(text).map(PortValue).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}
