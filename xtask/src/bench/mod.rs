//! `cargo xtask bench`: what sealwatch costs the node, against nothing, against empty programs on
//! the same hooks (the floor), and against the peers that run here. See `docs/bench.md`.
//!
//! - `workloads.rs`: the workloads and their targets; `loadgen.c`/`loadgen.rs`: the generator.
//! - `tracers.rs`: the configurations, each tracer's start/ready/stop; `output.rs`: reading them.
//! - `container.rs`: the bench container; `rounds.rs`: the interleaved rounds.
//! - `daemon.rs`: the daemon's own figures (exec ramp), `daemon_storm.rs` (connect storm),
//!   `daemon_spent.rs` (its CPU per step), `rss_sampler.rs` (its RSS under load),
//!   `daemon_report.rs`/`daemon_tables.rs` (their markdown).
//! - `stats.rs`: medians and ratios; `report.rs`: markdown.

mod container;
mod daemon;
mod daemon_backlog;
mod daemon_report;
mod daemon_spent;
mod daemon_storm;
mod daemon_tables;
mod hooks;
mod loadgen;
mod output;
mod procfs;
mod report;
mod rounds;
mod rss_sampler;
mod sinks;
mod sleeper;
mod stats;
mod tracers;
mod workloads;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::{cmd, run, setup};
use container::BenchContainer;
use hooks::Hook;
use tracers::{Config, Env, Tracer};
use workloads::Place;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A 1-2 minute smoke run: fewer rounds, a fifth of the iterations, a short ramp. Writes
    /// target/bench/BENCHMARKS.partial.md instead of BENCHMARKS.md.
    #[arg(long)]
    quick: bool,
    /// Only these workloads (repeat or comma-separate): open-ro-host, open-ro-container,
    /// open-write-image, open-write-new, fork-exec, tcp-connect, tcp-connect-container, getppid,
    /// daemon (the daemon figures alone: exec ramp, connect loops, a drained backlog, the latency
    /// steps again at `--wakeup-pace-us 1000`; about a minute). Writes
    /// target/bench/BENCHMARKS.partial.md instead of BENCHMARKS.md.
    #[arg(long, value_name = "WORKLOAD")]
    only: Vec<String>,
    /// Rounds per configuration (default 5, or 2 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Benchmark this sealwatch binary instead of building one (`cargo build --release -p
    /// sealwatch`), e.g. to compare two versions.
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Run sealwatch with its file sink (target/bench/sinks/) and its OTLP sink (to the test
    /// receiver, tests/otlp/receiver.py) on, every line to both: compare the daemon figures
    /// with a run without it.
    #[arg(long)]
    sinks: bool,
}

impl BenchArgs {
    /// The smoke run of `cargo xtask test`: `--quick --rounds 1` against an already built binary.
    pub fn smoke(bin: PathBuf) -> Self {
        BenchArgs {
            quick: true,
            only: Vec::new(),
            rounds: Some(1),
            bin: Some(bin),
            sinks: false,
        }
    }
}

/// `cargo xtask bench`: what did not run is reported in the table and printed, not fatal.
pub fn bench_cmd(args: &BenchArgs) -> Result<()> {
    bench(args).map(drop)
}

