//! A control for the latency figures: a thread of the harness that sleeps 1 ms at a time while a
//! connect step runs, and records how late it wakes. The daemon's path from event to line has
//! wake-ups of the same kind (its drain timer, then the harness's reader of its stdout), so the
//! sleeper's tail is the part of the measured tail that no daemon could avoid on this machine.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::output::unix_ns_now;
use super::stats::percentile;

/// How long the sleeper asks to sleep each time.
pub const PERIOD: Duration = Duration::from_millis(1);

pub struct Sleeper {
    thread: JoinHandle<Vec<f64>>,
}

impl Sleeper {
    /// Sleeps until `start_unix_ns` (CLOCK_REALTIME, like the generators' common start), then
    /// measures until `end_unix_ns`.
    pub fn spawn(start_unix_ns: u64, end_unix_ns: u64) -> Sleeper {
        let thread = std::thread::spawn(move || {
            let now = unix_ns_now();
            if start_unix_ns > now {
                std::thread::sleep(Duration::from_nanos(start_unix_ns - now));
            }
            let mut late = Vec::new();
            while unix_ns_now() < end_unix_ns {
                let asked = Instant::now();
                std::thread::sleep(PERIOD);
                late.push(asked.elapsed().saturating_sub(PERIOD).as_nanos() as f64);
            }
            late
        });
        Sleeper { thread }
    }

    /// Waits for the end of its window: p50 and p99 of how late it woke, in ns (None if it
    /// never slept, or panicked).
    pub fn finish(self) -> Option<(f64, f64)> {
        let late = self.thread.join().ok()?;
        Some((percentile(&late, 50.0)?, percentile(&late, 99.0)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_its_window_and_never_reports_early_wakeups_as_negative() {
        let start = unix_ns_now() + 20_000_000;
        let sleeper = Sleeper::spawn(start, start + 50_000_000);
        let (p50, p99) = sleeper.finish().expect("50 ms of 1 ms sleeps");
        assert!(
            unix_ns_now() >= start + 50_000_000,
            "returned before its window ended"
        );
        assert!(0.0 <= p50 && p50 <= p99, "p50 {p50} p99 {p99}");
    }

    #[test]
    fn a_window_already_over_measures_nothing() {
        let now = unix_ns_now();
        assert_eq!(Sleeper::spawn(now - 2, now - 1).finish(), None);
    }
}
