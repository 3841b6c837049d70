//! The overhead measurement, in rounds. In each round every configuration runs once (the order
//! rotates from round to round), as a session: its workloads run with nothing attached, then
//! with the tracer attached (or the other way round, alternating by round), back to back. Each
//! figure is thus paired with a baseline taken seconds away, not minutes, which matters on a
//! machine whose load swings with other people's builds.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result};

use super::container::BenchContainer;
use super::hooks::foreign_syscall_hooks;
use super::loadgen::run_timed;
use super::output::Loss;
use super::stats::{median, paired_ratio};
use super::tracers::{Config, Env, Tracer};
use super::workloads::{Place, Workload, CHUNKS};

/// Nanoseconds per iteration of one run: wall time and CPU time (user + kernel of the workload's
/// own processes: the BPF programs that run in their context are in it, waiting for a CPU
/// that other people's builds hold is not).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cost {
    pub wall: f64,
    pub cpu: f64,
}

/// Which [`Cost`] a figure is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Wall,
    Cpu,
}

impl Cost {
    pub fn get(&self, metric: Metric) -> f64 {
        match metric {
            Metric::Wall => self.wall,
            Metric::Cpu => self.cpu,
        }
    }
}

/// One measurement of a workload under a configuration, with its paired baseline.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub round: usize,
    pub cost: Cost,
    pub baseline: Cost,
    /// Lines the tracer printed while the workload ran.
    pub lines: u64,
    /// Another process (not this bench) had syscall tracepoints attached during the session, so
    /// its baseline already paid for them (see [`foreign_syscall_hooks`]).
    pub foreign: bool,
}

/// Samples taken while others had syscall hooks attached are left out when at least this many
/// clean ones remain.
const MIN_CLEAN: usize = 3;

/// Per (workload, configuration other than the baseline): the samples of every round.
#[derive(Default)]
pub struct Samples {
    pub by: BTreeMap<(&'static str, Config), Vec<Sample>>,
    /// Configurations that could not run in some round, and why.
    pub problems: Vec<String>,
    /// Drops sealwatch reported (its `loss` lines) during all its overhead sessions.
    pub sealwatch_loss: Loss,
    /// Sessions run while another process had syscall hooks attached, and who.
    pub foreign_sessions: usize,
    pub sessions: usize,
    pub foreign_holders: Vec<String>,
}

impl Samples {
    /// The samples that count: the clean ones if there are enough, else all.
    fn of(&self, workload: &str, config: Config) -> Vec<Sample> {
        let all = self
            .by
            .iter()
            .find(|((w, c), _)| *w == workload && *c == config)
            .map_or(&[][..], |(_, v)| v.as_slice());
        let clean: Vec<Sample> = all.iter().filter(|s| !s.foreign).copied().collect();
        if clean.len() >= MIN_CLEAN {
            clean
        } else {
            all.to_vec()
        }
    }

    /// The configurations measured for `workload` (not the baseline).
    fn configs_of(&self, workload: &str) -> Vec<Config> {
        self.by
            .keys()
            .filter(|(w, _)| *w == workload)
            .map(|(_, c)| *c)
            .collect()
    }

    /// Nanoseconds per iteration; for the baseline, every baseline run of this workload.
    pub fn values(&self, workload: &str, config: Config, metric: Metric) -> Vec<f64> {
        if config == Config::Baseline {
            return self
                .configs_of(workload)
                .into_iter()
                .flat_map(|c| self.of(workload, c))
                .map(|s| s.baseline.get(metric))
                .collect();
        }
        self.of(workload, config)
            .iter()
            .map(|s| s.cost.get(metric))
            .collect()
    }

    /// `(round, cost / paired baseline cost)`; the baseline itself is 1 in every round it ran.
    fn normalized(&self, workload: &str, config: Config, metric: Metric) -> Vec<(usize, f64)> {
        if config == Config::Baseline {
            let mut rounds: Vec<usize> = self
                .configs_of(workload)
                .into_iter()
                .flat_map(|c| self.of(workload, c))
                .map(|s| s.round)
                .collect();
            rounds.sort_unstable();
            rounds.dedup();
            return rounds.into_iter().map(|r| (r, 1.0)).collect();
        }
        self.of(workload, config)
            .iter()
            .filter(|s| s.baseline.get(metric) > 0.0)
            .map(|s| (s.round, s.cost.get(metric) / s.baseline.get(metric)))
            .collect()
    }

    /// The per-round paired ratios against the baseline.
    pub fn paired(&self, workload: &str, config: Config, metric: Metric) -> Vec<f64> {
        self.normalized(workload, config, metric)
            .iter()
            .map(|r| r.1)
            .collect()
    }

    /// Median over rounds of the paired ratio against the baseline.
    pub fn vs_baseline(&self, workload: &str, config: Config, metric: Metric) -> Option<f64> {
        let ratios: Vec<f64> = self
            .normalized(workload, config, metric)
            .iter()
            .map(|r| r.1)
            .collect();
        median(&ratios)
    }

    /// Median over rounds of (config / its baseline) / (reference / its baseline).
    pub fn vs(
        &self,
        workload: &str,
        config: Config,
        reference: Config,
        metric: Metric,
    ) -> Option<f64> {
        paired_ratio(
            &self.normalized(workload, config, metric),
            &self.normalized(workload, reference, metric),
        )
    }

