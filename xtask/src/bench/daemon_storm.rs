//! The daemon's connect steps: the container TCP connect/accept loop of the
//! `tcp-connect-container` workload (`loadgen tcp-until`, via `podman exec` in the bench
//! container), flat out with one and then two generator processes, and paced at the latency
//! target's rate (the event's `time` to the line's read, per line).
//!
//! Every iteration is one connect and one accept in a container task, so two kernel records
//! (ebpf/probes/src/net.rs: the sys_exit_connect and sys_exit_accept programs each submit one
//! NetEvent to the critical lane; sys_enter_connect only stashes the address in a map; socket,
//! setsockopt and close are not traced) and two JSON lines (kind `connect` and `accept`, both
//! with the generator's listening port as `network.dport`: that is how its lines are counted).
//!
//! The generators are told a common CLOCK_REALTIME start a little ahead ([`LEAD`], for
//! `podman exec` to start them) and end; the step's duration is from the first generator's real
//! start to the last one's end.

use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::container::BenchContainer;
use super::daemon_spent::Spent;
use super::loadgen::{parse_storm, storm_args, Storm};
use super::output::{unix_ns_now, Loss, NetLines, Seen};
use super::sleeper::Sleeper;
use super::stats::percentile;
use super::tracers::Tracer;

/// Kernel records per iteration: connect exit and accept exit.
pub const EVENTS_PER_ITERATION: u64 = 2;
/// JSON lines per iteration: `connect` and `accept`.
pub const LINES_PER_ITERATION: u64 = 2;
/// Time for `podman exec` to start the generators before their common start.
pub const LEAD: Duration = Duration::from_millis(1500);
/// A generator that began this much after the common start is reported as late.
const LATE_NS: u64 = 50_000_000;

/// One flat-out step.
#[derive(Debug, Clone, Default)]
pub struct StormStep {
    pub procs: u64,
    /// Iterations per second asked of each generator; None: flat out.
    pub rate: Option<u64>,
    pub iterations: u64,
    /// From the first generator's start to the last one's end.
    pub seconds: f64,
    /// The generators' connect and accept lines read back (matched by port).
    pub received: NetLines,
    pub loss: Loss,
    /// Generators that began later than [`LATE_NS`] after the common start.
    pub late: u64,
    /// p50, p99 in ns of the generators' lines: the event's `time` (tracepoint) → line read.
    pub tracepoint_to_line: Option<(f64, f64)>,
    /// p50, p99 in ns of how late a harness thread sleeping 1 ms at a time woke meanwhile (see
    /// `sleeper.rs`).
    pub sleeper_late: Option<(f64, f64)>,
    /// Filled in by the caller, which measures around the whole step.
    pub spent: Spent,
}

impl StormStep {
    pub fn expected(&self) -> u64 {
        self.iterations * LINES_PER_ITERATION
    }

    pub fn received_lines(&self) -> u64 {
        self.received.connect + self.received.accept
    }

    pub fn iterations_per_s(&self) -> f64 {
        self.iterations as f64 / self.seconds.max(1e-9)
    }

    pub fn events_per_s(&self) -> f64 {
        self.iterations_per_s() * EVENTS_PER_ITERATION as f64
    }

    /// `connect storm, 2 gen.` or `connect, 5000/s asked, 1 gen.`.
    pub fn label(&self) -> String {
        match self.rate {
            None => format!("connect storm, {} gen.", self.procs),
            Some(rate) => format!("connect, {rate}/s asked, {} gen.", self.procs),
        }
    }
}

