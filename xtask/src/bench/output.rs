//! Reading what a tracer prints, as it prints it: stdout lines are consumed and counted (a real
//! consumer, so a tracer never blocks on a full pipe), `loss` lines of sealwatch are summed per
//! lane, exec lines carrying a bench marker are stamped with the wall-clock time they were read,
//! connect and accept lines are counted by destination port when asked;
//! stderr goes to a log file and is watched for the "attached and ready" signal.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// When a tracer counts as attached.
#[derive(Clone, Copy, Debug)]
pub enum ReadyOn {
    /// A stdout line containing this text.
    Stdout(&'static str),
    /// A stderr line containing this text.
    Stderr(&'static str),
    /// The first stdout line (a header printed after attaching).
    FirstStdoutLine,
}

/// Events lost per place, summed from sealwatch's `loss` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    pub kernel_critical: u64,
    pub kernel_bulk: u64,
    pub decode: u64,
    pub output: u64,
}

impl Loss {
    pub fn plus(&self, other: &Loss) -> Loss {
        Loss {
            kernel_critical: self.kernel_critical + other.kernel_critical,
            kernel_bulk: self.kernel_bulk + other.kernel_bulk,
            decode: self.decode + other.decode,
            output: self.output + other.output,
        }
    }

    /// Lost anywhere.
    pub fn total(&self) -> u64 {
        self.kernel_critical + self.kernel_bulk + self.decode + self.output
    }

    pub fn since(&self, earlier: &Loss) -> Loss {
        Loss {
            kernel_critical: self.kernel_critical.saturating_sub(earlier.kernel_critical),
            kernel_bulk: self.kernel_bulk.saturating_sub(earlier.kernel_bulk),
            decode: self.decode.saturating_sub(earlier.decode),
            output: self.output.saturating_sub(earlier.output),
        }
    }
}

/// When a marked exec line was read, and the event's own `time` field.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub read_unix_ns: u64,
    pub event_unix_ns: Option<u64>,
}

/// Connect and accept lines of one destination port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetLines {
    pub connect: u64,
    pub accept: u64,
}

/// What has been seen so far on a tracer's streams.
#[derive(Debug, Default)]
pub struct Seen {
    pub lines: u64,
    pub ready: bool,
    pub loss: Loss,
    /// Exec lines whose args carry `<tag>-<key>` are recorded under `key`.
    pub tag: Option<String>,
    pub marks: HashMap<String, Mark>,
    /// While set, connect and accept lines are counted by `network.dport` in `net_lines` (the
    /// listener's port for both: the connect's peer, the accept's own end).
    pub count_net: bool,
    pub net_lines: HashMap<u16, NetLines>,
    /// While `count_net`: per `network.dport`, the event's `time` to the line's read, ns.
    pub net_delays: HashMap<u16, Vec<u64>>,
    /// While `count_net`: when the last connect or accept line was read (CLOCK_REALTIME ns).
    pub net_last_read_unix_ns: u64,
    /// (sensor, program) from the daemon's debug log.
    pub attached: Vec<(String, String)>,
    /// `events=N` from the daemon's last log line.
    pub final_events: Option<u64>,
}

/// The shared record of one tracer's output.
#[derive(Default)]
pub struct Watch {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Watch {
    pub fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `done` holds or `timeout` passes; returns whether it holds.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Seen) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.lock();
        while !done(&seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = match self.changed.wait_timeout(seen, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    fn update(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }
}

/// Consumes `stream` line by line until EOF.
///
/// Lines are handed to `watch` a buffer at a time (one lock and one wake-up of the waiting
/// thread per read, not per line): with a lock and a wake-up per line this reader fell behind a
/// 37k lines/s connect storm, and the daemon had to drop lines for it.
pub fn read_stdout(
    stream: impl Read + Send + 'static,
    watch: Arc<Watch>,
    ready: ReadyOn,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("bench-stdout".into())
        .spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, stream);
            let mut batch = Vec::with_capacity(1 << 17);
            // End offset in `batch` and read time of each line.
            let mut lines: Vec<(usize, u64)> = Vec::with_capacity(1024);
            loop {
                let eof = matches!(reader.read_until(b'\n', &mut batch), Ok(0) | Err(_));
                if !eof {
                    lines.push((batch.len(), unix_ns_now()));
                }
                if eof || reader.buffer().is_empty() || batch.len() >= 1 << 20 {
                    watch.update(|seen| {
                        let mut start = 0;
                        for &(end, read_unix_ns) in &lines {
                            let line = String::from_utf8_lossy(&batch[start..end]);
                            take_line(seen, &line, read_unix_ns, ready);
                            start = end;
                        }
                    });
                    batch.clear();
                    lines.clear();
                }
                if eof {
                    break;
                }
            }
        })
}

