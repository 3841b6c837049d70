//! The daemon's step tables: the exec ramp and the connect loops.

use std::fmt::Write as _;

use super::daemon::{fmt_pair, short_pace, DaemonFigures, EVENTS_PER_SPAWN, SHORT_PACE_US};
use super::daemon_spent::{fmt_ratio, Spent};
use super::daemon_storm::{EVENTS_PER_ITERATION, LINES_PER_ITERATION};
use super::rounds::fmt_ns;

fn per_line(spent: &Spent) -> String {
    spent.per_line().map_or("-".into(), fmt_ns)
}

fn switches(spent: &Spent) -> String {
    spent.switches_per_line().map_or("-".into(), fmt_ratio)
}

pub fn daemon_tables(md: &mut String, d: &DaemonFigures) {
    exec_table(md, d);
    storm_table(md, d);
    backlog_table(md, d);
    let mib = |k: Option<u64>| k.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let _ = writeln!(
        md,
        "The daemon handled {} kernel events in its life (its own count at stop). Peak RSS under \
         load (the highest VmRSS sampled every 100 ms during the steps above): {}; over its whole \
         life, start-up included (VmHWM): {}.\n",
        d.events.map_or("?".into(), |e| e.to_string()),
        mib(d.rss_under_load_kib),
        mib(d.vm_hwm_kib),
    );
}

fn exec_table(md: &mut String, d: &DaemonFigures) {
    let _ = writeln!(md, "## Daemon under an exec ramp\n");
    if d.short_pace.is_ok() {
        let _ = writeln!(
            md,
            "The last row repeats the step nearest 10k kernel events/s in a second daemon \
             started with `{}` (timer drains every {SHORT_PACE_US} µs instead of 5 ms while \
             records flow).\n",
            short_pace()
        );
    }
    let _ = writeln!(
        md,
        "| exec/s asked | made exec/s | ≈ kernel events/s | generated | marked lines received | lost critical | lost bulk | lost decode | lost output | tracepoint→line p50 / p99 | syscall→line p50 / p99 | daemon CPU per line | context switches per line |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let second = d
        .short_pace
        .as_ref()
        .ok()
        .map(|u| (&u.exec, format!(" with `{}`", short_pace())));
    for (s, flag) in d.steps.iter().map(|s| (s, String::new())).chain(second) {
        let _ = writeln!(
            md,
            "| {} ({} gen.){flag} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            if s.rate == 0 {
                "max".into()
            } else {
                s.rate.to_string()
            },
            s.procs,
            s.exec_rate(),
            s.exec_rate() * EVENTS_PER_SPAWN as f64,
            s.generated,
            s.received,
            s.loss.kernel_critical,
            s.loss.kernel_bulk,
            s.loss.decode,
            s.loss.output,
            fmt_pair(s.tracepoint_to_line),
            fmt_pair(s.syscall_to_line),
            per_line(&s.spent),
            switches(&s.spent),
        );
    }
    md.push('\n');
}