/// Runs the bench and writes its report; returns what could not be measured (a peer that is
/// missing or did not attach, a step that failed), which the report also lists.
pub fn bench(args: &BenchArgs) -> Result<Vec<String>> {
    if !setup::is_root() {
        bail!("the benchmark loads eBPF programs: run `cargo xtask bench` as root");
    }
    // The peers (bpftrace, execsnoop, opensnoop), gcc and the podman image's tools.
    setup::setup(true)?;
    let started = Instant::now();
    let load_at_start = loadavg();
    let (workloads, with_daemon) = workloads::select(&args.only)?;
    let rounds = args.rounds.unwrap_or(if args.quick { 2 } else { 5 }).max(1);
    let mut notes = Vec::new();
    let mut problems = Vec::new();

    // The configurations in use, minus those whose tool is missing (noted in the report).
    let mut configs: Vec<Config> = Vec::new();
    for config in workloads.iter().flat_map(|w| w.configs()) {
        if configs.contains(&config) {
            continue;
        }
        match config.tool() {
            Some(tool) if !tracers::on_path(tool) => {
                let why = format!(
                    "{} skipped: `{tool}` is not installed (`cargo xtask setup` installs it)",
                    config.label()
                );
                problems.push(why.clone());
                notes.push(why);
            }
            _ => configs.push(config),
        }
    }
    for tool in ["gcc", "kill", "getconf"] {
        if !tracers::on_path(tool) {
            bail!("`{tool}` is needed: run `cargo xtask setup`");
        }
    }

    let built = match &args.bin {
        Some(bin) => bin.clone(),
        None => run::build_release()?,
    };
    let work = crate::target_dir().join("bench");
    let log_dir = work.join("logs");
    if log_dir.exists() {
        std::fs::remove_dir_all(&log_dir).context("clearing target/bench/logs")?;
    }
    std::fs::create_dir_all(&log_dir).context("creating target/bench/logs")?;
    // A private copy: a rebuild of target/release during the run must not change what is measured.
    let sealwatch = work.join("sealwatch");
    std::fs::copy(&built, &sealwatch)
        .with_context(|| format!("copying {} to {}", built.display(), sealwatch.display()))?;
    let loadgen = loadgen::build(&work)?;
    std::fs::write(workloads::HOST_OPEN_FILE, b"sealwatch bench\n")
        .with_context(|| format!("creating {}", workloads::HOST_OPEN_FILE))?;
    // The daemon figures' connect storm runs in the bench container too.
    let container = if with_daemon || workloads.iter().any(|w| w.place == Place::Container) {
        say(started, "starting the bench container");
        Some(BenchContainer::start(&loadgen, &work)?)
    } else {
        None
    };

    let mut sealwatch_args = sealwatch_args(&sealwatch);
    // Kept alive for the whole run: every sealwatch started below exports to it.
    let _receiver = if args.sinks {
        let receiver = sinks::SinkReceiver::start()?;
        let dir = work.join("sinks");
        std::fs::create_dir_all(&dir).context("creating target/bench/sinks")?;
        let flags = receiver.daemon_args(&dir);
        notes.push(format!(
            "sealwatch ran with its sinks on (`--sinks`): `{}`, every line to both",
            flags.join(" ")
        ));
        sealwatch_args.extend(flags);
        Some(receiver)
    } else {
        None
    };
    let mut env = Env {
        sealwatch_args,
        sealwatch,
        loadgen,
        floor_hooks: Vec::new(),
        log_dir,
    };
    // What does sealwatch attach? Its BPF links say; the floor mirrors them.
    say(started, "starting sealwatch once to see what it attaches");
    let probe =
        Tracer::start(Config::Sealwatch, &env, "probe")?.context("sealwatch did not start")?;
    let hooks = hooks::attached(probe.pid());
    let attached = probe.stop()?.attached;
    for hook in &hooks {
        match hook.floor_arg() {
            Some(arg) => env.floor_hooks.push(arg.to_owned()),
            None => notes.push(format!(
                "sealwatch holds a {}: the floor does not mirror it (it undercounts)",
                hook.name()
            )),
        }
    }
    if env.floor_hooks.is_empty() {
        bail!("no BPF links found on the sealwatch process (see target/bench/logs/probe.log)");
    }
    say(
        started,
        &format!(
            "sealwatch attaches {} hooks: {}",
            hooks.len(),
            describe(&hooks)
        ),
    );

    let plan = rounds::Plan {
        workloads: &workloads,
        rounds,
        quick: args.quick,
        configs: configs
            .iter()
            .copied()
            .filter(|&c| c != Config::Baseline)
            .collect(),
        container: container.as_ref(),
    };
    say(
        started,
        &format!(
            "{} workloads × {} configurations (each paired with a baseline run) × {rounds} rounds",
            workloads.len(),
            plan.configs.len()
        ),
    );
    let samples = rounds::run(&plan, &env, started)?;
    let daemon = match &container {
        Some(container) if with_daemon => {
            say(
                started,
                "daemon figures: one sealwatch under an exec ramp, then connect loops",
            );
            Some(daemon::run(&env, container, args.quick, started)?)
        }
        _ => None,
    };
    drop(container);
    problems.extend(samples.problems.iter().cloned());
    if let Some(Err(why)) = daemon.as_ref().map(|d| &d.short_pace) {
        problems.push(format!("the {} step: {why}", daemon::short_pace()));
    }

    let partial = args.quick || !args.only.is_empty();
    let mode = format!(
        "{}, {rounds} rounds, {} in all",
        if args.quick {
            "--quick"
        } else if partial {
            "--only"
        } else {
            "full run"
        },
        rounds::fmt_elapsed(started)
    );
    let report = report::Report {
        machine: machine(&load_at_start),
        mode,
        workloads: &workloads,
        configs: &configs,
        samples: &samples,
        daemon: daemon.as_ref(),
        attached: &attached,
        hooks: &hooks,
        notes: &notes,
        quick: args.quick,
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    let out: PathBuf = if partial {
        work.join("BENCHMARKS.partial.md")
    } else {
        crate::repo_root().join("BENCHMARKS.md")
    };
    std::fs::write(&out, &markdown).with_context(|| format!("writing {}", out.display()))?;
    say(started, &format!("written to {}", out.display()));
    Ok(problems)
}

/// `--metrics-addr none` and `--tail-socket none` where this sealwatch has the flags: several
/// daemons (tests, other benches) may run on the machine, and neither endpoint is what is
/// measured. And no per-container budgets (`--cgroup-budget-* 0`): the bench's storms all come
/// from one container, which its budget would cut (that is the budget's job, tested by
/// `attacker_flood.rs`); what is measured here is what each record costs.
fn sealwatch_args(bin: &std::path::Path) -> Vec<String> {
    let help = run_help(bin);
    let endpoints = ["--metrics-addr", "--tail-socket"]
        .into_iter()
        .filter(|flag| help.contains(flag))
        .flat_map(|flag| [flag.to_owned(), "none".to_owned()]);
    let budgets = ["--cgroup-budget-file", "--cgroup-budget-network"]
        .into_iter()
        .filter(|flag| help.contains(flag))
        .flat_map(|flag| [flag.to_owned(), "0".to_owned()]);
    endpoints.chain(budgets).collect()
}

/// `sealwatch run --help` of `bin` (empty if it fails): which flags this build has.
fn run_help(bin: &std::path::Path) -> String {
    cmd::probe(Command::new(bin).args(["run", "--help"])).unwrap_or_default()
}

/// `12 (sched_process_exec, syscalls/sys_enter_openat, ...)`, compact.
fn describe(hooks: &[Hook]) -> String {
    hooks.iter().map(Hook::name).collect::<Vec<_>>().join(", ")
}

fn say(started: Instant, msg: &str) {
    println!("[bench {}] {msg}", rounds::fmt_elapsed(started));
}

/// `Date: ..., CPU: ..., cores, kernel, load, sealwatch revision.`
fn machine(load_at_start: &str) -> String {
    let date =
        cmd::probe(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rev = cmd::probe(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(crate::repo_root()),
    )
    .unwrap_or_default();
    let dirty = cmd::probe(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(crate::repo_root()),
    )
    .is_some_and(|s| !s.trim().is_empty());
    format!(
        "Date: {}. CPU: {cpu}, {cores} cores. Kernel: Linux {}. Load average at the start: {load_at_start}, at the end: {}. \
         sealwatch at {}{}.",
        date.trim(),
        kernel.trim(),
        loadavg(),
        rev.trim(),
        if dirty { " (with uncommitted changes)" } else { "" }
    )
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