/// What one stdout line tells the bench.
fn take_line(seen: &mut Seen, line: &str, read_unix_ns: u64, ready: ReadyOn) {
    seen.lines += 1;
    match ready {
        ReadyOn::FirstStdoutLine => seen.ready = true,
        ReadyOn::Stdout(text) if line.contains(text) => seen.ready = true,
        _ => {}
    }
    if let Some(loss) = parse_loss(line) {
        seen.loss.kernel_critical += loss.kernel_critical;
        seen.loss.kernel_bulk += loss.kernel_bulk;
        seen.loss.decode += loss.decode;
        seen.loss.output += loss.output;
    }
    if seen.count_net {
        if let Some((kind, port)) = parse_net(line) {
            seen.net_last_read_unix_ns = read_unix_ns;
            let count = seen.net_lines.entry(port).or_default();
            match kind {
                NetKind::Connect => count.connect += 1,
                NetKind::Accept => count.accept += 1,
            }
            if let Some(event_unix_ns) = event_time(line) {
                let delays = seen.net_delays.entry(port).or_default();
                delays.push(read_unix_ns.saturating_sub(event_unix_ns));
            }
        }
    }
    if let Some(tag) = &seen.tag {
        if let Some((key, event_unix_ns)) = parse_mark(line, tag) {
            seen.marks.insert(
                key,
                Mark {
                    read_unix_ns,
                    event_unix_ns,
                },
            );
        }
    }
}

/// Copies `stream` into `log` line by line, watching for readiness and the daemon's log lines.
pub fn read_stderr(
    stream: impl Read + Send + 'static,
    watch: Arc<Watch>,
    ready: ReadyOn,
    mut log: File,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("bench-stderr".into())
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                let _ = writeln!(log, "{line}");
                watch.update(|seen| {
                    if let ReadyOn::Stderr(text) = ready {
                        if line.contains(text) {
                            seen.ready = true;
                        }
                    }
                    if let Some(pair) = parse_attached(&line) {
                        seen.attached.push(pair);
                    }
                    if let Some(events) = parse_final_events(&line) {
                        seen.final_events = Some(events);
                    }
                });
            }
        })
}

