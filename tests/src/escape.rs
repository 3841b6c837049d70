//! The documented escaping of kernel byte strings (exe, cwd, comm, args, parent_exe).
//!
//! A byte string that is valid UTF-8 appears unchanged. One that is not is written in escaped form
//! and its JSON Pointer is listed in the event's `escaped` array: each backslash becomes `\\` (two
//! backslash characters in the decoded JSON string) and each byte that is not part of valid UTF-8
//! becomes `\xHH` (lowercase hex). Valid UTF-8 runs are kept as they are.

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The reference encoder: `bytes` as the daemon must write it, and whether that is the escaped form.
pub fn escape(bytes: &[u8]) -> (String, bool) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (text.to_owned(), false);
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for chunk in bytes.utf8_chunks() {
        out.push_str(&chunk.valid().replace('\\', "\\\\"));
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    (out, true)
}

/// Decodes the escaped form back to the exact bytes; fails on anything the encoding cannot produce.
pub fn try_unescape(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.extend_from_slice(&rest.as_bytes()[..pos]);
        let tail = &rest[pos + 1..];
        if let Some(after) = tail.strip_prefix('\\') {
            out.push(b'\\');
            rest = after;
        } else if let Some(after) = tail.strip_prefix('x') {
            let hex = after
                .get(..2)
                .with_context(|| format!("truncated \\x escape in {s:?}"))?;
            if !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                bail!("\\x{hex} in {s:?} is not two lowercase hex digits");
            }
            out.push(u8::from_str_radix(hex, 16).context("hex digits")?);
            rest = &after[2..];
        } else {
            bail!(
                "lone backslash at byte {} of {s:?}",
                s.len() - rest.len() + pos
            );
        }
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// [`try_unescape`] for test code: panics with the reason.
pub fn unescape(s: &str) -> Vec<u8> {
    try_unescape(s).unwrap_or_else(|e| panic!("cannot unescape: {e:#}"))
}

/// The pointers listed in `event["escaped"]` (empty when absent).
pub fn escaped_pointers(event: &Value) -> Vec<&str> {
    event["escaped"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The exact bytes of the string at JSON Pointer `pointer` in `event`: decoded when the pointer is
/// listed in `escaped`, the UTF-8 bytes of the string otherwise.
pub fn field_bytes(event: &Value, pointer: &str) -> Result<Vec<u8>> {
    let text = event
        .pointer(pointer)
        .with_context(|| format!("no {pointer} in {event}"))?
        .as_str()
        .with_context(|| format!("{pointer} is not a string in {event}"))?;
    if escaped_pointers(event).contains(&pointer) {
        try_unescape(text).with_context(|| format!("decoding {pointer}"))
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
    use super::*;

    #[test]
    fn valid_utf8_is_unchanged() {
        assert_eq!(
            escape("a\\b\nc é".as_bytes()),
            ("a\\b\nc é".to_owned(), false)
        );
    }

    #[test]
    fn invalid_bytes_and_backslashes_are_escaped() {
        let (text, escaped) = escape(b"/tmp/a\\b\n\xff\xc3-\xc3\xa9");
        assert!(escaped);
        assert_eq!(text, "/tmp/a\\\\b\n\\xff\\xc3-é");
    }

    #[test]
    fn round_trips() {
        let cases: &[&[u8]] = &[
            b"",
            b"\\",
            b"\\x41",
            b"\xff",
            b"a\xf0\x9f\x98",
            b"\xe2\x82\xac\x80\\\n",
            b"plain",
        ];
        for &bytes in cases {
            let (text, escaped) = escape(bytes);
            let decoded = if escaped {
                unescape(&text)
            } else {
                text.into_bytes()
            };
            assert_eq!(decoded, bytes);
        }
    }

    #[test]
    fn rejects_malformed_escapes() {
        for bad in ["\\", "a\\q", "\\x4", "\\xFF", "\\xg0"] {
            assert!(try_unescape(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn field_bytes_follows_the_escaped_list() {
        let ev = serde_json::json!({
            "process": {"exe": "/tmp/\\xff\\\\", "args": ["a\\\\b"]},
            "escaped": ["/process/exe"]
        });
        assert_eq!(field_bytes(&ev, "/process/exe").unwrap(), b"/tmp/\xff\\");
        assert_eq!(field_bytes(&ev, "/process/args/0").unwrap(), b"a\\\\b");
    }
}
