//! Writing the parts of every line by hand: the line's own fields and the network object.
//!
//! Their keys and most of their values are fixed ASCII, which serde_json still escapes byte by
//! byte (a fifth of the daemon's CPU per line in a connect storm). Strings that do need escaping
//! still go through serde_json. The result is byte-for-byte what `#[derive(Serialize)]` writes;
//! `line_tests.rs` holds them to that.
use serde::Serialize;

/// Appends one JSON object to `out`, field by field.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    /// `key` must be a plain identifier (no quote, backslash or control character): keys are
    /// field names written in the source.
    fn key(&mut self, key: &'static str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        push_str(self.out, value);
    }

    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.raw(key, "null"),
        }
    }

    /// A wall-clock time as an RFC 3339 string (its text never needs escaping).
    pub fn time(&mut self, key: &'static str, at: crate::clock::WallTime) {
        self.quoted(key, |out| at.write_rfc3339(out));
    }

    /// An IP address as a string (its text never needs escaping).
    pub fn addr(&mut self, key: &'static str, addr: std::net::IpAddr) {
        self.quoted(key, |out| crate::net::write_addr(out, addr));
    }

    /// A string whose text `write` appends, known to need no escaping.
    fn quoted(&mut self, key: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
        self.key(key);
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
    }

    pub fn opt_addr(&mut self, key: &'static str, addr: Option<std::net::IpAddr>) {
        match addr {
            Some(addr) => self.addr(key, addr),
            None => self.raw(key, "null"),
        }
    }

    pub fn uint(&mut self, key: &'static str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    pub fn opt_uint(&mut self, key: &'static str, value: Option<u64>) {
        match value {
            Some(value) => self.uint(key, value),
            None => self.raw(key, "null"),
        }
    }

    pub fn opt_raw(&mut self, key: &'static str, json: Option<&str>) {
        self.raw(key, json.unwrap_or("null"));
    }

    /// Already-serialised JSON.
    pub fn raw(&mut self, key: &'static str, json: &str) {
        self.key(key);
        self.out.extend_from_slice(json.as_bytes());
    }

    /// Any other value, through serde_json.
    pub fn value<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.key(key);
        serde_json::to_writer(&mut *self.out, value)
    }

    /// The writer of a nested object at `key`; close it before writing the next field here.
    pub fn object(&mut self, key: &'static str) -> ObjectWriter<'_> {
        self.key(key);
        ObjectWriter::open(self.out)
    }

    pub fn close(self) {
        self.out.push(b'}');
    }
}

/// Appends `value` as a JSON string.
fn push_str(out: &mut Vec<u8>, value: &str) {
    // No short-circuit, so the check compiles to a few wide compares for the usual short ASCII
    // strings.
    let needs_escape = value.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        // A Vec takes every write, and a &str always serialises.
        let _ = serde_json::to_writer(&mut *out, value);
    } else {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for text in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "new\nline",
            "\u{1}\u{1f}\u{7f}",
            "ünïcödé ☃",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, text);
            assert_eq!(
                String::from_utf8(out).ok(),
                serde_json::to_string(text).ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn objects_nest_and_separate_fields() {
        let mut out = Vec::new();
        let mut top = ObjectWriter::open(&mut out);
        top.str("a", "x");
        top.opt_uint("n", None);
        let mut inner = top.object("o");
        inner.uint("u", 7);
        inner.opt_str("s", Some("y"));
        inner.close();
        top.raw("r", "[1]");
        top.close();
        assert_eq!(
            String::from_utf8(out).ok().as_deref(),
            Some(r#"{"a":"x","n":null,"o":{"u":7,"s":"y"},"r":[1]}"#)
        );
    }
}