pub fn unix_ns_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The unsigned integer after `"key":` in a JSON line.
fn json_u64(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn parse_loss(line: &str) -> Option<Loss> {
    if !line.contains("\"kind\":\"loss\"") {
        return None;
    }
    Some(Loss {
        kernel_critical: json_u64(line, "kernel_critical").unwrap_or(0),
        kernel_bulk: json_u64(line, "kernel_bulk").unwrap_or(0),
        decode: json_u64(line, "decode").unwrap_or(0),
        output: json_u64(line, "output").unwrap_or(0),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NetKind {
    Connect,
    Accept,
}

/// The kind and `network.dport` of a connect or accept line.
fn parse_net(line: &str) -> Option<(NetKind, u16)> {
    let kind = if line.contains("\"kind\":\"connect\"") {
        NetKind::Connect
    } else if line.contains("\"kind\":\"accept\"") {
        NetKind::Accept
    } else {
        return None;
    };
    let port = json_u64(line, "dport")?;
    Some((kind, u16::try_from(port).ok()?))
}

/// `(key, event time)` for an exec line with an argument `<tag>-<key>`.
fn parse_mark(line: &str, tag: &str) -> Option<(String, Option<u64>)> {
    if !line.contains("\"kind\":\"exec\"") {
        return None;
    }
    let start = line.find(&format!("\"{tag}-"))? + tag.len() + 2;
    let key: String = line[start..].chars().take_while(|&c| c != '"').collect();
    Some((key, event_time(line)))
}

/// Unix nanoseconds of a line's `time` (the kernel's timestamp of the event).
fn event_time(line: &str) -> Option<u64> {
    line.find("\"time\":\"")
        .and_then(|at| line.get(at + 8..at + 38))
        .and_then(parse_rfc3339_ns)
}

/// Unix nanoseconds of sealwatch's fixed-width `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn parse_rfc3339_ns(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 30 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[29] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| text.get(from..to)?.parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let secs_of_day = num(11, 13)? * 3600 + num(14, 16)? * 60 + num(17, 19)?;
    let nanos = num(20, 29)?;
    // Howard Hinnant's days-from-civil, the inverse of the daemon's formatter.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((days * 86_400 + secs_of_day) * 1_000_000_000 + nanos).ok()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte(@..~)
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `attached sensor="process" program="sched_process_exec"` (daemon debug log).
fn parse_attached(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find(" attached ")?..];
    let field = |name: &str| -> Option<String> {
        let at = rest.find(&format!("{name}="))? + name.len() + 1;
        let value: String = rest[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        Some(value.trim_matches('"').to_owned())
    };
    Some((field("sensor")?, field("program")?))
}

/// `stopped; programs detached events=660 lines=175 ...` (daemon info log).
fn parse_final_events(line: &str) -> Option<u64> {
    let rest = &line[line.find("programs detached")?..];
    let at = rest.find("events=")? + 7;
    let digits: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn loss_lines_are_summed_by_lane() {
        let line = r#"{"schema":"sealwatch.event/v1","kind":"loss","loss":{"kernel_critical":3,"kernel_bulk":0,"decode":1,"output":7}}"#;
        let loss = parse_loss(line).unwrap();
        assert_eq!((loss.kernel_critical, loss.decode, loss.output), (3, 1, 7));
        assert_eq!(loss.total(), 11);
        assert!(parse_loss(r#"{"kind":"exec"}"#).is_none());
    }

    #[test]
    fn connect_and_accept_by_port() {
        let connect = r#"{"kind":"connect","process":{"args":["lg"]},"network":{"protocol":"tcp","sport":49702,"dst":"127.0.0.1","dport":45783}}"#;
        let accept = r#"{"kind":"accept","network":{"sport":49702,"dport":45783}}"#;
        let listen = r#"{"kind":"listen","network":{"sport":45783,"dst":null,"dport":null}}"#;
        assert_eq!(parse_net(connect), Some((NetKind::Connect, 45783)));
        assert_eq!(parse_net(accept), Some((NetKind::Accept, 45783)));
        assert_eq!(parse_net(listen), None);
        assert_eq!(parse_net(r#"{"kind":"exec"}"#), None);
    }

    #[test]
    fn net_lines_are_timed_by_port_only_while_counting() {
        let line = r#"{"schema":"s","time":"1970-01-01T00:00:01.000000000Z","kind":"connect","network":{"dport":45783}}"#;
        let mut seen = Seen::default();
        take_line(&mut seen, line, 1_000_700_000, ReadyOn::FirstStdoutLine);
        assert!(seen.net_delays.is_empty(), "not counting yet");
        assert_eq!(seen.net_last_read_unix_ns, 0);
        seen.count_net = true;
        take_line(&mut seen, line, 1_000_700_000, ReadyOn::FirstStdoutLine);
        assert_eq!(seen.net_delays.get(&45783), Some(&vec![700_000]));
        assert_eq!(seen.net_lines[&45783].connect, 1);
        assert_eq!(seen.net_last_read_unix_ns, 1_000_700_000);
    }

    #[test]
    fn marks_and_times_are_parsed() {
        let line = r#"{"schema":"s","time":"2026-11-22T14:16:29.688867058Z","node":"vm","kind":"exec","process":{"args":["loadgen","exit","swb7-0-12"]}}"#;
        let (key, time) = parse_mark(line, "swb7").unwrap();
        assert_eq!(key, "0-12");
        assert_eq!(time, Some(1_795_356_989_688_867_058));
        assert!(parse_mark(line, "other").is_none());
        assert_eq!(
            parse_rfc3339_ns("1970-01-01T00:00:01.000000002Z"),
            Some(1_000_000_002)
        );
    }

    #[test]
    fn daemon_log_lines() {
        let raw = "\u{1b}[2m2026\u{1b}[0m DEBUG loader: attached \u{1b}[3msensor\u{1b}[0m=\"process\" program=\"sched_process_exec\"";
        let line = strip_ansi(raw);
        assert_eq!(
            parse_attached(&line),
            Some(("process".into(), "sched_process_exec".into()))
        );
        let stop = "INFO sealwatch::run: stopped; programs detached events=660 lines=175";
        assert_eq!(parse_final_events(stop), Some(660));
    }
}
