//! The daemon's rows of the targets table (its steps' tables are in `daemon_tables.rs`).

use std::fmt::Write as _;

use super::daemon::{
    short_pace, DaemonFigures, Rate, Step, EVENTS_PER_SPAWN, LATENCY_RATE, SHORT_PACE_US,
};
use super::daemon_backlog::Backlog;
use super::daemon_spent::{fmt_ratio, Spent};
use super::rounds::fmt_ns;

const CPU_TARGET_NS: f64 = 1_500.0;
const RSS_TARGET_KIB: u64 = 48 * 1024;
const RATE_TARGET: f64 = 200_000.0;
const P99_TARGET_NS: f64 = 1_000_000.0;

pub fn daemon_targets(md: &mut String, d: &DaemonFigures) {
    let rates = d.rates();
    rate_target(md, &rates, d.judged_backlog());
    cpu_target(md, d);
    rss_target(md, d);
    latency_target(md, d);
}

/// The highest kernel-event rate of a step without a critical-lane drop; where the generators
/// cannot offer the target rate live, the rate at which the daemon drained a backlog.
fn rate_target(md: &mut String, rates: &[Rate], backlog: Option<&Backlog>) {
    let by_rate = |a: &&Rate, b: &&Rate| a.events_per_s.total_cmp(&b.events_per_s);
    let best = rates
        .iter()
        .filter(|r| r.loss.kernel_critical == 0)
        .max_by(by_rate);
    let first_drop = rates
        .iter()
        .filter(|r| r.loss.kernel_critical > 0)
        .min_by(by_rate);
    let live = best.map_or("-".into(), |r| {
        format!("{:.0}/s live ({})", r.events_per_s, r.label)
    });
    let measured = match backlog {
        Some(b) => format!("{live}; {:.0}/s from a backlog", b.records_per_s()),
        None => live,
    };
    let lanes = "connect and accept records go to the critical lane (ebpf/probes/src/net.rs), \
                 as do fork, exec and exit records";
    let drained = backlog.map_or(String::new(), backlog_note);
    let (status, why) = match (best, first_drop) {
        (_, Some(drop)) if drop.events_per_s < RATE_TARGET => (
            "MISS",
            format!(
                "{} critical-lane drops at {:.0} kernel events/s ({}); {lanes}{drained}",
                drop.loss.kernel_critical, drop.events_per_s, drop.label
            ),
        ),
        (Some(r), _) if r.events_per_s >= RATE_TARGET => (
            "PASS",
            format!(
                "no critical-lane drop, {} bulk drops at that step; {lanes}{drained}",
                r.loss.kernel_bulk
            ),
        ),
        (Some(r), _) => {
            let offered = format!(
                "the generators share 2 cores with the daemon and the harness, and the fastest \
                 step made {:.0} kernel events/s live, with no critical-lane drop and {} bulk \
                 drops; {lanes}",
                r.events_per_s, r.loss.kernel_bulk,
            );
            match backlog {
                Some(b) if b.complete() && b.records_per_s() >= RATE_TARGET => {
                    ("PASS (backlog)", format!("{offered}{drained}"))
                }
                Some(b) if b.complete() => ("MISS", format!("{offered}{drained}")),
                _ => (
                    "n/a",
                    format!(
                        "not reachable here: {offered}{}",
                        if drained.is_empty() {
                            extrapolation(r)
                        } else {
                            drained
                        }
                    ),
                ),
            }
        }
        (None, Some(drop)) => (
            "MISS",
            format!(
                "critical-lane drops at every step, {} at {:.0} kernel events/s ({}); {lanes}",
                drop.loss.kernel_critical, drop.events_per_s, drop.label
            ),
        ),
        (None, None) => ("-", "no step ran".into()),
    };
    let _ = writeln!(
        md,
        "| kernel events without a critical-lane drop | ≥ 200k/s | {measured} | {status} | {why} |"
    );
}

