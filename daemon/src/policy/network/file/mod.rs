//! The serde model of the `network:` section, strict like the rest of the policy file: known
//! keys only, each once, every value checked where it is read so errors carry its line and
//! column.
//!
//! Peers may name sets defined anywhere in the section (`sets` may come after `workloads`), so
//! the names of the defined sets are read ahead ([`declared_sets`]) and handed down through
//! seeds.

mod ahead;
mod entries;
mod peers;
mod values;
mod workloads;

use std::collections::BTreeSet;
use std::fmt;

use ipnet::IpNet;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

pub(crate) use ahead::declared_sets;
pub(crate) use peers::unknown_set;

use super::model::WorkloadMatch;
use super::peer::Peer;
use super::ports::Ports;
use super::NetAction;
use crate::policy::keys::{field_keys, UniqueKey};
use entries::Entries;
use peers::Sets;
use values::{ActionValue, Listen};
use workloads::WorkloadsSeed;

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
