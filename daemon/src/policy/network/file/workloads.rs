//! `workloads:`: each workload's name, `match` and lists.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::entries::Entries;
use super::values::{ActionValue, Listen, WorkloadName};
use super::{KnownSets, WorkloadFile};
use crate::policy::keys::{field_keys, UniqueKey};
use crate::policy::network::model::WorkloadMatch;
use crate::policy::network::NetAction;

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

/// `workloads:`, a list whose names are unique.
pub(super) struct WorkloadsSeed<'a> {
    pub(super) known: KnownSets<'a>,
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
