//! The load generator: `loadgen.c` (embedded here) compiled with `gcc -O2 -static`, so the same
//! binary runs on the host and inside the busybox container; and running it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::cmd;

const SOURCE: &str = include_str!("loadgen.c");

/// Compiles the generator into `dir/loadgen` unless the same source was compiled already.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let src = dir.join("loadgen.c");
    let bin = dir.join("loadgen");
    let fresh = std::fs::read_to_string(&src).is_ok_and(|old| old == SOURCE) && bin.is_file();
    if fresh {
        return Ok(bin);
    }
    std::fs::write(&src, SOURCE).with_context(|| format!("writing {}", src.display()))?;
    cmd::run_keeping_stderr(
        Command::new("gcc")
            .args(["-O2", "-static", "-Wall", "-o"])
            .arg(&bin)
            .arg(&src),
    )
    .context(
        "compiling the load generator (needs gcc, libc6-dev for a static libc and linux-libc-dev \
         for linux/bpf.h: `cargo xtask setup` installs them)",
    )?;
    Ok(bin)
}

/// One workload's own timing of its loop.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    pub iterations: u64,
    /// Wall time of the loop.
    pub nanos: u64,
    /// CPU time (user + kernel) of the generator and its waited-for children during the loop.
    pub cpu_nanos: u64,
}

impl Timed {
    pub fn ns_per_iteration(&self) -> f64 {
        self.nanos as f64 / self.iterations.max(1) as f64
    }

    pub fn cpu_ns_per_iteration(&self) -> f64 {
        self.cpu_nanos as f64 / self.iterations.max(1) as f64
    }
}

/// Runs a generator command (on the host or via `podman exec`) and parses its `result` lines
/// (one per chunk).
pub fn run_timed(command: &mut Command) -> Result<Vec<Timed>> {
    let shown = format!("{command:?}");
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {shown}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let chunks: Vec<Timed> = stdout.lines().filter_map(parse_result).collect();
    if chunks.is_empty() {
        bail!("{shown} printed no result line: {}", stdout.trim());
    }
    Ok(chunks)
}

/// `result NAME ITERATIONS WALL_NS CPU_NS`.
fn parse_result(line: &str) -> Option<Timed> {
    let mut words = line.split_whitespace();
    if words.next()? != "result" {
        return None;
    }
    let _name = words.next()?;
    Some(Timed {
        iterations: words.next()?.parse().ok()?,
        nanos: words.next()?.parse().ok()?,
        cpu_nanos: words.next()?.parse().ok()?,
    })
}

/// What one `loadgen spawn` process did.
#[derive(Debug, Default)]
pub struct Spawned {
    /// (child index, CLOCK_REALTIME ns just before its vfork).
    pub stamps: Vec<(u64, u64)>,
    pub count: u64,
    pub nanos: u64,
}

/// `loadgen spawn RATE N TAG`: N children `loadgen exit TAG-<i>`, paced at RATE/s (0: flat out).
pub fn spawn_command(loadgen: &Path, rate: u64, count: u64, tag: &str) -> Command {
    let mut c = Command::new(loadgen);
    c.args(["spawn", &rate.to_string(), &count.to_string(), tag])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Parses `t I NS` lines and the closing `spawned N NS` line.
pub fn parse_spawned(stdout: &str) -> Result<Spawned> {
    let mut spawned = Spawned::default();
    let mut closed = false;
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["t", i, ns] => spawned.stamps.push((i.parse()?, ns.parse()?)),
            ["spawned", n, ns] => {
                spawned.count = n.parse()?;
                spawned.nanos = ns.parse()?;
                closed = true;
            }
            _ => {}
        }
    }
    if !closed {
        bail!("the spawn generator did not finish (no `spawned` line)");
    }
    Ok(spawned)
}

/// What one `loadgen tcp-until` process did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Storm {
    pub iterations: u64,
    /// CLOCK_REALTIME ns of its loop's start and end.
    pub first_unix_ns: u64,
    pub last_unix_ns: u64,
    /// The port it listened on: the `dport` of its connect and accept lines.
    pub port: u16,
}

/// `loadgen tcp-until START_NS END_NS RATE MAX` (its loop runs from START to END, CLOCK_REALTIME,
/// flat out or at `rate` iterations per second, and stops early after `max` iterations).
pub fn storm_args(
    start_unix_ns: u64,
    end_unix_ns: u64,
    rate: Option<u64>,
    max: Option<u64>,
) -> Vec<String> {
    vec![
        "tcp-until".into(),
        start_unix_ns.to_string(),
        end_unix_ns.to_string(),
        rate.unwrap_or(0).to_string(),
        max.unwrap_or(0).to_string(),
    ]
}

/// Parses the `storm ITERATIONS FIRST_NS LAST_NS PORT` line.
pub fn parse_storm(stdout: &str) -> Result<Storm> {
    for line in stdout.lines() {
        if let ["storm", n, first, last, port] =
            line.split_whitespace().collect::<Vec<_>>().as_slice()
        {
            return Ok(Storm {
                iterations: n.parse()?,
                first_unix_ns: first.parse()?,
                last_unix_ns: last.parse()?,
                port: port.parse()?,
            });
        }
    }
    bail!(
        "the tcp generator printed no `storm` line: {}",
        stdout.trim()
    )
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn result_and_spawn_lines() {
        let t = parse_result("result open-ro 200000 890476644 400000000").unwrap();
        assert_eq!(t.iterations, 200_000);
        assert!((t.ns_per_iteration() - 4452.38322).abs() < 1e-3);
        assert!((t.cpu_ns_per_iteration() - 2000.0).abs() < 1e-9);
        assert!(parse_result("floor attached 5").is_none());
        let s = parse_spawned("t 0 10\nt 1 20\nspawned 2 500\n").unwrap();
        assert_eq!(s.stamps, vec![(0, 10), (1, 20)]);
        assert_eq!((s.count, s.nanos), (2, 500));
        assert!(parse_spawned("t 0 10\n").is_err());
        let storm = parse_storm("storm 17575 100 300 54401\n").unwrap();
        assert_eq!(
            storm,
            Storm {
                iterations: 17575,
                first_unix_ns: 100,
                last_unix_ns: 300,
                port: 54401
            }
        );
        assert!(parse_storm("result tcp 1 2 3\n").is_err());
        assert_eq!(storm_args(1, 2, None, Some(6000))[3..], ["0", "6000"]);
        assert_eq!(storm_args(1, 2, Some(5000), None)[3..], ["5000", "0"]);
    }
}
