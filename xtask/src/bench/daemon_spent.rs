//! What the daemon spent during one step of its figures: CPU (utime+stime of all its threads
//! from /proc/PID/stat, 10 ms ticks), context switches of its threads, and the lines the harness
//! read from it in the same window (every line on the node, not only the generator's).

use anyhow::Result;

use super::procfs;
use super::tracers::Tracer;

#[derive(Clone, Copy, Debug, Default)]
pub struct Spent {
    pub cpu_ns: u64,
    pub lines: u64,
    pub switches: Option<u64>,
}

impl Spent {
    /// Runs `step` and measures the daemon around it.
    pub fn measure<T>(
        tracer: &Tracer,
        ticks_per_second: u64,
        step: impl FnOnce() -> Result<T>,
    ) -> Result<(T, Spent)> {
        let pid = tracer.pid();
        let cpu_before = procfs::cpu_ticks(pid)?;
        let switches_before = procfs::context_switches(pid);
        let lines_before = tracer.lines();
        let out = step()?;
        let ticks = procfs::cpu_ticks(pid)?.saturating_sub(cpu_before);
        let spent = Spent {
            cpu_ns: ticks * 1_000_000_000 / ticks_per_second.max(1),
            lines: tracer.lines().saturating_sub(lines_before),
            switches: procfs::context_switches(pid)
                .zip(switches_before)
                .map(|(after, before)| procfs::grown_between(&before, &after)),
        };
        Ok((out, spent))
    }

    /// Daemon CPU per line read in the window.
    pub fn per_line(&self) -> Option<f64> {
        (self.lines > 0).then(|| self.cpu_ns as f64 / self.lines as f64)
    }

    /// Context switches of the daemon's threads per line read.
    pub fn switches_per_line(&self) -> Option<f64> {
        let switches = self.switches?;
        (self.lines > 0).then(|| switches as f64 / self.lines as f64)
    }
}

/// A per-line ratio with the digits it needs: `2.3`, `0.59`, `0.0098` (two significant digits
/// below 1: context switches per line under a storm are around 0.01).
pub fn fmt_ratio(n: f64) -> String {
    if n >= 1.0 {
        return format!("{n:.1}");
    }
    if n <= 0.0 || !n.is_finite() {
        return format!("{n}");
    }
    let decimals = (-n.log10()).ceil() as usize + 1;
    format!("{n:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_line_needs_lines() {
        let spent = Spent {
            cpu_ns: 3_000,
            lines: 2,
            switches: Some(5),
        };
        assert_eq!(spent.per_line(), Some(1_500.0));
        assert_eq!(spent.switches_per_line(), Some(2.5));
        assert_eq!(Spent::default().per_line(), None);
        let shown: Vec<String> = [0.0098, 0.041, 0.59, 2.34, 0.0]
            .into_iter()
            .map(fmt_ratio)
            .collect();
        assert_eq!(shown, ["0.0098", "0.041", "0.59", "2.3", "0"]);
    }
}
