//! Parts of a line that repeat across many lines (a process, its container), rendered to JSON
//! once and copied verbatim into every line that carries them.
//!
//! A connect or write loop repeats the same process and container objects in every line; before
//! these were cached, serialising them again (string escaping, one allocation per field) was most
//! of the daemon's CPU per line.
use std::{cell::RefCell, fmt, ops::Deref, sync::Arc};

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A value together with its JSON text.
pub struct Rendered<T> {
    value: T,
    json: Box<RawValue>,
    /// JSON Pointers (from the line's root) of the strings in `value` written in escaped form:
    /// a line that carries the fragment lists them in its `escaped` array.
    escaped: Vec<String>,
}

/// A rendered fragment shared by the lines (and the cache) that carry it.
pub type Shared<T> = Arc<Rendered<T>>;

impl<T: Serialize> Rendered<T> {
    pub fn new(value: T, escaped: Vec<String>) -> Shared<T> {
        // Serialising the plain structs of `output::line` cannot fail (no maps with non-string
        // keys); if it ever did, the object is null and the rest of the line still goes out.
        let json =
            serde_json::value::to_raw_value(&value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        Arc::new(Rendered {
            value,
            json,
            escaped,
        })
    }
}

impl<T> Rendered<T> {
    pub fn escaped(&self) -> &[String] {
        &self.escaped
    }

    pub fn json(&self) -> &str {
        self.json.get()
    }
}

impl<T> Deref for Rendered<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Serialize for Rendered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl<T: PartialEq> PartialEq for Rendered<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.escaped == other.escaped
    }
}

impl<T: Eq> Eq for Rendered<T> {}

impl<T: fmt::Debug> fmt::Debug for Rendered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// The last fragment made for a table entry, with the inputs (`K`) it was made from: a lookup
/// with other inputs misses, and the next fragment replaces it. It lives inside the entry, so it
/// goes when the entry does; it is not part of the entry's value (clones start empty, and it
/// never makes two entries unequal).
pub struct Memo<K, T>(RefCell<Option<(K, Shared<T>)>>);

impl<K, T> Memo<K, T> {
    /// The fragment remembered for inputs that `matches`, or a new one from `make`, remembered
    /// with `key`.
    pub fn get_or_make(
        &self,
        matches: impl FnOnce(&K) -> bool,
        key: impl FnOnce() -> K,
        make: impl FnOnce() -> Shared<T>,
    ) -> Shared<T> {
        if let Some((known, fragment)) = self.0.borrow().as_ref() {
            if matches(known) {
                return fragment.clone();
            }
        }
        let fragment = make();
        *self.0.borrow_mut() = Some((key(), fragment.clone()));
        fragment
    }
}

impl<K, T> Default for Memo<K, T> {
    fn default() -> Self {
        Memo(RefCell::new(None))
    }
}

impl<K, T> Clone for Memo<K, T> {
    fn clone(&self) -> Self {
        Memo::default()
    }
}

impl<K, T> PartialEq for Memo<K, T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<K, T> Eq for Memo<K, T> {}

impl<K, T> fmt::Debug for Memo<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.0.borrow().is_some() {
            "Memo(made)"
        } else {
            "Memo(empty)"
        };
        f.write_str(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, PartialEq, Debug)]
    struct Item {
        name: String,
    }

    #[test]
    fn a_fragment_is_written_verbatim_and_reads_as_its_value() {
        let fragment = Rendered::new(
            Item {
                name: "a\"b\n".into(),
            },
            vec![],
        );
        assert_eq!(fragment.name, "a\"b\n");
        let line =
            serde_json::to_string(&serde_json::json!({ "item": &*fragment })).expect("serialises");
        assert_eq!(line, r#"{"item":{"name":"a\"b\n"}}"#);
        #[derive(Serialize)]
        struct Line {
            item: Shared<Item>,
        }
        let direct = serde_json::to_string(&Line { item: fragment }).expect("serialises");
        assert_eq!(direct, r#"{"item":{"name":"a\"b\n"}}"#);
    }

    #[test]
    fn a_memo_is_reused_for_the_same_inputs_and_remade_for_others() {
        let memo: Memo<u32, Item> = Memo::default();
        let mut made = 0;
        let mut get = |input: u32| {
            memo.get_or_make(
                |known| *known == input,
                || input,
                || {
                    made += 1;
                    Rendered::new(
                        Item {
                            name: input.to_string(),
                        },
                        vec![],
                    )
                },
            )
        };
        let first = get(1);
        let again = get(1);
        assert!(Arc::ptr_eq(&first, &again));
        let other = get(2);
        assert_eq!(other.name, "2");
        assert_eq!(made, 2);
        assert_eq!(memo.clone(), memo);
        assert_eq!(format!("{:?}", memo.clone()), "Memo(empty)");
    }
}