fn storm_table(md: &mut String, d: &DaemonFigures) {
    if d.storm.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Daemon under connect loops\n");
    let _ = writeln!(
        md,
        "The same daemon after the exec ramp: the `tcp-connect-container` loop (socket, connect, \
         accept, close on 127.0.0.1 in the bench container) flat out, in one and then two \
         generator processes started together, then one generator paced at 10k kernel events/s \
         (the latency target's rate; the last row repeats it in the daemon started with \
         `{short_pace}`). Each iteration is {EVENTS_PER_ITERATION} kernel records (connect \
         exit and accept exit, both on the critical lane) and {LINES_PER_ITERATION} JSON lines \
         (`connect`, `accept`); a generator's lines are those whose `network.dport` is its \
         listening port, and tracepoint→line runs from each such line's `time` to its read; \
         \"1 ms sleeper late\" is a control: how late a thread of the harness that sleeps 1 ms at \
         a time woke during the step (the daemon's path has two such wake-ups: its drain timer \
         and the harness's reader). \
         \"all lines/s\" counts every line the daemon printed during the step (podman exec's own \
         processes included); CPU and context switches per line are per line of those; CPU per \
         kernel event is all of the daemon's CPU in the step over the generators' kernel records \
         (an upper bound).\n",
        short_pace = short_pace(),
    );
    let _ = writeln!(
        md,
        "| step | iterations | seconds | iterations/s | ≈ kernel events/s | lines expected | lines received (connect + accept) | lost critical | lost bulk | lost decode | lost output | tracepoint→line p50 / p99 | 1 ms sleeper late p50 / p99 | all lines/s | daemon CPU per line | daemon CPU per kernel event | context switches per line |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let second = d
        .short_pace
        .as_ref()
        .ok()
        .map(|u| (&u.connect, format!(" with `{}`", short_pace())));
    for (s, flag) in d.storm.iter().map(|s| (s, String::new())).chain(second) {
        let events = s.iterations * EVENTS_PER_ITERATION;
        let per_event = (events > 0).then(|| s.spent.cpu_ns as f64 / events as f64);
        let _ = writeln!(
            md,
            "| {}{}{flag} | {} | {:.2} | {:.0} | {:.0} | {} | {} ({} + {}) | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            s.label(),
            if s.late > 0 {
                format!(" ({} started late)", s.late)
            } else {
                String::new()
            },
            s.iterations,
            s.seconds,
            s.iterations_per_s(),
            s.events_per_s(),
            s.expected(),
            s.received_lines(),
            s.received.connect,
            s.received.accept,
            s.loss.kernel_critical,
            s.loss.kernel_bulk,
            s.loss.decode,
            s.loss.output,
            fmt_pair(s.tracepoint_to_line),
            fmt_pair(s.sleeper_late),
            s.spent.lines as f64 / s.seconds.max(1e-9),
            per_line(&s.spent),
            per_event.map_or("-".into(), fmt_ns),
            switches(&s.spent),
        );
    }
    md.push('\n');
}

fn backlog_table(md: &mut String, d: &DaemonFigures) {
    let Some(judged) = d.judged_backlog() else {
        return;
    };
    let _ = writeln!(md, "## Daemon draining a backlog\n");
    let _ = writeln!(
        md,
        "The generators here cannot offer 200k events/s live, so the same daemon is stopped \
         (SIGSTOP) while the connect loop runs a fixed number of iterations in the bench \
         container, leaving its records in the critical ring, and then resumed (SIGCONT), {} \
         times: records/s runs from the signal to the last of their lines read by the harness \
         (whose own reading is included: a lower bound of the daemon's rate); daemon CPU is that \
         of all its threads from the signal to the loss tick after the last line (schedstat), \
         and the part of it spent by its event-loop thread, which reads the rings, decodes, \
         evaluates, renders and writes (its writer thread only takes what the pipe refused). \
         The rate target is judged on the fastest drain, unless one lost something.\n",
        d.backlogs.len()
    );
    let _ = writeln!(
        md,
        "| drain | generators | records left in the ring | lines expected | lines received (connect + accept) | lost critical | lost bulk | lost decode | lost output | drain time | records/s | daemon CPU per record | of which the event loop | records per event-loop CPU-second |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for (i, b) in d.backlogs.iter().enumerate() {
        let per_loop = b.loop_cpu_per_record();
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} | {} ({} + {}) | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} |",
            i + 1,
            if std::ptr::eq(b, judged) { " (judged)" } else { "" },
            b.label(),
            b.records,
            b.expected(),
            b.received_lines(),
            b.received.connect,
            b.received.accept,
            b.loss.kernel_critical,
            b.loss.kernel_bulk,
            b.loss.decode,
            b.loss.output,
            fmt_ns(b.seconds * 1e9),
            b.records_per_s(),
            b.cpu_per_record().map_or("-".into(), fmt_ns),
            per_loop.map_or("-".into(), fmt_ns),
            per_loop.map_or("-".into(), |ns| format!("{:.0}", 1e9 / ns)),
        );
    }
    md.push('\n');
}