/// `; from a backlog (...)`: what the drain of the backlog measured.
fn backlog_note(b: &Backlog) -> String {
    let loss = &b.loss;
    format!(
        "; from a backlog (the daemon stopped while the connect loop, {}, left {} records in its \
         ring, `daemon_backlog.rs`; the fastest of the drains that lost nothing): {} records/s from SIGCONT to the last of their lines read, \
         {} of {} lines, {} critical / {} bulk / {} output drops, {} of daemon CPU per record \
         ({} in its event-loop thread: one core evaluates about {} records/s)",
        b.label(),
        b.records,
        format_args!("{:.0}", b.records_per_s()),
        b.received_lines(),
        b.expected(),
        loss.kernel_critical,
        loss.kernel_bulk,
        loss.output,
        b.cpu_per_record().map_or("-".into(), fmt_ns),
        b.loop_cpu_per_record().map_or("-".into(), fmt_ns),
        b.loop_cpu_per_record()
            .map_or("-".into(), |ns| format!("{:.0}k", 1e6 / ns)),
    )
}

/// What one core would handle at a live step's CPU per event: the estimate used when no backlog
/// was measured.
fn extrapolation(r: &Rate) -> String {
    r.cpu_per_event().map_or(String::new(), |ns| {
        format!(
            "; at that step's {} of daemon CPU per event, one core would handle about {:.0}k \
             events/s (an extrapolation)",
            fmt_ns(ns),
            1e6 / ns
        )
    })
}

