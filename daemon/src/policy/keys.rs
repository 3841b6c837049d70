//! Mapping keys of the policy file: known names only, each at most once.
//!
//! Keys are parsed inside the YAML deserializer's own `deserialize_str` call, so an unknown or
//! repeated key is reported at the key's own line and column. (A derived `Deserialize` reports a
//! duplicate field at the start of the mapping, and a `BTreeMap` silently keeps the last one.)

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// A closed set of names allowed as keys in one kind of mapping.
pub(crate) trait Key: Copy + PartialEq + Sized {
    /// What a key is, for messages: "field", "rule".
    const WHAT: &'static str;

    /// The key called `name`, if it is one of the known ones.
    fn from_name(name: &str) -> Option<Self>;

    /// The known names, comma-separated, for messages.
    fn known() -> String;
}

/// Seed for one map key: rejects unknown names and names already in `seen`.
pub(crate) struct UniqueKey<'s, K> {
    seen: &'s mut Vec<K>,
}

impl<'s, K: Key> UniqueKey<'s, K> {
    pub(crate) fn new(seen: &'s mut Vec<K>) -> Self {
        UniqueKey { seen }
    }
}

impl<'de, K: Key> DeserializeSeed<'de> for UniqueKey<'_, K> {
    type Value = K;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<K, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<K: Key> Visitor<'_> for UniqueKey<'_, K> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name, one of: {}", K::WHAT, K::known())
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<K, E> {
        let Some(key) = K::from_name(name) else {
            return Err(E::custom(format_args!(
                "unknown {} `{name}`; expected one of: {}",
                K::WHAT,
                K::known()
            )));
        };
        if self.seen.contains(&key) {
            return Err(E::custom(format_args!("duplicate {} `{name}`", K::WHAT)));
        }
        self.seen.push(key);
        Ok(key)
    }
}

/// Declares a field-name enum implementing [`Key`] from `Variant => "name"` pairs.
macro_rules! field_keys {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $($variant),+ }

        impl $crate::policy::keys::Key for $name {
            const WHAT: &'static str = "field";

            fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            fn known() -> String {
                [$($text),+].join(", ")
            }
        }
    };
}
pub(crate) use field_keys;

/// A value that must be a string, checked by `parse`, whose error is reported at the value.
pub(crate) fn checked_str<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct Checked<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
        out: PhantomData<T>,
    }
    impl<T> Visitor<'_> for Checked<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.parse)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Checked {
        expecting,
        parse,
        out: PhantomData,
    })
}
