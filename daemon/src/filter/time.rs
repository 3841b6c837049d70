//! RFC 3339 → Unix nanoseconds. Hand-written as the inverse of `clock::rfc3339_from_unix_ns`
//! (Howard Hinnant's days-from-civil): one function did not justify a date-time crate, and this
//! one accepts exactly what the event lines print plus what a responder types (`Z` or an offset,
//! any number of fraction digits).

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`, `z` and a space separator are
/// accepted too.
pub fn parse_rfc3339(text: &str) -> Result<i128, String> {
    let err = || format!("{text:?} is not an RFC 3339 time like 2026-11-28T13:44:10Z");
    let b = text.as_bytes();
    if b.len() < 20 {
        return Err(err());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i128, String> {
        let part = text.get(range).ok_or_else(err)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let seps_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !seps_ok {
        return Err(err());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err());
    }
    let mut rest = &text[19..];
    let mut nanos: i128 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        for (i, c) in fraction[..digits].bytes().enumerate() {
            if i < 9 {
                nanos += i128::from(c - b'0') * 10i128.pow(8 - i as u32);
            }
        }
        rest = &fraction[digits..];
    }
    let offset_secs: i128 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let r = rest.as_bytes();
            if r[3] != b':' {
                return Err(err());
            }
            let hh: i128 = rest[1..3].parse().map_err(|_| err())?;
            let mm: i128 = rest[4..6].parse().map_err(|_| err())?;
            let sign = if r[0] == b'-' { -1 } else { 1 };
            sign * (hh * 3600 + mm * 60)
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Ok(secs * 1_000_000_000 + nanos)
}

fn days_in_month(year: i128, month: i128) -> i128 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i128, month: i128, day: i128) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339_from_unix_ns;

    #[test]
    fn inverts_the_line_format() {
        for ns in [0, 951_782_400_000_000_001, 1_795_873_450_123_456_789] {
            assert_eq!(parse_rfc3339(&rfc3339_from_unix_ns(ns)), Ok(ns));
        }
    }

    #[test]
    fn accepts_offsets_and_short_fractions() {
        let z = parse_rfc3339("2026-11-28T13:44:10Z").unwrap_or_default();
        assert_eq!(parse_rfc3339("2026-11-28T15:44:10+02:00"), Ok(z));
        assert_eq!(parse_rfc3339("2026-11-28 13:44:10.5z"), Ok(z + 500_000_000));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "yesterday",
            "2026-11-28",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T13:44:10",
            "2026-11-28T13:44:10+0200",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
