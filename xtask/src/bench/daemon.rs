//! The daemon's own figures, from one sealwatch run under a ramp of paced exec generators:
//! drops per lane at each rate (the generator knows the true count), the highest rate without a
//! critical-lane drop, CPU per delivered line, peak RSS, and latency from the exec to the line.
//!
//! CPU is utime+stime of the daemon (all threads) from /proc/PID/stat around each step, per line
//! read in the same window (all of the node's exec lines, not only the generator's).
//!
//! Each generated exec is `loadgen exit <tag>-<proc>-<i>`, a static binary that exits at once;
//! the generator stamps CLOCK_REALTIME just before each vfork, the harness's stdout reader stamps
//! each line when it reads it (the same clock, same host). Every spawn is three kernel events
//! for sealwatch (fork, exec, exit) and one JSON line (the exec).

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::loadgen::{parse_spawned, spawn_command};
use super::output::Loss;
use super::procfs;
use super::rounds::{fmt_elapsed, fmt_ns};
use super::stats::percentile;
use super::tracers::{Config, Env, Tracer};

/// Kernel events per generated spawn: sched_process_fork, sched_process_exec, sched_process_exit.
pub const EVENTS_PER_SPAWN: u64 = 3;

/// One rate step. `rate` 0 means as fast as the generators go.
#[derive(Debug, Clone)]
pub struct Step {
    pub rate: u64,
    pub procs: u64,
    pub generated: u64,
    pub seconds: f64,
    /// Marked exec lines read back.
    pub received: u64,
    pub loss: Loss,
    /// p50, p99 in ns: stamp before vfork → line read.
    pub syscall_to_line: Option<(f64, f64)>,
    /// p50, p99 in ns: the event's `time` (tracepoint, boot clock mapped to wall clock by the
    /// daemon) → line read.
    pub tracepoint_to_line: Option<(f64, f64)>,
    /// Daemon CPU (utime+stime) during the step, and all lines read in the same window.
    pub cpu_ns: u64,
    pub lines: u64,
    /// Context switches of the daemon's threads during the step.
    pub switches: Option<u64>,
}

impl Step {
    pub fn exec_rate(&self) -> f64 {
        self.generated as f64 / self.seconds.max(1e-9)
    }

    /// Daemon CPU per JSON line read during the step.
    pub fn cpu_per_line(&self) -> Option<f64> {
        (self.lines > 0).then(|| self.cpu_ns as f64 / self.lines as f64)
    }
}

