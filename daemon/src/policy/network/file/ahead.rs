//! Reading the names of the defined sets ahead of the strict parse.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The names of the sets defined under `network.sets` in `text`, read ahead of the strict parse
/// so that a `set:NAME` written before `sets:` is checked where it stands. Everything else is
/// skipped unread. `None` when this cannot be read (not YAML, `sets` not a mapping...): the
/// strict parse then reports what is wrong, and references are checked after it.
pub(crate) fn declared_sets(text: &str) -> Option<BTreeSet<String>> {
    let ahead = KeysAt {
        path: &["network", "sets"],
    };
    ahead
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .ok()
}

/// Reads ahead the keys of the mapping at `path` below this one (empty when it is absent).
struct KeysAt {
    path: &'static [&'static str],
}

impl<'de> DeserializeSeed<'de> for KeysAt {
    type Value = BTreeSet<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeysAt {
    type Value = BTreeSet<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = BTreeSet::new();
        while let Some(AnyKey(key)) = map.next_key()? {
            match self.path.split_first() {
                None => {
                    keys.extend(key);
                    map.next_value::<IgnoredAny>()?;
                }
                Some((first, rest)) if key.as_deref() == Some(*first) => {
                    keys = map.next_value_seed(KeysAt { path: rest })?;
                }
                Some(_) => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(keys)
    }
}

/// Any mapping key: its text when it is a string, else skipped.
struct AnyKey(Option<String>);

impl<'de> Deserialize<'de> for AnyKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping key")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<AnyKey, E> {
                Ok(AnyKey(Some(text.to_owned())))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<AnyKey, E> {
                Ok(AnyKey(None))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<AnyKey, E> {
                Ok(AnyKey(None))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<AnyKey, E> {
                Ok(AnyKey(None))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AnyKey, E> {
                Ok(AnyKey(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<AnyKey, E> {
                Ok(AnyKey(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<AnyKey, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| AnyKey(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AnyKey, A::Error> {
                IgnoredAny.visit_map(map).map(|_| AnyKey(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}
