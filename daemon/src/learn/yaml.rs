//! Writing untrusted text (images, names, times from event lines) into YAML safely.
//!
//! Every scalar is double-quoted with escapes for whatever YAML would not read back verbatim, so
//! an image or name cannot change the document's structure; comments get the same escapes so
//! no character can end a comment line early. Hand-written because serde_yaml_ng picks plain or
//! quoted style by itself and has no comment support.

/// `text` as a YAML double-quoted scalar that reads back exactly.
pub(super) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ch => push_char(&mut out, ch),
        }
    }
    out.push('"');
    out
}

/// `items` as a YAML flow sequence of quoted strings: `["a", "b"]`.
pub(super) fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quote).collect();
    format!("[{}]", items.join(", "))
}

/// `text` made safe for the inside of a `#` comment (one line, printable).
pub(super) fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        push_char(&mut out, ch);
    }
    out
}

fn push_char(out: &mut String, ch: char) {
    if is_printable(ch) {
        out.push(ch);
        return;
    }
    let code = u32::from(ch);
    let escaped = match code {
        0..=0xff => format!("\\x{code:02x}"),
        0x100..=0xffff => format!("\\u{code:04x}"),
        _ => format!("\\U{code:08x}"),
    };
    out.push_str(&escaped);
}

/// Characters YAML allows raw in a one-line scalar: printable ASCII and most of Unicode, but not
/// controls, DEL, C1 (NEL is a line break to YAML 1.1), the Unicode line and paragraph
/// separators, a byte order mark, and the non-characters U+FFFE/U+FFFF.
fn is_printable(ch: char) -> bool {
    matches!(ch, ' '..='~')
        || (ch >= '\u{a0}'
            && !matches!(
                ch,
                '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
            ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_read_back_exactly() {
        let nasty = [
            "plain",
            "",
            "with \"quotes\" and \\backslash\\",
            "new\nline\r\ttab",
            "line\u{2028}sep\u{85}nel\u{feff}bom\u{7f}del\u{0}nul",
            "émoji 🦀 and ✓",
            "- item: [x] {y} # not a comment &a *b !tag | > % @ `",
            "yes",
            "~",
            "1.0",
        ];
        for text in nasty {
            let yaml = format!("key: {}\n", quote(text));
            let value: Result<serde_yaml_ng::Value, _> = serde_yaml_ng::from_str(&yaml);
            let read = value
                .ok()
                .and_then(|v| v.get("key").and_then(|k| k.as_str()).map(str::to_owned));
            assert_eq!(read.as_deref(), Some(text), "{yaml}");
        }
    }

    #[test]
    fn comments_stay_on_one_line() {
        let text = comment("a\nb\r\u{2028}c\u{85}d");
        assert!(!text.contains(['\n', '\r', '\u{2028}', '\u{85}']));
        let yaml = format!("# {text}\nkey: 1\n");
        let value: Result<serde_yaml_ng::Value, _> = serde_yaml_ng::from_str(&yaml);
        assert!(value.is_ok_and(|v| v.get("key").is_some()));
    }
}