    /// Median lines the tracer printed per run.
    pub fn lines(&self, workload: &str, config: Config) -> Option<f64> {
        let lines: Vec<f64> = self
            .of(workload, config)
            .iter()
            .map(|s| s.lines as f64)
            .collect();
        median(&lines)
    }
}

pub struct Plan<'a> {
    pub workloads: &'a [&'static Workload],
    pub rounds: usize,
    pub quick: bool,
    /// Every configuration but the baseline (which runs inside each session).
    pub configs: Vec<Config>,
    pub container: Option<&'a BenchContainer>,
}

pub fn run(plan: &Plan<'_>, env: &Env, started: Instant) -> Result<Samples> {
    let mut samples = Samples::default();
    let n = plan.configs.len();
    for round in 0..plan.rounds {
        for k in 0..n {
            let config = plan.configs[(k + round) % n];
            let workloads: Vec<&Workload> = plan
                .workloads
                .iter()
                .copied()
                .filter(|w| w.configs().contains(&config))
                .collect();
            if workloads.is_empty() {
                continue;
            }
            let foreign_before = foreign_syscall_hooks(&[]);
            let baseline_first = round % 2 == 0;
            let baseline = || -> Result<Vec<Cost>> {
                workloads
                    .iter()
                    .map(|w| {
                        run_workload(w, plan, env).with_context(|| format!("{} baseline", w.name))
                    })
                    .collect()
            };
            let mut base = if baseline_first {
                baseline()?
            } else {
                Vec::new()
            };
            let slug = config.label().replace(' ', "-");
            let tracer = match Tracer::start(config, env, &format!("round{}-{slug}", round + 1)) {
                Ok(t) => t,
                Err(err) if config != Config::Sealwatch => {
                    let why = format!("round {}: {} not run: {err:#}", round + 1, config.label());
                    println!("[bench] warning: {why}");
                    samples.problems.push(why);
                    continue;
                }
                Err(err) => return Err(err.context("starting sealwatch")),
            };
            let mut measured = Vec::new();
            for w in &workloads {
                let before = tracer.as_ref().map_or(0, Tracer::lines);
                let cost = run_workload(w, plan, env)
                    .with_context(|| format!("{} under {}", w.name, config.label()))?;
                let after = tracer.as_ref().map_or(0, Tracer::lines);
                measured.push((cost, after.saturating_sub(before)));
            }
            if let Some(tracer) = tracer {
                let seen = tracer.stop()?;
                if config == Config::Sealwatch {
                    samples.sealwatch_loss = samples.sealwatch_loss.plus(&seen.loss);
                }
            }
            if !baseline_first {
                base = baseline()?;
            }
            let mut holders = foreign_before;
            holders.extend(foreign_syscall_hooks(&[]));
            holders.sort();
            holders.dedup();
            let foreign = !holders.is_empty();
            samples.sessions += 1;
            if foreign {
                samples.foreign_sessions += 1;
                samples.foreign_holders.extend(holders.iter().cloned());
                samples.foreign_holders.sort();
                samples.foreign_holders.dedup();
            }
            let mut shown = Vec::new();
            for ((w, (cost, lines)), baseline) in workloads.iter().zip(measured).zip(base) {
                samples
                    .by
                    .entry((w.name, config))
                    .or_default()
                    .push(Sample {
                        round,
                        cost,
                        baseline,
                        lines,
                        foreign,
                    });
                shown.push(format!(
                    "{} {} ({:.2}x, CPU {:.2}x)",
                    w.name,
                    fmt_ns(cost.wall),
                    cost.wall / baseline.wall,
                    cost.cpu / baseline.cpu
                ));
            }
            println!(
                "[bench {}] round {}/{} · {:<22} {}{}",
                fmt_elapsed(started),
                round + 1,
                plan.rounds,
                config.label(),
                shown.join(", "),
                if foreign {
                    format!(" [others had syscall hooks: {}]", holders.join(", "))
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(samples)
}

/// The workload's cost per iteration: the cheapest of its [`CHUNKS`] chunks, wall and CPU time
/// each (load from outside only ever adds time, and bursts of it are shorter than a run).
fn run_workload(w: &Workload, plan: &Plan<'_>, env: &Env) -> Result<Cost> {
    let mut args = vec!["-k".to_owned(), CHUNKS.to_string()];
    args.extend(w.loadgen_args(plan.quick));
    let mut command = match (w.place, plan.container) {
        (Place::Host, _) => {
            let mut c = Command::new(&env.loadgen);
            c.args(&args);
            c
        }
        (Place::Container, Some(container)) => container.loadgen(&args),
        (Place::Container, None) => anyhow::bail!("no bench container for {}", w.name),
    };
    let chunks = run_timed(&mut command)?;
    let min = |f: fn(&super::loadgen::Timed) -> f64| chunks.iter().map(f).reduce(f64::min);
    Ok(Cost {
        wall: min(|c| c.ns_per_iteration()).context("no chunk timed")?,
        cpu: min(|c| c.cpu_ns_per_iteration()).context("no chunk timed")?,
    })
}

/// `712 ns`, `4.41 µs`, `1.09 ms`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

pub fn fmt_elapsed(since: Instant) -> String {
    let secs = since.elapsed().as_secs();
    format!("{}m{:02}s", secs / 60, secs % 60)
}
