//! Kernel timestamps → wall-clock time. The kernel stamps events with CLOCK_BOOTTIME; the offset
//! to CLOCK_REALTIME is measured once at start and recorded, so replay prints the same times.

/// Nanoseconds to add to a CLOCK_BOOTTIME reading to get Unix time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BootClock {
    pub boot_to_unix_ns: i128,
}

impl BootClock {
    /// Measures the offset now.
    pub fn measure() -> Self {
        let boot = now_boottime_ns();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        BootClock {
            boot_to_unix_ns: unix - i128::from(boot),
        }
    }

    pub fn unix_ns(&self, ktime_ns: u64) -> i128 {
        i128::from(ktime_ns) + self.boot_to_unix_ns
    }

    /// The wall-clock time of a kernel timestamp.
    pub fn wall(&self, ktime_ns: u64) -> WallTime {
        WallTime {
            unix_ns: self.unix_ns(ktime_ns),
        }
    }
}

/// A wall-clock instant, shown as RFC 3339 UTC with nanoseconds
/// (`2026-11-22T13:44:10.123456789Z`). Lines keep it as a number and write its text straight
/// into the output: a `String` per line was a malloc, a copy and a free for every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct WallTime {
    pub unix_ns: i128,
}

impl WallTime {
    /// Appends the RFC 3339 text (no quotes).
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        write_rfc3339(self.unix_ns, out);
    }
}

impl std::fmt::Display for WallTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&rfc3339_from_unix_ns(self.unix_ns))
    }
}

impl serde::Serialize for WallTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// CLOCK_BOOTTIME now, the clock of `bpf_ktime_get_boot_ns()`.
pub fn now_boottime_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|ts| ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Formats Unix nanoseconds as RFC 3339 UTC with nanoseconds. Hand-written (Howard Hinnant's
/// days-to-civil algorithm) because the common crates trim trailing zeros, and a fixed-width
/// time field keeps lines sortable as text.
pub fn rfc3339_from_unix_ns(unix_ns: i128) -> String {
    let mut out = Vec::with_capacity(RFC3339_LEN);
    write_rfc3339(unix_ns, &mut out);
    // Only ASCII digits and punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Length of the text for years 0 to 9999.
const RFC3339_LEN: usize = 30;

/// Appends `unix_ns` as RFC 3339 text (see `rfc3339_from_unix_ns`).
fn write_rfc3339(unix_ns: i128, out: &mut Vec<u8>) {
    // i64 from here on: seconds since 1970 fit for any time a kernel can report, and 128-bit
    // division and formatting were a visible share of the daemon's CPU per line.
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let nanos = unix_ns.rem_euclid(1_000_000_000) as i64;
    let days = secs.div_euclid(86_400);
    let secs_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        // Outside what four digits hold: never a kernel time, but still printed faithfully.
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60
        );
        out.extend_from_slice(text.as_bytes());
        return;
    }
    // Digit by digit into a fixed buffer: `format!` with padding was 7% of the daemon's CPU
    // per line under a connect storm.
    let mut text: [u8; RFC3339_LEN] = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut text[0..4], year as u64);
    put_digits(&mut text[5..7], month as u64);
    put_digits(&mut text[8..10], day as u64);
    put_digits(&mut text[11..13], (secs_of_day / 3600) as u64);
    put_digits(&mut text[14..16], (secs_of_day / 60 % 60) as u64);
    put_digits(&mut text[17..19], (secs_of_day % 60) as u64);
    put_digits(&mut text[20..29], nanos as u64);
    out.extend_from_slice(&text);
}

/// Writes `value` as decimal digits filling `slot`, zero-padded (higher digits are cut).
fn put_digits(slot: &mut [u8], mut value: u64) {
    for byte in slot.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_from_unix_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_from_unix_ns(1_795_873_450_123_456_789),
            "2026-11-28T13:44:10.123456789Z"
        );
        assert_eq!(
            rfc3339_from_unix_ns(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339_from_unix_ns(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            rfc3339_from_unix_ns(253_402_300_800_000_000_000),
            "10000-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn boot_clock_adds_offset() {
        let clock = BootClock {
            boot_to_unix_ns: 1_000_000_000,
        };
        assert_eq!(clock.wall(5).to_string(), "1970-01-01T00:00:01.000000005Z");
    }

    #[test]
    fn wall_time_writes_and_serialises_the_same_text() {
        let at = BootClock {
            boot_to_unix_ns: 1_795_873_450_000_000_000,
        }
        .wall(123_456_789);
        let mut out = b"x".to_vec();
        at.write_rfc3339(&mut out);
        assert_eq!(out, b"x2026-11-28T13:44:10.123456789Z");
        assert_eq!(
            serde_json::to_string(&at).ok().as_deref(),
            Some("\"2026-11-28T13:44:10.123456789Z\"")
        );
        let far = WallTime {
            unix_ns: 253_402_300_800_000_000_000,
        };
        assert_eq!(far.to_string(), "10000-01-01T00:00:00.000000000Z");
    }
}
