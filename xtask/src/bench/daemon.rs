//! The daemon's own figures, from one sealwatch run: first under a ramp of paced exec
//! generators, then under the container connect/accept loop flat out (`daemon_storm.rs`): drops
//! per lane at each rate (the generators know the true count), the highest rate without a
//! critical-lane drop, CPU per delivered line (`daemon_spent.rs`), peak RSS (the whole life's
//! VmHWM and the highest VmRSS sampled under load, `rss_sampler.rs`), and latency from the exec
//! to the line, then under the connect loop paced at 10k events/s (which judges latency). Then a
//! second sealwatch with `--wakeup-pace-us 1000` (timer drains every 1 ms instead of 5 while
//! records flow) repeats the two latency steps, so the report shows what a shorter pace buys in
//! latency and costs in daemon CPU. Between the two, the first daemon drains a backlog the
//! connect loop left in its ring while it was stopped (`daemon_backlog.rs`): the evaluation rate
//! the generators here cannot offer live.
//!
//! Each generated exec is `loadgen exit <tag>-<proc>-<i>`, a static binary that exits at once;
//! the generator stamps CLOCK_REALTIME just before each vfork, the harness's stdout reader stamps
//! each line when it reads it (the same clock, same host). Every spawn is three kernel events
//! for sealwatch (fork, exec, exit) and one JSON line (the exec).

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::container::BenchContainer;
use super::daemon_backlog::{run_backlog, Backlog};
use super::daemon_spent::Spent;
use super::daemon_storm::{run_storm, StormStep, EVENTS_PER_ITERATION, LINES_PER_ITERATION};
use super::loadgen::{parse_spawned, spawn_command};
use super::output::Loss;
use super::procfs;
use super::rounds::{fmt_elapsed, fmt_ns};
use super::rss_sampler::RssSampler;
use super::stats::percentile;
use super::tracers::{Config, Env, Tracer};

/// Kernel events per generated spawn: sched_process_fork, sched_process_exec, sched_process_exit.
pub const EVENTS_PER_SPAWN: u64 = 3;

/// The latency target's rate: the paced connect step runs at it, and it and the ramp step
/// nearest it are repeated at the short pace.
pub const LATENCY_RATE: f64 = 10_000.0;

/// The daemon's flag for its wake-up pace.
const PACE_FLAG: &str = "--wakeup-pace-us";
/// The pace of the second daemon: what a user who wants latency would choose.
pub const SHORT_PACE_US: u64 = 1000;

/// `--wakeup-pace-us 1000`, as the report and the progress lines name the second daemon.
pub fn short_pace() -> String {
    format!("{PACE_FLAG} {SHORT_PACE_US}")
}

/// One rate step of the exec ramp. `rate` 0 means as fast as the generators go.
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
    /// What the daemon spent around the step.
    pub spent: Spent,
}

impl Step {
    pub fn exec_rate(&self) -> f64 {
        self.generated as f64 / self.seconds.max(1e-9)
    }

    /// `exec ramp, 1000 exec/s asked, 1 gen.`.
    fn label(&self) -> String {
        let rate = if self.rate == 0 {
            "max".into()
        } else {
            self.rate.to_string()
        };
        format!("exec ramp, {rate} exec/s asked, {} gen.", self.procs)
    }
}

/// A step of either kind, as the targets judge it.
#[derive(Debug, Clone)]
pub struct Rate<'a> {
    pub label: String,
    /// Kernel events the generators caused per second.
    pub events_per_s: f64,
    /// All lines the daemon printed per second of the step.
    pub lines_per_s: f64,
    /// Kernel events the generators caused in the step.
    pub events: u64,
    /// Kernel events per generator line: 3 for an exec (fork, exec, exit), 1 for a connect or
    /// an accept.
    pub events_per_line: u64,
    pub loss: Loss,
    pub spent: &'a Spent,
}

