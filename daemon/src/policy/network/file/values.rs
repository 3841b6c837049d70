//! Single values and small lists: workload names, actions, protocols, ports, `listen:`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::policy::keys::{checked_str, field_keys, UniqueKey};
use crate::policy::network::ports::{PortRange, Ports, Protocols};
use crate::policy::network::{NetAction, DEFAULT_WORKLOAD_NAME};

field_keys! {
    enum ListenField { Ports => "ports", Protocol => "protocol" }
}

/// A workload's `name:`: printable ASCII without spaces, unique, not the default's.
pub(super) struct WorkloadName<'a> {
    pub(super) taken: &'a [&'a str],
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

/// `action:`.
pub(super) struct ActionValue(pub(super) NetAction);

impl<'de> Deserialize<'de> for ActionValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "an action, alert or block", |name| {
            NetAction::from_name(name)
                .map(ActionValue)
                .ok_or_else(|| format!("unknown action `{name}`; expected one of: alert, block"))
        })
    }
}

/// `listen:`: a list of `{ports, protocol}`, `ports` required.
pub(super) struct Listen(pub(super) Vec<Ports>);

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
pub(super) struct ProtocolValue(pub(super) Protocols);

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
pub(super) struct PortList(pub(super) Vec<PortRange>);

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