/// CPU per delivered line at the busiest step, with every step's figure in the note.
fn cpu_target(md: &mut String, d: &DaemonFigures) {
    let Some(busiest) = d.busiest() else {
        let _ = writeln!(
            md,
            "| daemon CPU per delivered event (JSON line) | ≤ 1.5 µs | - | - | no step ran |"
        );
        return;
    };
    let per_line = busiest.spent.per_line();
    let status = match per_line {
        Some(ns) if ns <= CPU_TARGET_NS => "PASS",
        Some(_) => "MISS",
        None => "-",
    };
    let each = |rates: &[Rate]| {
        rates
            .iter()
            .map(|r| r.spent.per_line().map_or("-".into(), fmt_ns))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rates = d.rates();
    let (exec, storm) = rates.split_at(d.steps.len().min(rates.len()));
    let _ = writeln!(
        md,
        "| daemon CPU per delivered event (JSON line) | ≤ 1.5 µs | {} | {status} | at the busiest \
         step, {} ({:.0} lines/s); {} per kernel event ({} there); {} \
         context switches of its threads per line; per line at each step: exec ramp {}; connect \
         storm {}{}. Falco about 2 µs |",
        per_line.map_or("-".into(), fmt_ns),
        busiest.label,
        busiest.lines_per_s,
        busiest.cpu_per_event().map_or("-".into(), fmt_ns),
        match busiest.events_per_line {
            1 => "one kernel record per connect or accept line".to_owned(),
            n => format!("{n} kernel events per exec line: fork, exec, exit"),
        },
        busiest
            .spent
            .switches_per_line()
            .map_or("-".into(), fmt_ratio),
        each(exec),
        if storm.is_empty() {
            "not run".into()
        } else {
            each(storm)
        },
        d.judged_backlog()
            .and_then(Backlog::cpu_per_record)
            .map_or(String::new(), |ns| format!(
                "; draining the judged backlog: {} per record, one line each",
                fmt_ns(ns)
            )),
    );
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Judged on the highest VmRSS sampled under load; the whole life's VmHWM in the note.
fn rss_target(md: &mut String, d: &DaemonFigures) {
    let parts = d
        .rss_parts_kib
        .iter()
        .map(|(kind, kib)| format!("{kind} {}", mib(Some(*kib))))
        .collect::<Vec<_>>()
        .join(", ");
    let status = match d.rss_under_load_kib {
        Some(k) if k <= RSS_TARGET_KIB => "PASS",
        Some(_) => "MISS",
        None => "-",
    };
    let _ = writeln!(
        md,
        "| daemon peak RSS under load | ≤ 48 MiB | {} | {status} | the highest VmRSS sampled \
         every 100 ms from the first load step to the last; VmHWM over the whole life (start-up \
         included): {}; resident at the end: {parts}; Falco 36-120 MB, Tetragon 63-128 MiB |",
        mib(d.rss_under_load_kib),
        mib(d.vm_hwm_kib),
    );
}

/// Judged on the connect step paced at 10k kernel events/s (every event a line) in the default
/// daemon; the exec ramp step nearest that rate, and both steps in the daemon with
/// `--wakeup-pace-us 1000`, beside it.
fn latency_target(md: &mut String, d: &DaemonFigures) {
    let connect = d.connect_latency_step();
    let exec = d.latency_step();
    if connect.is_none() && exec.is_none() {
        return;
    }
    let second = d.short_pace.as_ref().ok();
    let judged = connect.and_then(|c| c.tracepoint_to_line);
    let p99 = judged.map_or(f64::INFINITY, |(_, p99)| p99);
    let status = if p99 <= P99_TARGET_NS { "PASS" } else { "MISS" };
    let cpu = |spent: &Spent| spent.per_line().map_or("-".into(), fmt_ns);
    let mut measured = String::new();
    if let Some(c) = connect {
        let _ = write!(
            measured,
            "connect: {} at {:.0} events/s",
            p50_p99(c.tracepoint_to_line),
            c.events_per_s()
        );
        if let Some(u) = second {
            let _ = write!(
                measured,
                " (`{}`: {})",
                short_pace(),
                p50_p99(u.connect.tracepoint_to_line)
            );
        }
    }
    let events_per_s = |s: &Step| s.exec_rate() * EVENTS_PER_SPAWN as f64;
    if let Some(s) = exec {
        let _ = write!(
            measured,
            "{}exec: {} at {:.0} events/s",
            if measured.is_empty() { "" } else { "; " },
            p50_p99(s.tracepoint_to_line),
            events_per_s(s)
        );
        if let Some(u) = second {
            let _ = write!(
                measured,
                " (`{}`: {})",
                short_pace(),
                p50_p99(u.exec.tracepoint_to_line)
            );
        }
    }
    let mut notes = String::from(
        "judged on the connect step: one generator paced at 10k kernel events/s in the bench \
         container, every event a line, from the event's `time` to the harness reading the line; \
         default pace (while records flow the daemon drains its rings every 5 ms on its own \
         timer, so a line waits up to 5 ms for the next drain by design, and the kernel forces a \
         wake-up at most every 5 ms per CPU otherwise)",
    );
    if let Some(s) = exec {
        let _ = write!(
            notes,
            "; the exec ramp step nearest 10k events/s{} has one line per three events and its \
             generators keep both cores busy, so its tail is CPU scheduling; exec from before the \
             exec syscall: {}",
            if events_per_s(s) < LATENCY_RATE * 0.8 {
                " (the exec generators cannot go faster on this VM)"
            } else {
                ""
            },
            p50_p99(s.syscall_to_line),
        );
    }
    if let Some(late) = connect.and_then(|c| c.sleeper_late) {
        let _ = write!(
            notes,
            "; the machine's own scheduling, measured in that step: a harness thread sleeping \
             1 ms at a time woke late by {} (the daemon's path has two such wake-ups, its drain \
             timer and the harness's reader of its stdout)",
            p50_p99(Some(late)),
        );
    }
    match (&d.short_pace, connect) {
        (Ok(u), Some(c)) => {
            let _ = write!(
                notes,
                "; `{}` is a second daemon draining every {SHORT_PACE_US} µs instead of 5 ms \
                 while records flow (connect: daemon CPU per line {}, {} at the default)",
                short_pace(),
                cpu(&u.connect.spent),
                cpu(&c.spent),
            );
        }
        (Err(why), _) => {
            let _ = write!(notes, "; `{}` not measured: {why}", short_pace());
        }
        (Ok(_), None) => {}
    }
    let _ = writeln!(
        md,
        "| syscall to JSON line, p99 at 10k events/s | ≤ 1 ms | {measured} | {status} | {notes} |"
    );
}

/// `p50 X / p99 Y`, or `-`.
fn p50_p99(pair: Option<(f64, f64)>) -> String {
    pair.map_or("-".into(), |(p50, p99)| {
        format!("p50 {} / p99 {}", fmt_ns(p50), fmt_ns(p99))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::daemon::ShortPace;
    use crate::bench::daemon_storm::StormStep;
    use crate::bench::output::Loss;

    fn step(rate: u64, made_per_s: u64, p99_ms: f64) -> Step {
        Step {
            rate,
            procs: 1,
            generated: made_per_s,
            seconds: 1.0,
            received: made_per_s,
            loss: Loss::default(),
            syscall_to_line: Some((1e6, p99_ms * 1e6)),
            tracepoint_to_line: Some((1e6, p99_ms * 1e6)),
            spent: Spent::default(),
        }
    }

    fn connect(p99_ms: f64) -> StormStep {
        StormStep {
            procs: 1,
            rate: Some(5000),
            iterations: 5000,
            seconds: 1.0,
            tracepoint_to_line: Some((0.2e6, p99_ms * 1e6)),
            ..StormStep::default()
        }
    }

    /// The latency target's row for `d`.
    fn latency_row(d: &DaemonFigures) -> String {
        let mut md = String::new();
        latency_target(&mut md, d);
        md
    }

    #[test]
    fn latency_is_judged_on_the_paced_connect_step() {
        let mut d = DaemonFigures {
            steps: vec![step(1000, 1000, 5.0), step(0, 2600, 7.5)],
            storm: vec![connect(0.8)],
            ..DaemonFigures::default()
        };
        let md = latency_row(&d);
        assert!(
            md.contains("connect: p50 200.00 µs / p99 800.00 µs at 10000 events/s; exec: p50 1.00 ms / p99 7.50 ms at 7800 events/s |"),
            "{md}"
        );
        assert!(md.contains("| PASS |"), "the exec step is not judged: {md}");
        assert!(md.contains("not measured: not run"), "{md}");

        d.storm = vec![connect(1.5)];
        d.short_pace = Ok(ShortPace {
            exec: step(0, 2500, 0.5),
            connect: connect(0.4),
        });
        let md = latency_row(&d);
        assert!(
            md.contains("p99 1.50 ms at 10000 events/s (`--wakeup-pace-us 1000`: p50 200.00 µs / p99 400.00 µs)"),
            "{md}"
        );
        assert!(
            md.contains("| MISS |"),
            "judged at the default settings: {md}"
        );
        assert!(
            !md.contains("sleeping 1 ms"),
            "no control measured, none claimed: {md}"
        );
    }

    #[test]
    fn the_sleeper_control_of_the_judged_step_is_in_the_note() {
        let mut paced = connect(5.0);
        paced.sleeper_late = Some((0.1e6, 3.0e6));
        let d = DaemonFigures {
            storm: vec![paced],
            ..DaemonFigures::default()
        };
        let md = latency_row(&d);
        assert!(
            md.contains("sleeping 1 ms at a time woke late by p50 100.00 µs / p99 3.00 ms"),
            "{md}"
        );
    }

    /// The rate target's row for `d`.
    fn rate_row(d: &DaemonFigures) -> String {
        let mut md = String::new();
        rate_target(&mut md, &d.rates(), d.judged_backlog());
        md
    }

    fn storm(events_per_s: u64) -> StormStep {
        StormStep {
            procs: 2,
            iterations: events_per_s / 2,
            seconds: 1.0,
            ..StormStep::default()
        }
    }

    fn backlog(records: u64, seconds: f64) -> Backlog {
        Backlog {
            per_proc: records / 4,
            records,
            received: crate::bench::output::NetLines {
                connect: records / 2,
                accept: records / 2,
            },
            seconds,
            cpu_ns: Some(records * 900),
            loop_cpu_ns: Some(records * 500),
            ..Backlog::default()
        }
    }

    #[test]
    fn a_rate_the_generators_cannot_offer_is_judged_on_the_backlog() {
        let mut d = DaemonFigures {
            storm: vec![storm(52_000)],
            ..DaemonFigures::default()
        };
        let md = rate_row(&d);
        assert!(
            md.contains("| n/a |") && md.contains("an extrapolation"),
            "{md}"
        );

        d.backlogs = vec![backlog(24_000, 0.2), backlog(24_000, 0.08)];
        let md = rate_row(&d);
        assert!(!md.contains("  "), "a broken string continuation: {md}");
        assert!(md.contains("| 52000/s live (connect storm, 2 gen.); 300000/s from a backlog | PASS (backlog) |"), "{md}");
        assert!(md.contains("24000 of 24000 lines, 0 critical / 0 bulk / 0 output drops, 900 ns of daemon CPU per record (500 ns in its event-loop thread: one core evaluates about 2000k records/s)"), "{md}");
        assert!(
            !md.contains("extrapolation"),
            "measured, not estimated: {md}"
        );

        d.backlogs = vec![backlog(24_000, 0.2)];
        assert!(
            rate_row(&d).contains("| MISS |"),
            "120k/s is under the target"
        );

        let mut dropped = backlog(24_000, 0.08);
        dropped.loss.kernel_critical = 10;
        d.backlogs = vec![backlog(24_000, 0.05), dropped];
        let md = rate_row(&d);
        assert!(
            md.contains("| n/a |") && md.contains("10 critical"),
            "a drop in any drain is not a pass: {md}"
        );
    }
}
