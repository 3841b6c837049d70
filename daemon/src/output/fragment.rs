//! Parts of a line that repeat across many lines (a process, its container), rendered to JSON
//! once and copied verbatim into every line that carries them.
//!
//! A connect or write loop repeats the same process and container objects in every line; before
//! these were cached, serialising them again (string escaping, one allocation per field) was most
//! of the daemon's CPU per line. The cache that keeps them is the pipeline's render layer
//! (`pipeline::render::RenderCache`).
use std::{fmt, ops::Deref, sync::Arc};

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
}