#[derive(Debug)]
pub struct DaemonFigures {
    pub steps: Vec<Step>,
    /// The connect/accept steps, after the ramp.
    pub storm: Vec<StormStep>,
    /// The backlogs drained after the connect steps, in order.
    pub backlogs: Vec<Backlog>,
    /// Kernel events the daemon handled in its whole life (its `events=` at stop).
    pub events: Option<u64>,
    /// Peak resident set of the whole life, start-up included (VmHWM), KiB.
    pub vm_hwm_kib: Option<u64>,
    /// The highest VmRSS sampled (every 100 ms) from the first load step to the last, KiB.
    pub rss_under_load_kib: Option<u64>,
    /// What is resident at the end, by kind of mapping.
    pub rss_parts_kib: Vec<(&'static str, u64)>,
    /// The latency steps again, in a daemon started with `--wakeup-pace-us 1000`; or why not.
    pub short_pace: Result<ShortPace, String>,
}

/// The latency steps in a daemon that forces a wake-up per record.
#[derive(Debug, Clone)]
pub struct ShortPace {
    /// The exec ramp step nearest [`LATENCY_RATE`].
    pub exec: Step,
    /// The paced connect step.
    pub connect: StormStep,
}

impl Default for DaemonFigures {
    fn default() -> Self {
        DaemonFigures {
            steps: Vec::new(),
            storm: Vec::new(),
            backlogs: Vec::new(),
            events: None,
            vm_hwm_kib: None,
            rss_under_load_kib: None,
            rss_parts_kib: Vec::new(),
            short_pace: Err("not run".into()),
        }
    }
}

impl Rate<'_> {
    /// All daemon CPU of the step over the kernel events the generators caused (an upper bound:
    /// it includes the node's other events in that window).
    pub fn cpu_per_event(&self) -> Option<f64> {
        (self.events > 0).then(|| self.spent.cpu_ns as f64 / self.events as f64)
    }
}

impl DaemonFigures {
    /// Every step, exec ramp first, then the connect storm.
    pub fn rates(&self) -> Vec<Rate<'_>> {
        let exec = self.steps.iter().map(|s| Rate {
            label: s.label(),
            events_per_s: s.exec_rate() * EVENTS_PER_SPAWN as f64,
            lines_per_s: s.spent.lines as f64 / s.seconds.max(1e-9),
            events: s.generated * EVENTS_PER_SPAWN,
            events_per_line: EVENTS_PER_SPAWN,
            loss: s.loss,
            spent: &s.spent,
        });
        let storm = self.storm.iter().map(|s| Rate {
            label: s.label(),
            events_per_s: s.events_per_s(),
            lines_per_s: s.spent.lines as f64 / s.seconds.max(1e-9),
            events: s.iterations * EVENTS_PER_ITERATION,
            events_per_line: EVENTS_PER_ITERATION / LINES_PER_ITERATION,
            loss: s.loss,
            spent: &s.spent,
        });
        exec.chain(storm).collect()
    }

    /// The exec ramp step nearest [`LATENCY_RATE`] kernel events/s among those with latencies.
    pub fn latency_step(&self) -> Option<&Step> {
        let gap = |s: &Step| (s.exec_rate() * EVENTS_PER_SPAWN as f64 - LATENCY_RATE).abs();
        self.steps
            .iter()
            .filter(|s| s.tracepoint_to_line.is_some())
            .min_by(|a, b| gap(a).total_cmp(&gap(b)))
    }

    /// The connect step paced at [`LATENCY_RATE`] kernel events/s.
    pub fn connect_latency_step(&self) -> Option<&StormStep> {
        self.storm.iter().find(|s| s.rate.is_some())
    }

    /// The backlog that judges the rate: the first that lost anything, else the fastest.
    pub fn judged_backlog(&self) -> Option<&Backlog> {
        let fastest = |a: &&Backlog, b: &&Backlog| a.records_per_s().total_cmp(&b.records_per_s());
        self.backlogs
            .iter()
            .find(|b| !b.complete())
            .or_else(|| self.backlogs.iter().max_by(fastest))
    }

    /// The step that judges CPU per event: the busiest one (most lines per second).
    pub fn busiest(&self) -> Option<Rate<'_>> {
        self.rates()
            .into_iter()
            .max_by(|a, b| a.lines_per_s.total_cmp(&b.lines_per_s))
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

