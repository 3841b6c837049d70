//! The markdown report: targets, overhead per workload and configuration, daemon figures,
//! legend and caveats. Printed on stdout and written to BENCHMARKS.md.

use std::fmt::Write as _;

use super::daemon::DaemonFigures;
use super::daemon_report::daemon_targets;
use super::daemon_tables::daemon_tables;
use super::hooks::Hook;
use super::rounds::{fmt_ns, Metric, Samples};
use super::stats::{median, range};
use super::tracers::Config;
use super::workloads::{Needs, Place, Workload};

/// Everything the report is made of.
pub struct Report<'a> {
    pub machine: String,
    pub mode: String,
    pub workloads: &'a [&'static Workload],
    pub configs: &'a [Config],
    pub samples: &'a Samples,
    pub daemon: Option<&'a DaemonFigures>,
    /// (sensor, program) the daemon's loader logged as attached.
    pub attached: &'a [(String, String)],
    /// The hooks of the daemon's BPF links (what the floor mirrors).
    pub hooks: &'a [Hook],
    pub notes: &'a [String],
    /// Whether this was a `--quick` run (for iteration counts).
    pub quick: bool,
}

impl Report<'_> {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# sealwatch benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `cargo xtask bench` ({}). {}\n",
            self.mode, self.machine
        );
        let _ = writeln!(
            md,
            "**Noisy shared VM** (2 cores, other engineers building at the same time): absolute \
             times move from run to run; compare ratios taken within this run. Each \
             configuration runs its workloads right after (or right before) a baseline run of \
             the same workloads; \"vs baseline\" is the median over rounds of that paired \
             ratio, \"vs floor\" the median over rounds of the two paired ratios' quotient.\n"
        );
        let sensors = self.sensors();
        let of_kind = |keep: fn(&Hook) -> bool| -> Vec<&str> {
            self.hooks
                .iter()
                .filter(|h| keep(h))
                .map(Hook::name)
                .collect()
        };
        let raw = of_kind(|h| matches!(h, Hook::Raw(_)));
        let classic = of_kind(|h| matches!(h, Hook::Tracepoint(_)));
        let other = of_kind(|h| matches!(h, Hook::Other(_)));
        let _ = writeln!(
            md,
            "What sealwatch attached (its BPF links, read from the kernel; the floor mirrors \
             them): {} raw tracepoints ({}); {} classic tracepoints ({}){}. Its loader logged: \
             {}.\n",
            raw.len(),
            raw.join(", "),
            classic.len(),
            classic.join(", "),
            if other.is_empty() {
                String::new()
            } else {
                format!("; not mirrored by the floor: {}", other.join(", "))
            },
            if sensors.is_empty() {
                "nothing".into()
            } else {
                sensors.join("; ")
            },
        );
        self.targets(&mut md);
        self.overhead(&mut md);
        if let Some(daemon) = self.daemon {
            daemon_tables(&mut md, daemon);
        }
        self.legend(&mut md);
        md
    }

    /// `process (sched_process_exec, ...)` per sensor.
    fn sensors(&self) -> Vec<String> {
        let mut names: Vec<&str> = self.attached.iter().map(|(s, _)| s.as_str()).collect();
        names.dedup();
        names
            .iter()
            .map(|s| {
                let programs: Vec<&str> = self
                    .attached
                    .iter()
                    .filter(|(x, _)| x == s)
                    .map(|(_, p)| p.as_str())
                    .collect();
                format!("{s} ({})", programs.join(", "))
            })
            .collect()
    }

    fn has_sensor(&self, needs: &Needs) -> bool {
        self.hooks
            .iter()
            .any(|h| needs.hooks.iter().any(|n| h.name().contains(n)))
    }

    fn ratio(&self, w: &str, config: Config, reference: Config, metric: Metric) -> Option<f64> {
        if reference == Config::Baseline {
            self.samples.vs_baseline(w, config, metric)
        } else {
            self.samples.vs(w, config, reference, metric)
        }
    }

    fn targets(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets (issue 8)\n");
        let _ = writeln!(
            md,
            "Overhead targets are judged on the CPU time of the workload (user + kernel of its \
             own processes, which includes every BPF program that runs in their context; the \
             wall-clock ratio is shown beside it and in the table below: on this shared VM it is \
             dominated by waiting for a CPU).\n"
        );
        let _ = writeln!(md, "| figure | target | measured | status | why / note |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        for w in self.workloads {
            let Some(t) = w.target else { continue };
            let cpu = self.ratio(w.name, Config::Sealwatch, Config::Baseline, Metric::Cpu);
            let wall = self.ratio(w.name, Config::Sealwatch, Config::Baseline, Metric::Wall);
            let shown = match (cpu, wall) {
                (Some(c), Some(w)) => format!("CPU {c:.3}x (wall {w:.3}x)"),
                _ => "-".into(),
            };
            let (status, why) = match (cpu, t.needs) {
                (None, _) => ("-", "not measured".to_owned()),
                (Some(_), Some(n)) if !self.has_sensor(&n) => (
                    "n/a",
                    format!(
                        "{} sensor not implemented yet (no hook on {}): the figure shows only \
                         the cost of what is attached today; {}",
                        n.sensor,
                        n.hooks.join("/"),
                        t.peer_note
                    ),
                ),
                (Some(r), _) if r <= t.max_ratio => ("PASS", t.peer_note.to_owned()),
                (Some(r), _) => ("MISS", self.miss_why(w, r)),
            };
            let _ = writeln!(
                md,
                "| {} | ≤ {:.2}x | {shown} | {status} | {why} |",
                w.name, t.max_ratio
            );
        }
        if let Some(d) = self.daemon {
            daemon_targets(md, d);
        }
        md.push('\n');
    }

    fn miss_why(&self, w: &Workload, ratio: f64) -> String {
        let floor = self.ratio(w.name, Config::Floor, Config::Baseline, Metric::Cpu);
        let vs_floor = self.ratio(w.name, Config::Sealwatch, Config::Floor, Metric::Cpu);
        let lines = self.samples.lines(w.name, Config::Sealwatch).unwrap_or(0.0);
        let per_iteration = lines / w.iterations(self.quick) as f64;
        let out = if per_iteration >= 0.5 {
            format!(
                "; {per_iteration:.2} JSON lines per iteration leave the kernel (full detection \
                 and output of each event)"
            )
        } else {
            "; almost no event leaves the kernel, so the cost is in the programs' in-kernel work"
                .to_owned()
        };
        let spread = range(&self.samples.paired(w.name, Config::Sealwatch, Metric::Cpu))
            .map_or(String::new(), |(lo, hi)| {
                format!(" (paired ratios ranged {lo:.2}-{hi:.2})")
            });
        let syscall_hooks = self
            .hooks
            .iter()
            .filter(|h| matches!(h, Hook::Tracepoint(n) if n.starts_with("syscalls/")))
            .count();
        match (floor, vs_floor) {
            (Some(f), Some(v)) if per_iteration < 0.5 && syscall_hooks > 0 && v <= 1.1 => format!(
                "the empty-program floor costs {f:.3}x too (sealwatch {v:.3}x the floor){spread}: \
                 while any syscall tracepoint is enabled (sealwatch attaches {syscall_hooks}), \
                 every syscall of every task takes the kernel's tracing slow path \
                 (SYSCALL_WORK_SYSCALL_TRACEPOINT), traced or not"
            ),
            (Some(f), Some(v)) if f >= ratio * 0.97 || v <= 1.03 => format!(
                "the empty-program floor costs {f:.3}x too (sealwatch {v:.3}x the floor){spread}: \
                 the hooks' own cost, or noise"
            ),
            (Some(f), Some(v)) => {
                format!("floor {f:.3}x; sealwatch costs {v:.3}x the empty programs{out}{spread}")
            }
            _ => "no floor measured".into(),
        }
    }

    fn overhead(&self, md: &mut String) {
        let _ = writeln!(md, "## Overhead per workload\n");
        let _ = writeln!(
            md,
            "Medians over the rounds (the baseline row: over all its paired runs) of the time \
             per iteration, wall clock and CPU; ratios are per-round paired ratios (see above), \
             with their range over the rounds. \"lines out\" is the median number of lines the \
             tracer printed while the workload ran (for sealwatch: JSON events that left the \
             kernel; every tracer sees the whole node, so this includes other processes' events \
             in that window, and for container workloads those of `podman exec` itself).\n"
        );
        let _ = writeln!(
            md,
            "| workload | configuration | wall / iteration | vs baseline (wall) | CPU / iteration | vs baseline (CPU) | range over rounds (CPU) | vs floor (CPU) | lines out | runs |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        for w in self.workloads {
            for &config in self.configs.iter().filter(|c| w.configs().contains(c)) {
                let wall = self.samples.values(w.name, config, Metric::Wall);
                let cpu = self.samples.values(w.name, config, Metric::Cpu);
                let (Some(wall_med), Some(cpu_med)) = (median(&wall), median(&cpu)) else {
                    let _ = writeln!(
                        md,
                        "| {} | {} | not run | | | | | | | 0 |",
                        w.name,
                        config.label()
                    );
                    continue;
                };
                let ratio = |r: Config, m: Metric| {
                    self.ratio(w.name, config, r, m)
                        .map_or("-".into(), |x| format!("{x:.3}x"))
                };
                let spread = range(&self.samples.paired(w.name, config, Metric::Cpu))
                    .map_or("-".into(), |(lo, hi)| format!("{lo:.2}-{hi:.2}"));
                let lines = self
                    .samples
                    .lines(w.name, config)
                    .map_or("-".into(), |l| format!("{l:.0}"));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {spread} | {} | {lines} | {} |",
                    w.name,
                    config.label(),
                    fmt_ns(wall_med),
                    ratio(Config::Baseline, Metric::Wall),
                    fmt_ns(cpu_med),
                    ratio(Config::Baseline, Metric::Cpu),
                    ratio(Config::Floor, Metric::Cpu),
                    wall.len()
                );
            }
        }
        let l = &self.samples.sealwatch_loss;
        let _ = writeln!(
            md,
            "\nEvents sealwatch reported lost (its `loss` lines) over all its overhead sessions: \
             kernel critical {}, kernel bulk {}, decode {}, output {}.",
            l.kernel_critical, l.kernel_bulk, l.decode, l.output
        );
        md.push('\n');
    }

    fn legend(&self, md: &mut String) {
        let _ = writeln!(md, "## Workloads\n");
        for w in self.workloads {
            let place = match w.place {
                Place::Host => "host",
                Place::Container => "container",
            };
            let _ = writeln!(md, "- `{}` ({place}): {}.", w.name, w.what);
        }
        let _ = writeln!(md, "\n## Configurations\n");
        for c in self.configs {
            let _ = writeln!(md, "- **{}**: {}.", c.label(), c.describe());
        }
        let _ = writeln!(md, "\n## Method and caveats\n");
        for line in METHOD {
            let _ = writeln!(md, "- {line}");
        }
        for note in self.notes {
            let _ = writeln!(md, "- {note}");
        }
        if self.samples.foreign_sessions > 0 {
            let _ = writeln!(
                md,
                "- {} of {} sessions ran while other processes had syscall tracepoints attached \
                 ({}), which puts every syscall on the kernel's tracing slow path, baselines \
                 included; those sessions are left out wherever at least 3 clean rounds remain.",
                self.samples.foreign_sessions,
                self.samples.sessions,
                self.samples.foreign_holders.join(", ")
            );
        }
        for problem in &self.samples.problems {
            let _ = writeln!(md, "- problem: {problem}");
        }
    }
}