/// Runs `procs` generators in the container for `run`, flat out or at `rate` iterations per
/// second each, and counts and times what the daemon printed.
pub fn run_storm(
    container: &BenchContainer,
    tracer: &Tracer,
    procs: u64,
    rate: Option<u64>,
    run: Duration,
) -> Result<StormStep> {
    let loss_before = begin_counting(tracer);
    let start = unix_ns_now() + LEAD.as_nanos() as u64;
    let end = start + run.as_nanos() as u64;
    let sleeper = Sleeper::spawn(start, end);
    let storms = generate(container, procs, (start, end), rate, None)?;
    let sleeper_late = sleeper.finish();
    let counted = collect(tracer, &storms, &loss_before);
    let first = storms.iter().map(|s| s.first_unix_ns).min().unwrap_or(0);
    let last = storms.iter().map(|s| s.last_unix_ns).max().unwrap_or(0);
    let delays = &counted.delays;
    Ok(StormStep {
        procs,
        rate,
        tracepoint_to_line: percentile(delays, 50.0).zip(percentile(delays, 99.0)),
        sleeper_late,
        iterations: storms.iter().map(|s| s.iterations).sum(),
        seconds: last.saturating_sub(first) as f64 / 1e9,
        received: counted.received,
        loss: counted.loss,
        late: storms
            .iter()
            .filter(|s| s.first_unix_ns > start + LATE_NS)
            .count() as u64,
        spent: Spent::default(),
    })
}

/// Starts counting the connect and accept lines of the generators to come; returns the loss
/// counted so far, for [`collect`].
pub fn begin_counting(tracer: &Tracer) -> Loss {
    let mut seen = tracer.watch.lock();
    seen.count_net = true;
    seen.net_lines.clear();
    seen.net_delays.clear();
    seen.net_last_read_unix_ns = 0;
    seen.loss
}

/// Runs `procs` generators in the container, each from the common CLOCK_REALTIME start to the end
/// of `window` (or for `max` iterations), and returns what each reported.
pub fn generate(
    container: &BenchContainer,
    procs: u64,
    (start, end): (u64, u64),
    rate: Option<u64>,
    max: Option<u64>,
) -> Result<Vec<Storm>> {
    let children: Vec<Child> = (0..procs)
        .map(|_| {
            container
                .loadgen(&storm_args(start, end, rate, max))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting the tcp generator (podman exec)")
        })
        .collect::<Result<_>>()?;
    let mut storms = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "the tcp generator failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        storms.push(parse_storm(&String::from_utf8_lossy(&out.stdout))?);
    }
    Ok(storms)
}

/// What the daemon printed for some generators.
pub struct Counted {
    pub received: NetLines,
    /// The event's `time` to the line's read, ns, of every line.
    pub delays: Vec<f64>,
    pub loss: Loss,
    /// When the last counted line was read (CLOCK_REALTIME ns; 0: none was).
    pub last_read_unix_ns: u64,
}

/// Waits until every line of `storms` was read (or gives up), then for a loss tick; stops
/// counting and returns what was counted.
pub fn collect(tracer: &Tracer, storms: &[Storm], loss_before: &Loss) -> Counted {
    let expected: u64 = storms
        .iter()
        .map(|s| s.iterations * LINES_PER_ITERATION)
        .sum();
    // Lines may trail the generators (the harness's own reader shares the 2 cores and can fall
    // seconds behind): wait until every line was read or counted lost (or give up), then a loss
    // tick (100 ms).
    let accounted = |seen: &Seen| {
        let read: u64 = storms
            .iter()
            .filter_map(|s| seen.net_lines.get(&s.port))
            .map(|got| got.connect + got.accept)
            .sum();
        read + seen.loss.since(loss_before).total() >= expected
    };
    tracer.watch.wait_for(Duration::from_secs(15), accounted);
    std::thread::sleep(Duration::from_millis(300));
    let mut seen = tracer.watch.lock();
    seen.count_net = false;
    let mut received = NetLines::default();
    let mut delays = Vec::new();
    for storm in storms {
        let got = seen.net_lines.get(&storm.port).copied().unwrap_or_default();
        received.connect += got.connect;
        received.accept += got.accept;
        let of_port = seen.net_delays.get(&storm.port).into_iter().flatten();
        delays.extend(of_port.map(|&ns| ns as f64));
    }
    seen.net_delays.clear();
    Counted {
        received,
        delays,
        loss: seen.loss.since(loss_before),
        last_read_unix_ns: seen.net_last_read_unix_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_counts() {
        let step = StormStep {
            procs: 2,
            iterations: 30_000,
            seconds: 3.0,
            received: NetLines {
                connect: 30_000,
                accept: 29_999,
            },
            ..StormStep::default()
        };
        assert_eq!(step.expected(), 60_000);
        assert_eq!(step.received_lines(), 59_999);
        assert!((step.events_per_s() - 20_000.0).abs() < 1e-6);
    }
}