/// Backlogs drained one after the other: a drain lasts tens of milliseconds, which one burst of
/// another tenant's work on this VM can double, so the fastest is judged (as the overhead figures
/// take the fastest chunk), unless one lost something.
fn backlog_drains(quick: bool) -> usize {
    if quick {
        2
    } else {
        3
    }
}

/// Iterations per generator of the backlog: 8000 records in a full run (see `daemon_backlog.rs`
/// for what they must fit in).
fn backlog_per_proc(quick: bool) -> u64 {
    if quick {
        1000
    } else {
        2000
    }
}

/// Generator processes of the connect storm steps.
const STORM_PROCS: [u64; 2] = [1, 2];

/// Iterations per second of the paced connect step: [`LATENCY_RATE`] kernel events/s, every
/// one a line.
const CONNECT_LATENCY_RATE: u64 = LATENCY_RATE as u64 / EVENTS_PER_ITERATION;

pub fn run(
    env: &Env,
    container: &BenchContainer,
    quick: bool,
    started: Instant,
) -> Result<DaemonFigures> {
    let secs = if quick { 1 } else { 3 };
    let tracer = Tracer::start(Config::Sealwatch, env, "daemon")?
        .context("sealwatch is not the baseline")?;
    let pid = tracer.pid();
    let tick = procfs::clock_ticks_per_second();
    let mut figures = DaemonFigures::default();
    let rss = RssSampler::start(pid)?;
    let daemon = Measured {
        env,
        tracer: &tracer,
        tick,
        label: String::new(),
        started,
    };
    for (index, (rate, procs)) in ramp(quick).into_iter().enumerate() {
        let step = daemon.exec_step(index, rate, procs, secs)?;
        let dropped = step.loss.kernel_critical > 0;
        figures.steps.push(step);
        if dropped {
            break;
        }
    }
    for procs in STORM_PROCS {
        figures
            .storm
            .push(daemon.connect_step(container, procs, None, secs)?);
    }
    figures
        .storm
        .push(daemon.connect_step(container, 1, Some(CONNECT_LATENCY_RATE), secs)?);
    for _ in 0..backlog_drains(quick) {
        let backlog = daemon.backlog_step(container, backlog_per_proc(quick))?;
        figures.backlogs.push(backlog);
    }
    figures.rss_under_load_kib = rss.stop();
    figures.vm_hwm_kib = procfs::status_kib(pid, "VmHWM");
    figures.rss_parts_kib = procfs::rss_by_mapping(pid);
    let seen = tracer.stop()?;
    figures.events = seen.final_events;
    figures.short_pace = match figures.latency_step() {
        None => Err("no ramp step had latencies".into()),
        Some(_) if !super::run_help(&env.sealwatch).contains(PACE_FLAG) => {
            Err(format!("this sealwatch has no `{PACE_FLAG}`"))
        }
        Some(step) => {
            let (rate, procs) = (step.rate, step.procs);
            let index = figures.steps.len();
            // An extra figure: its failure is reported, not fatal to the run.
            short_pace_steps(env, container, index, rate, procs, secs, started).map_err(|err| {
                eprintln!(
                    "[bench] warning: the {} steps failed: {err:#}",
                    short_pace()
                );
                format!("failed: {err:#}")
            })
        }
    };
    Ok(figures)
}

/// The ramp step `rate`/`procs` and the paced connect step once more, in their own daemon
/// started with `--wakeup-pace-us 1000` (after the first one stopped: never two daemons at once).
fn short_pace_steps(
    env: &Env,
    container: &BenchContainer,
    index: usize,
    rate: u64,
    procs: u64,
    secs: u64,
    started: Instant,
) -> Result<ShortPace> {
    let env = Env {
        sealwatch_args: env
            .sealwatch_args
            .iter()
            .cloned()
            .chain([PACE_FLAG.to_owned(), SHORT_PACE_US.to_string()])
            .collect(),
        ..env.clone()
    };
    let tracer = Tracer::start(Config::Sealwatch, &env, "daemon-short-pace")?
        .context("sealwatch is not the baseline")?;
    let daemon = Measured {
        env: &env,
        tracer: &tracer,
        tick: procfs::clock_ticks_per_second(),
        label: format!(" {}", short_pace()),
        started,
    };
    let exec = daemon.exec_step(index, rate, procs, secs)?;
    let connect = daemon.connect_step(container, 1, Some(CONNECT_LATENCY_RATE), secs)?;
    tracer.stop()?;
    Ok(ShortPace { exec, connect })
}

