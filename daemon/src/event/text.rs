//! Rendering kernel byte strings (paths, argv) as JSON text without losing a byte.
//!
//! Valid UTF-8 is emitted unchanged. Anything else is emitted in *escaped form*: each backslash
//! becomes `\\` and each byte that is not part of valid UTF-8 becomes `\xHH` (lowercase hex), and
//! the field's JSON Pointer is listed in the event's `escaped` array. Readers undo it only for the
//! listed fields, so ordinary strings never need unescaping. (No crate does this particular
//! reversible, human-readable mapping; `String::from_utf8_lossy` loses bytes.)
use std::borrow::Cow;

/// Returns the text and whether it is in escaped form.
pub fn render(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Cow::Borrowed(text), false),
        Err(_) => (Cow::Owned(escape(bytes)), true),
    }
}

fn escape(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                push_escaping_backslashes(&mut out, valid);
                return out;
            }
            Err(err) => {
                let (valid, rest) = bytes.split_at(err.valid_up_to());
                // `valid_up_to` guarantees this prefix is UTF-8.
                push_escaping_backslashes(&mut out, std::str::from_utf8(valid).unwrap_or_default());
                let bad = err.error_len().unwrap_or(rest.len());
                for byte in &rest[..bad] {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
                bytes = &rest[bad..];
            }
        }
    }
}

fn push_escaping_backslashes(out: &mut String, text: &str) {
    for ch in text.chars() {
        if ch == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(ch);
        }
    }
}

/// Inverse of the escaped form, for tests and for readers of captures.
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            if bytes[i + 1] == b'\\' {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if bytes[i + 1] == b'x' && i + 3 < bytes.len() {
                if let Some(hex) = text.get(i + 2..i + 4) {
                    if let Ok(byte) = u8::from_str_radix(hex, 16) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Escapes one JSON Pointer reference token (RFC 6901).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_untouched_even_with_backslashes() {
        assert_eq!(render(b"a\\b\n"), (Cow::Borrowed("a\\b\n"), false));
    }

    #[test]
    fn invalid_bytes_are_escaped_reversibly() {
        let raw = b"/tmp/x\xff\\y\n\xc3";
        let (text, escaped) = render(raw);
        assert!(escaped);
        assert_eq!(text, "/tmp/x\\xff\\\\y\n\\xc3");
        assert_eq!(unescape(&text), raw.to_vec());
    }

    #[test]
    fn every_byte_round_trips() {
        let raw: Vec<u8> = (0..=255u8).chain([b'\\', b'x', b'4', b'1']).collect();
        let (text, escaped) = render(&raw);
        assert!(escaped);
        assert_eq!(unescape(&text), raw);
    }

    #[test]
    fn pointer_tokens_escape_tilde_and_slash() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
