//! The serde model of a policy file: `version`, `rules`, `network`.
//!
//! Every mapping accepts known keys only, each once (see `keys`), and every value is validated
//! while it is deserialized, so each error carries the line and column of the key or value at
//! fault. The file is read through a seed ([`PolicyFileSeed`]) because `network:` needs the
//! names of the sets it defines before it reads them (see `network::declared_sets`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::keys::{checked_str, field_keys, Key, UniqueKey};
use super::matcher::Exception;
use super::network::{KnownSets, NetworkFile, NetworkSeed};
use super::rule_id::{RuleId, Severity};

/// The only policy format version this build understands.
pub(crate) const SUPPORTED_VERSION: u64 = 1;

/// A whole policy file as written.
#[derive(Debug)]
pub(crate) struct PolicyFile {
    /// `None` only when the document is empty (no key at all): a non-empty document without
    /// `version` is an error at its first key.
    pub(crate) version: Option<u64>,
    pub(crate) rules: BTreeMap<RuleId, RuleFile>,
    pub(crate) network: Option<NetworkFile>,
}

/// One entry under `rules:`; every field is optional and falls back to the rule's default.
#[derive(Debug, Default)]
pub(crate) struct RuleFile {
    pub(crate) enabled: Option<bool>,
    pub(crate) severity: Option<Severity>,
    pub(crate) exceptions: Vec<Exception>,
}

field_keys! {
    enum TopField { Version => "version", Rules => "rules", Network => "network" }
}

field_keys! {
    enum RuleField { Enabled => "enabled", Severity => "severity", Exceptions => "exceptions" }
}

impl Key for RuleId {
    const WHAT: &'static str = "rule";

    fn from_name(name: &str) -> Option<Self> {
        RuleId::from_name(name)
    }

    fn known() -> String {
        RuleId::known_list()
    }
}

/// Reads a [`PolicyFile`]; `known_sets` are the names of the sets `network.sets` defines.
pub(crate) struct PolicyFileSeed<'a> {
    pub(crate) known_sets: KnownSets<'a>,
}

impl<'de> DeserializeSeed<'de> for PolicyFileSeed<'_> {
    type Value = PolicyFile;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<PolicyFile, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PolicyFileSeed<'_> {
    type Value = PolicyFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a sealwatch policy: a mapping with `version: 1` and optional `rules`, `network`",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PolicyFile, A::Error> {
        let mut seen = Vec::new();
        let mut version = None;
        let mut rules = None;
        let mut network = None;
        while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
            match field {
                TopField::Version => version = Some(map.next_value::<Version>()?.0),
                TopField::Rules => rules = Some(map.next_value::<Rules>()?.0),
                TopField::Network => {
                    network = Some(map.next_value_seed(NetworkSeed {
                        known: self.known_sets,
                    })?);
                }
            }
        }
        if version.is_none() && !seen.is_empty() {
            return Err(de::Error::custom(format_args!(
                "missing `version`: the policy must start with `version: {SUPPORTED_VERSION}`"
            )));
        }
        Ok(PolicyFile {
            version,
            rules: rules.unwrap_or_default(),
            network,
        })
    }
}

/// `version:`, accepted only when it is [`SUPPORTED_VERSION`].
struct Version(u64);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Version;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "the policy format version, `{SUPPORTED_VERSION}`")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Version, E> {
                if v == SUPPORTED_VERSION {
                    Ok(Version(v))
                } else {
                    Err(E::custom(format_args!(
                        "unsupported policy version {v}; this sealwatch supports version \
                         {SUPPORTED_VERSION} only"
                    )))
                }
            }
        }
        deserializer.deserialize_u64(V)
    }
}

/// `rules:`: a mapping from rule id to its settings, each id at most once.
struct Rules(BTreeMap<RuleId, RuleFile>);

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Rules;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from rule id to its settings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rules, A::Error> {
                let mut seen = Vec::new();
                let mut rules = BTreeMap::new();
                while let Some(id) = map.next_key_seed(UniqueKey::<RuleId>::new(&mut seen))? {
                    rules.insert(id, map.next_value::<RuleFile>()?);
                }
                Ok(Rules(rules))
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for RuleFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RuleFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("rule settings: a mapping with enabled, severity, exceptions")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RuleFile, A::Error> {
                let mut seen = Vec::new();
                let mut rule = RuleFile::default();
                while let Some(field) = map.next_key_seed(UniqueKey::new(&mut seen))? {
                    match field {
                        RuleField::Enabled => rule.enabled = Some(map.next_value::<Flag>()?.0),
                        RuleField::Severity => {
                            rule.severity = Some(map.next_value::<SeverityValue>()?.0);
                        }
                        RuleField::Exceptions => rule.exceptions = map.next_value()?,
                    }
                }
                Ok(rule)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `enabled:`, strictly `true` or `false` (no `yes`, `on`, `1`).
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true` or `false`")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
        }
        deserializer.deserialize_bool(V)
    }
}

/// `severity:`, one of the [`Severity`] names.
struct SeverityValue(Severity);

impl<'de> Deserialize<'de> for SeverityValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(deserializer, "a severity", |name| {
            Severity::from_name(name).map(SeverityValue).ok_or_else(|| {
                let known = Severity::ALL.map(|s| s.as_str()).join(", ");
                format!("unknown severity `{name}`; expected one of: {known}")
            })
        })
    }
}
