//! Lexical path handling for paths the kernel reported as strings (no filesystem access: replay
//! must give the same answer anywhere).

/// Joins `name` to `base` unless it is absolute, and removes `.`, `..` and duplicate slashes.
pub fn resolve(base: &[u8], name: &[u8]) -> Vec<u8> {
    let joined: Vec<u8> = if name.starts_with(b"/") {
        name.to_vec()
    } else {
        [base, b"/", name].concat()
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in joined.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = Vec::with_capacity(joined.len());
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// True when `path` is `prefix` or below it.
pub fn under(path: &[u8], prefix: &[u8]) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_and_dots() {
        assert_eq!(resolve(b"/tmp", b"./x.sh"), b"/tmp/x.sh");
        assert_eq!(resolve(b"/tmp/a", b"../etc//passwd"), b"/tmp/etc/passwd");
        assert_eq!(resolve(b"/ignored", b"/etc/passwd"), b"/etc/passwd");
        assert_eq!(resolve(b"/", b".."), b"/");
    }

    #[test]
    fn under_respects_component_boundaries() {
        assert!(under(b"/etc/passwd", b"/etc"));
        assert!(under(b"/etc", b"/etc"));
        assert!(!under(b"/etcetera", b"/etc"));
    }
}