#[derive(Debug, Default)]
pub struct DaemonFigures {
    pub steps: Vec<Step>,
    /// Kernel events the daemon handled in its whole life (its `events=` at stop).
    pub events: Option<u64>,
    /// Peak resident set (VmHWM), KiB, and what is resident at the end, by kind of mapping.
    pub vm_hwm_kib: Option<u64>,
    pub rss_parts_kib: Vec<(&'static str, u64)>,
}

impl DaemonFigures {
    /// The step that judges CPU per event: the busiest one (most lines per second).
    pub fn busiest(&self) -> Option<&Step> {
        self.steps.iter().max_by(|a, b| {
            let rate = |s: &Step| s.lines as f64 / s.seconds.max(1e-9);
            rate(a).total_cmp(&rate(b))
        })
    }
}

/// (rate per second, generator processes); 0 = flat out.
fn ramp(quick: bool) -> Vec<(u64, u64)> {
    if quick {
        vec![(500, 1), (0, 2)]
    } else {
        vec![(250, 1), (500, 1), (1000, 1), (2000, 2), (0, 2)]
    }
}

pub fn run(env: &Env, quick: bool, started: Instant) -> Result<DaemonFigures> {
    let secs = if quick { 1 } else { 3 };
    let tracer = Tracer::start(Config::Sealwatch, env, "daemon")?
        .context("sealwatch is not the baseline")?;
    let pid = tracer.pid();
    let tick = procfs::clock_ticks_per_second();
    let mut figures = DaemonFigures::default();
    for (index, (rate, procs)) in ramp(quick).into_iter().enumerate() {
        let per_proc = if rate == 0 {
            2000 * secs / procs
        } else {
            rate * secs / procs
        };
        let cpu_before = procfs::cpu_ticks(pid)?;
        let switches_before = procfs::context_switches(pid);
        let lines_before = tracer.lines();
        let mut step = run_step(env, &tracer, index, rate, procs, per_proc)?;
        step.cpu_ns = procfs::cpu_ticks(pid)?.saturating_sub(cpu_before) * 1_000_000_000 / tick;
        step.lines = tracer.lines().saturating_sub(lines_before);
        step.switches = procfs::context_switches(pid)
            .zip(switches_before)
            .map(|(after, before)| after.saturating_sub(before));
        println!(
            "[bench {}] daemon · {} exec/s asked, {:.0}/s made · {} of {} lines · lost critical {} bulk {} output {} · CPU {} per line",
            fmt_elapsed(started),
            if rate == 0 { "max".into() } else { rate.to_string() },
            step.exec_rate(),
            step.received,
            step.generated,
            step.loss.kernel_critical,
            step.loss.kernel_bulk,
            step.loss.output,
            step.cpu_per_line().map_or("-".into(), fmt_ns),
        );
        let dropped = step.loss.kernel_critical > 0;
        figures.steps.push(step);
        if dropped {
            break;
        }
    }
    figures.vm_hwm_kib = procfs::status_kib(pid, "VmHWM");
    figures.rss_parts_kib = procfs::rss_by_mapping(pid);
    let seen = tracer.stop()?;
    figures.events = seen.final_events;
    Ok(figures)
}

fn run_step(
    env: &Env,
    tracer: &Tracer,
    index: usize,
    rate: u64,
    procs: u64,
    per_proc: u64,
) -> Result<Step> {
    let tag = format!("swb{}s{index}", std::process::id());
    let loss_before = {
        let mut seen = tracer.watch.lock();
        seen.tag = Some(tag.clone());
        seen.marks.clear();
        seen.loss
    };
    let children: Vec<Child> = (0..procs)
        .map(|p| {
            spawn_command(&env.loadgen, rate / procs, per_proc, &format!("{tag}-{p}"))
                .spawn()
                .context("starting the spawn generator")
        })
        .collect::<Result<_>>()?;
    let mut generated = 0;
    let mut nanos = 0;
    let mut stamps = Vec::new();
    for (p, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "the spawn generator failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let spawned = parse_spawned(&String::from_utf8_lossy(&out.stdout))?;
        generated += spawned.count;
        nanos = nanos.max(spawned.nanos);
        stamps.extend(
            spawned
                .stamps
                .into_iter()
                .map(|(i, ns)| (format!("{p}-{i}"), ns)),
        );
    }
    // Lines may trail the generator: wait for all (or give up), then a loss tick (100 ms).
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(5) {
        let seen = tracer.watch.lock();
        if stamps.iter().all(|(key, _)| seen.marks.contains_key(key)) {
            break;
        }
        drop(seen);
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let seen = tracer.watch.lock();
    let mut syscall = Vec::new();
    let mut tracepoint = Vec::new();
    let mut received = 0;
    for (key, stamp) in &stamps {
        if let Some(mark) = seen.marks.get(key) {
            received += 1;
            syscall.push(mark.read_unix_ns as f64 - *stamp as f64);
            if let Some(event) = mark.event_unix_ns {
                tracepoint.push(mark.read_unix_ns as f64 - event as f64);
            }
        }
    }
    let p50_p99 = |v: &[f64]| Some((percentile(v, 50.0)?, percentile(v, 99.0)?));
    Ok(Step {
        rate,
        procs,
        generated,
        seconds: nanos as f64 / 1e9,
        received,
        loss: seen.loss.since(&loss_before),
        syscall_to_line: p50_p99(&syscall),
        tracepoint_to_line: p50_p99(&tracepoint),
        cpu_ns: 0,
        lines: 0,
        switches: None,
    })
}