/// A running daemon that exec steps are measured against.
struct Measured<'a> {
    env: &'a Env,
    tracer: &'a Tracer,
    /// Clock ticks per second (`getconf`, run before the steps: its exec would be a line).
    tick: u64,
    /// What the progress line says after "daemon".
    label: String,
    started: Instant,
}

impl Measured<'_> {
    /// One step of the exec ramp, `secs` long (2000 exec/s for a flat-out step), with what the
    /// daemon spent around it.
    fn exec_step(&self, index: usize, rate: u64, procs: u64, secs: u64) -> Result<Step> {
        let per_proc = if rate == 0 {
            2000 * secs / procs
        } else {
            rate * secs / procs
        };
        let (mut step, spent) = Spent::measure(self.tracer, self.tick, || {
            run_step(self.env, self.tracer, index, rate, procs, per_proc)
        })?;
        step.spent = spent;
        println!(
            "[bench {}] daemon{} · {} exec/s asked, {:.0}/s made · {} of {} lines · {}",
            fmt_elapsed(self.started),
            self.label,
            if rate == 0 {
                "max".into()
            } else {
                rate.to_string()
            },
            step.exec_rate(),
            step.received,
            step.generated,
            progress_tail(&step.loss, &step.spent, step.tracepoint_to_line),
        );
        Ok(step)
    }

    /// A connect step (`daemon_storm.rs`), `secs` long, with what the daemon spent around it.
    fn connect_step(
        &self,
        container: &BenchContainer,
        procs: u64,
        rate: Option<u64>,
        secs: u64,
    ) -> Result<StormStep> {
        let (mut step, spent) = Spent::measure(self.tracer, self.tick, || {
            run_storm(
                container,
                self.tracer,
                procs,
                rate,
                Duration::from_secs(secs),
            )
        })?;
        step.spent = spent;
        println!(
            "[bench {}] daemon{} · {} · {} iterations, {:.0} kernel events/s · {} of {} lines · {}",
            fmt_elapsed(self.started),
            self.label,
            step.label(),
            step.iterations,
            step.events_per_s(),
            step.received_lines(),
            step.expected(),
            progress_tail(&step.loss, &step.spent, step.tracepoint_to_line),
        );
        Ok(step)
    }

    /// The backlog (`daemon_backlog.rs`) of `per_proc` iterations per generator.
    fn backlog_step(&self, container: &BenchContainer, per_proc: u64) -> Result<Backlog> {
        let backlog = run_backlog(container, self.tracer, per_proc)?;
        println!(
            "[bench {}] daemon{} · backlog, {} · {} records drained in {} ({:.0}/s) · {} of {} \
             lines · lost critical {} bulk {} output {} · CPU {} per record",
            fmt_elapsed(self.started),
            self.label,
            backlog.label(),
            backlog.records,
            fmt_ns(backlog.seconds * 1e9),
            backlog.records_per_s(),
            backlog.received_lines(),
            backlog.expected(),
            backlog.loss.kernel_critical,
            backlog.loss.kernel_bulk,
            backlog.loss.output,
            backlog.cpu_per_record().map_or("-".into(), fmt_ns),
        );
        Ok(backlog)
    }
}

/// What the progress line of every daemon step ends with: loss, CPU, latency.
fn progress_tail(loss: &Loss, spent: &Spent, latency: Option<(f64, f64)>) -> String {
    format!(
        "lost critical {} bulk {} output {} · CPU {} per line · tracepoint→line p50 / p99 {}",
        loss.kernel_critical,
        loss.kernel_bulk,
        loss.output,
        spent.per_line().map_or("-".into(), fmt_ns),
        fmt_pair(latency),
    )
}

/// `p50 / p99`, or `-`.
pub fn fmt_pair(pair: Option<(f64, f64)>) -> String {
    pair.map_or("-".into(), |(a, b)| {
        format!("{} / {}", fmt_ns(a), fmt_ns(b))
    })
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
        spent: Spent::default(),
    })
}
