//! How fast the daemon evaluates records when it has them: the generators here make only about
//! 50k kernel events/s (they share this VM's 2 cores with the daemon and the harness), a quarter
//! of the target rate, so the rate cannot be offered live. Instead the daemon is stopped
//! (SIGSTOP), the container connect loop of `daemon_storm.rs` leaves a known number of records
//! in its critical ring, and the daemon is resumed (SIGCONT). The harness times how fast the
//! records become lines: from the signal to the last of their lines read (the harness's own
//! reading and the signal's delivery included, so the rate is a lower bound of the daemon's),
//! and measures the daemon's CPU time meanwhile (schedstat, in ns: the drain takes tens of
//! milliseconds, a few of the 10 ms ticks other steps count), that of its event-loop thread
//! (ring reading, decoding, evaluation, JSON, the non-blocking write: the main thread) apart.
//!
//! Sized to fit twice: the full run's 8000 records take 0.9 MiB of the default 4 MiB critical
//! ring (120 bytes each: a 112-byte `NetEvent` and the ring's 8-byte header), and their lines
//! (about 700 bytes each) 5.3 MiB of the daemon's default 8 MiB output queue, which holds what
//! the harness's reader has not taken yet: with 24000 records the daemon dropped 10697 lines
//! for that reader, which shares the 2 cores with it. Whatever a smaller ring or queue drops is
//! counted by the `loss` line, and the drain is then not judged.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::container::BenchContainer;
use super::daemon_storm::{
    begin_counting, collect, generate, EVENTS_PER_ITERATION, LEAD, LINES_PER_ITERATION,
};
use super::output::{unix_ns_now, Loss, NetLines};
use super::procfs;
use super::tracers::{signal, Tracer};

/// Generator processes, each running [`Backlog::per_proc`] iterations.
pub const PROCS: u64 = 2;
/// From the generators' exit to SIGCONT.
const SETTLE: Duration = Duration::from_millis(300);
/// The generators stop at their iteration count; this only bounds a stuck one.
const RUN_AT_MOST: Duration = Duration::from_secs(20);

/// One drained backlog.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub per_proc: u64,
    /// Kernel records the generators made while the daemon was stopped.
    pub records: u64,
    /// Their connect and accept lines read back.
    pub received: NetLines,
    pub loss: Loss,
    /// From SIGCONT to the last of their lines read.
    pub seconds: f64,
    /// Daemon CPU time (all its threads) from SIGCONT to the loss tick after the last line.
    pub cpu_ns: Option<u64>,
    /// The part of it spent by the event-loop (main) thread.
    pub loop_cpu_ns: Option<u64>,
}

impl Backlog {
    pub fn expected(&self) -> u64 {
        self.records / EVENTS_PER_ITERATION * LINES_PER_ITERATION
    }

    pub fn received_lines(&self) -> u64 {
        self.received.connect + self.received.accept
    }

    /// Every record became a line after the resume and nothing was dropped anywhere.
    pub fn complete(&self) -> bool {
        self.received_lines() == self.expected()
            && self.loss == Loss::default()
            && self.seconds > 0.0
    }

    /// Kernel records turned into lines per second of wall-clock time.
    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    pub fn cpu_per_record(&self) -> Option<f64> {
        self.per_record(self.cpu_ns?)
    }

    /// The event-loop thread's CPU per record: one core evaluates `1e9 /` this records a second.
    pub fn loop_cpu_per_record(&self) -> Option<f64> {
        self.per_record(self.loop_cpu_ns?)
    }

    fn per_record(&self, ns: u64) -> Option<f64> {
        (self.records > 0).then(|| ns as f64 / self.records as f64)
    }

    /// `2 gen. × 2000 iterations`.
    pub fn label(&self) -> String {
        format!("{PROCS} gen. × {} iterations", self.per_proc)
    }
}

/// Stops the daemon, lets [`PROCS`] generators run `per_proc` iterations each, resumes it and
/// times the drain.
pub fn run_backlog(container: &BenchContainer, tracer: &Tracer, per_proc: u64) -> Result<Backlog> {
    let pid = tracer.pid();
    let loss_before = begin_counting(tracer);
    let stopped = Stopped::new(pid)?;
    let start = unix_ns_now() + LEAD.as_nanos() as u64;
    let window = (start, start + RUN_AT_MOST.as_nanos() as u64);
    let storms = generate(container, PROCS, window, None, Some(per_proc))?;
    // `podman exec` tears down after its process exits; the drain is timed on a quiet node.
    std::thread::sleep(SETTLE);
    if procfs::state(pid) != Some('T') {
        bail!("the daemon (pid {pid}) was resumed by something else while the generators ran");
    }
    let cpu_before = procfs::run_times_ns(pid);
    let resumed_unix_ns = unix_ns_now();
    drop(stopped);
    let counted = collect(tracer, &storms, &loss_before);
    let cpu_after = procfs::run_times_ns(pid);
    let (cpu_ns, loop_cpu_ns) = match (&cpu_before, &cpu_after) {
        (Some(before), Some(after)) => {
            // The event loop is the main thread, whose tid is the pid.
            let main = |times: &procfs::PerThread| times.get(&pid).copied().unwrap_or(0);
            (
                Some(procfs::grown_between(before, after)),
                Some(main(after).saturating_sub(main(before))),
            )
        }
        _ => (None, None),
    };
    Ok(Backlog {
        per_proc,
        records: storms.iter().map(|s| s.iterations).sum::<u64>() * EVENTS_PER_ITERATION,
        received: counted.received,
        loss: counted.loss,
        seconds: counted.last_read_unix_ns.saturating_sub(resumed_unix_ns) as f64 / 1e9,
        cpu_ns,
        loop_cpu_ns,
    })
}

/// The daemon stopped by SIGSTOP until this is dropped (SIGCONT), so an error on the way never
/// leaves it stopped.
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Result<Stopped> {
        signal(pid, "STOP");
        let stopped = Stopped(pid);
        let asked = Instant::now();
        while procfs::state(pid) != Some('T') {
            if asked.elapsed() > Duration::from_secs(2) {
                bail!("the daemon (pid {pid}) did not stop within 2 s of SIGSTOP");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(stopped)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_completeness() {
        let mut b = Backlog {
            per_proc: 6000,
            records: 24_000,
            received: NetLines {
                connect: 12_000,
                accept: 12_000,
            },
            seconds: 0.08,
            cpu_ns: Some(24_000_000),
            loop_cpu_ns: Some(12_000_000),
            ..Backlog::default()
        };
        assert!(b.complete());
        assert!((b.records_per_s() - 300_000.0).abs() < 1e-6);
        assert_eq!(b.cpu_per_record(), Some(1_000.0));
        assert_eq!(b.loop_cpu_per_record(), Some(500.0));
        assert_eq!(b.label(), "2 gen. × 6000 iterations");
        b.loss.kernel_critical = 1;
        assert!(!b.complete(), "a drop is not a complete drain");
        b.loss = Loss::default();
        b.received.accept -= 1;
        assert!(!b.complete(), "a missing line is not a complete drain");
        b.received.accept += 1;
        b.seconds = 0.0;
        assert!(
            !b.complete(),
            "no line read after the resume is not a drain"
        );
    }
}
