//! What the bench reads about the daemon process from /proc: CPU time, context switches, memory.

use std::collections::HashMap;
use std::process::Command;

use anyhow::{Context as _, Result};

use crate::cmd;

/// utime + stime of the whole process (all threads, live and exited), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).context("parsing /proc/PID/stat")
}

/// Fields 14 and 15 (utime, stime), counted after the `(comm)` field, which may hold spaces.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn clock_ticks_per_second() -> u64 {
    cmd::probe(Command::new("getconf").arg("CLK_TCK"))
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// A `KEY: N kB` (or plain `KEY: N`) field of a /proc status file.
fn status_field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A `KEY: N kB` field of /proc/PID/status, in KiB.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    status_field(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

/// A count that only grows, per live thread of `pid` (tid → count).
pub type PerThread = HashMap<u32, u64>;

/// Voluntary + involuntary context switches of each live thread of `pid`.
pub fn context_switches(pid: u32) -> Option<PerThread> {
    per_thread(pid, "status", |status| {
        status_field(status, "voluntary_ctxt_switches").unwrap_or(0)
            + status_field(status, "nonvoluntary_ctxt_switches").unwrap_or(0)
    })
}

/// CPU time of each live thread of `pid` in ns (the first field of its schedstat): precise
/// where [`cpu_ticks`] counts 10 ms ticks.
pub fn run_times_ns(pid: u32) -> Option<PerThread> {
    per_thread(pid, "schedstat", |schedstat| {
        schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse().ok())
            .unwrap_or(0)
    })
}

/// How much the threads' counts grew between two readings: threads that started meanwhile count
/// whole, threads that exited meanwhile are missed (a sum over the live threads would shrink, or
/// saturate to 0, when a thread of the daemon's blocking pool exits after its idle timeout).
pub fn grown_between(before: &PerThread, after: &PerThread) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// `value(/proc/PID/task/TID/<file>)` of each live thread of `pid`.
fn per_thread(pid: u32, file: &str, value: impl Fn(&str) -> u64) -> Option<PerThread> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut counts = HashMap::new();
    for task in tasks.filter_map(Result::ok) {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Ok(text) = std::fs::read_to_string(task.path().join(file)) {
            counts.insert(tid, value(&text));
        }
    }
    Some(counts)
}

/// The state letter of `pid` (`R`, `S`, `T` for stopped, ...).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_state(&stat)
}

/// Field 3, after the `(comm)` field, which may hold spaces.
fn parse_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Resident KiB by kind of mapping, largest first: BPF maps (the ring buffers, whose data pages
/// are mapped twice), heap, the binary, everything else.
pub fn rss_by_mapping(pid: u32) -> Vec<(&'static str, u64)> {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = parse_smaps(&smaps, &exe);
    parts.sort_by_key(|part| std::cmp::Reverse(part.1));
    parts
}

fn parse_smaps(smaps: &str, exe: &str) -> Vec<(&'static str, u64)> {
    let mut parts: Vec<(&'static str, u64)> = Vec::new();
    let mut kind = "other";
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let name = line.split_whitespace().nth(5).unwrap_or_default();
            kind = match name {
                "anon_inode:bpf-map" => "BPF maps (ring buffers)",
                "[heap]" => "heap",
                n if !n.is_empty() && n == exe => "binary",
                _ => "other",
            };
        } else if first == "Rss:" {
            let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match parts.iter_mut().find(|(k, _)| *k == kind) {
                Some(part) => part.1 += kib,
                None => parts.push((kind, kib)),
            }
        }
    }
    parts
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_comm() {
        let stat = "4242 (tokio (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 1";
        assert_eq!(parse_cpu_ticks(stat), Some(22));
        assert_eq!(parse_state(stat), Some('S'));
        let me = std::process::id();
        let before = run_times_ns(me).unwrap();
        assert!(
            before.get(&me).is_some_and(|&ns| ns > 0),
            "the main thread has run"
        );
        assert!(context_switches(me).is_some_and(|c| c.contains_key(&me)));
        // Thread 2 exited meanwhile, thread 3 started.
        let earlier = HashMap::from([(1, 500), (2, 100)]);
        let later = HashMap::from([(1, 700), (3, 50)]);
        assert_eq!(grown_between(&earlier, &later), 250);
        assert!(state(me).is_some_and(|c| c.is_ascii_uppercase()));
    }

    #[test]
    fn smaps_by_kind() {
        let smaps = "7f00-7f10 rw-s 00000000 00:10 1039 anon_inode:bpf-map\nRss: 100 kB\n\
                     5500-5600 rw-p 00000000 00:00 0 [heap]\nRss: 20 kB\n\
                     4000-4100 r-xp 00000000 08:01 7 /bin/sealwatch\nRss: 5 kB\n\
                     7f20-7f30 rw-s 00000000 00:10 1039 anon_inode:bpf-map\nRss: 50 kB\n";
        let parts = parse_smaps(smaps, "/bin/sealwatch");
        assert_eq!(
            parts,
            vec![
                ("BPF maps (ring buffers)", 150),
                ("heap", 20),
                ("binary", 5)
            ]
        );
        assert_eq!(
            status_field("voluntary_ctxt_switches:\t42\n", "voluntary_ctxt_switches"),
            Some(42)
        );
    }
}