const METHOD: &[&str] = &[
    "Each workload is a loop in a static C generator (`xtask/src/bench/loadgen.c`) that times only its own loop with CLOCK_MONOTONIC; process and container start-up are not measured. Container workloads run via `podman exec` in one long-lived container (runc, busybox test image, generator bind-mounted read-only).",
    "In each round every configuration runs once as a session: its workloads with nothing attached, then with the tracer attached (the other way round in odd rounds). A tracer counts as attached when sealwatch logs `sealwatch ready` (+0.3 s), bpftrace prints `Attaching` (+1 s), execsnoop/opensnoop print their header (+0.5 s), the floor prints `floor attached` (+0.2 s); it is stopped with SIGINT after its workloads. The order of configurations rotates every round.",
    "The floor attaches `return 0` programs to every hook sealwatch holds (read from its BPF links): BPF_PROG_TYPE_RAW_TRACEPOINT where sealwatch has tp_btf programs (both run through the kernel's bpf_trace_run path), BPF_PROG_TYPE_TRACEPOINT on a perf event where it has classic tracepoint programs. So the floor is the cost of the hooks themselves. bpftrace 0.17 has no rawtracepoint probes, so the generator loads the floor with the bpf() syscall.",
    "Daemon figures: one sealwatch run, first under an exec ramp, then under connect loops (flat out, then paced at 10k kernel events/s), then draining backlogs the connect loop left in its ring while it was stopped; then a second sealwatch started with `--wakeup-pace-us 1000` (timer drains every 1 ms instead of 5 while records flow) repeats the exec ramp step nearest 10k kernel events/s and the paced connect step. Exec ramp: paced `vfork`+`exec` of the static generator (one JSON line and three kernel events each: fork, exec, exit). Latency `tracepoint→line` uses the event's own `time` (boot clock mapped to wall clock once at daemon start); `syscall→line` starts just before vfork, so it includes the exec syscall itself (about a millisecond of kernel work on this VM before the tracepoint fires). Both end when the harness's reader reads the line from the daemon's stdout pipe (CLOCK_REALTIME in both processes; an NTP step during the run would distort it).",
    "Connect storm: `loadgen tcp-until` in the bench container (via `podman exec`), the `tcp-connect-container` loop as fast as it goes for a fixed time, one then two processes told a common CLOCK_REALTIME start; two kernel records (connect exit, accept exit) and two JSON lines per iteration. Kernel events/s are the generators' iterations times two over the time from the first generator's start to the last one's end.",
    "Backlog: the daemon is stopped (SIGSTOP), two generators run a fixed number of connect iterations, and 300 ms after they exit the daemon is resumed (SIGCONT); records/s runs from the signal to the harness reading the last of their lines. Its CPU is the growth of each thread's schedstat (ns) over the drain, the main thread (the event loop) apart; a thread that exits meanwhile (the blocking pool's, after 10 s idle) is left out rather than making the sum shrink.",
    "Daemon CPU is utime+stime of all its threads from /proc/PID/stat (10 ms ticks) around each step, divided by the lines read in the same window (every line on the node, not only the generator's); per kernel event is all of its CPU in the step over the kernel events the generators caused (3 per exec: fork, exec, exit; 2 per connect/accept iteration), an upper bound. Peak RSS under load is the highest VmRSS of /proc/PID/status sampled every 100 ms from the first step to the last; VmHWM (the whole life's peak, start-up included) is shown beside it.",
    "Each overhead figure per round is the fastest of the run's 5 back-to-back chunks (load from other builds only ever adds time); the table shows the median over rounds.",
    "sealwatch runs with its per-container budgets off (`--cgroup-budget-file 0 --cgroup-budget-network 0`): every storm comes from the one bench container, which its budget would cut at 20000 file and 5000 network records a second (what `attacker_flood.rs` tests); the bench measures what each record costs.",
];
