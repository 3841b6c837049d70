//! Capture file names: `capture-<seq, 8 digits>-<UTC start, YYYYMMDDTHHMMSSZ>.swc`, so `ls` sorts
//! them in order and a responder sees when each begins without opening it.
use crate::clock::rfc3339_from_unix_ns;

pub const PREFIX: &str = "capture-";
pub const SUFFIX: &str = ".swc";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileName {
    pub seq: u64,
    /// Start time from the name (whole seconds), Unix ns.
    pub start_unix_ns: i64,
}

pub fn format(seq: u64, start_unix_ns: i64) -> String {
    // `2026-11-28T13:44:10.123456789Z` → `20261128T134410Z`
    let full = rfc3339_from_unix_ns(i128::from(start_unix_ns));
    let compact: String = full
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{PREFIX}{seq:08}-{compact}Z{SUFFIX}")
}

pub fn parse(name: &str) -> Option<FileName> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (seq, stamp) = rest.split_once('-')?;
    let seq = seq.parse().ok()?;
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    let start = crate::filter::parse_rfc3339(&text).ok()?;
    Some(FileName {
        seq,
        start_unix_ns: i64::try_from(start).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_to_the_second() {
        let name = format(42, 1_795_873_450_123_456_789);
        assert_eq!(name, "capture-00000042-20261128T134410Z.swc");
        assert_eq!(
            parse(&name),
            Some(FileName {
                seq: 42,
                start_unix_ns: 1_795_873_450_000_000_000
            })
        );
        assert_eq!(parse("capture-00000042-20261128T134410Z.swc.tmp"), None);
        assert_eq!(parse("notes.txt"), None);
    }
}
