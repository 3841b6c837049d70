//! `sealwatch capture info`: what a capture holds, without reading it line by line.
use std::{collections::BTreeMap, path::PathBuf};

use clap::Args;
use serde::Serialize;

use super::{replay_files, ReplayError};
use crate::{
    capture::{capture_files, format::Header, Damage},
    clock::rfc3339_from_unix_ns,
    container::parse_cgroup_path,
    event::KernelEvent,
    output::{EventLine, LineSink, LossJson},
    pipeline::{Input, CGROUP_V2_HIERARCHY_ID},
};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A capture file or directory.
    pub path: PathBuf,
    /// Print the summary as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: Vec<FileSummary>,
    pub nodes: Vec<String>,
    pub policy: Option<String>,
    pub policy_reloads: u64,
    /// First and last recorded time (RFC 3339).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Recorded inputs: kernel events by kind, other inputs by type.
    pub inputs: BTreeMap<String, u64>,
    /// Lines the recorded policy prints for them, by kind, and violations by rule.
    pub lines: BTreeMap<String, u64>,
    pub violations: BTreeMap<String, u64>,
    pub containers: BTreeMap<String, ContainerSummary>,
    pub losses: Losses,
    /// Files damaged in the middle (not just a torn tail).
    pub corrupt_files: usize,
}

#[derive(Debug, Serialize)]
pub struct FileSummary {
    pub path: PathBuf,
    pub run_id: String,
    pub seq: u64,
    pub inputs: u64,
    /// `rotated`, `stopped`, `open` (no end record: being written, or the daemon died),
    /// `torn tail at byte N` or `corrupt at byte N`.
    pub state: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ContainerSummary {
    pub runtime: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod_namespace: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Losses {
    /// Sums of the `loss` lines (what the daemon lost while recording).
    pub kernel_critical: u64,
    pub kernel_bulk: u64,
    pub decode: u64,
    pub output: u64,
    /// Inputs the capture could not record, as the `loss` lines counted them.
    pub capture: u64,
    /// Inputs missing from the files, where their loss records say (part of `capture`; with
    /// captures made before it was counted apart, part of `output`).
    pub not_recorded: u64,
    /// Files cut short (torn tail or damage).
    pub damaged_files: u64,
}

/// Counts lines by kind and violations by rule; sums loss lines.
#[derive(Default)]
struct Counter {
    lines: BTreeMap<String, u64>,
    violations: BTreeMap<String, u64>,
    loss: LossJson,
}

impl LineSink for Counter {
    fn emit(&mut self, line: &EventLine) {
        *self.lines.entry(line.kind.to_owned()).or_default() += 1;
        if let Some(v) = &line.violation {
            *self.violations.entry(v.rule.to_owned()).or_default() += 1;
        }
        if let Some(loss) = &line.loss {
            self.loss.kernel_critical += loss.kernel_critical;
            self.loss.kernel_bulk += loss.kernel_bulk;
            self.loss.decode += loss.decode;
            self.loss.output += loss.output;
            self.loss.capture += loss.capture;
        }
    }
}

pub fn summarise(path: &std::path::Path) -> Result<Summary, ReplayError> {
    let files = capture_files(path)?;
    let mut summary = Summary::default();
    let mut counter = Counter::default();
    let mut first: Option<i128> = None;
    let mut last: Option<i128> = None;
    let reports = replay_files(&files, None, &mut counter, &mut |header, input| {
        if let Some(ktime) = ktime_of(input) {
            let unix = header.config.clock.unix_ns(ktime);
            first = Some(first.map_or(unix, |f| f.min(unix)));
            last = Some(last.map_or(unix, |l| l.max(unix)));
        }
        *summary.inputs.entry(input_name(input)).or_default() += 1;
        note_container(&mut summary.containers, input);
    })?;
    for report in &reports {
        let Header { node, .. } = &report.header;
        let node = format!(
            "{} (kernel {}, boot id {}, sealwatch {})",
            node.hostname, node.kernel_release, node.boot_id, node.sealwatch_version
        );
        if !summary.nodes.contains(&node) {
            summary.nodes.push(node);
        }
        summary.policy_reloads += report.policy_changes;
        summary.losses.not_recorded += report.lost_inputs;
        summary.losses.damaged_files += u64::from(report.damage.is_some());
        summary.files.push(FileSummary {
            path: report.path.clone(),
            run_id: report.header.run_id.clone(),
            seq: report.header.seq,
            inputs: report.inputs,
            state: match (&report.damage, &report.end) {
                (Some(Damage::TornTail { offset, .. }), _) => format!("torn tail at byte {offset}"),
                (Some(Damage::Corrupt { offset, .. }), _) => format!("corrupt at byte {offset}"),
                (None, Some(end)) => end.reason.clone(),
                (None, None) => "open".to_owned(),
            },
        });
    }
    summary.policy = reports.first().map(|r| r.header.policy.source.clone());
    summary.from = first.map(rfc3339_from_unix_ns);
    summary.to = last.map(rfc3339_from_unix_ns);
    summary.lines = counter.lines;
    summary.violations = counter.violations;
    summary.losses.kernel_critical = counter.loss.kernel_critical;
    summary.losses.kernel_bulk = counter.loss.kernel_bulk;
    summary.losses.decode = counter.loss.decode;
    summary.losses.output = counter.loss.output;
    summary.losses.capture = counter.loss.capture;
    summary.corrupt_files = reports
        .iter()
        .filter(|r| matches!(r.damage, Some(Damage::Corrupt { .. })))
        .count();
    Ok(summary)
}

/// `sealwatch capture info`: prints the summary, then fails when a file is damaged in the middle.
pub fn info(args: &InfoArgs) -> Result<(), ReplayError> {
    let summary = summarise(&args.path)?;
    let text = if args.json {
        serde_json::to_string_pretty(&summary).map_err(|e| ReplayError::Output(e.into()))? + "\n"
    } else {
        render(&summary)
    };
    print!("{text}");
    if summary.corrupt_files > 0 {
        return Err(ReplayError::Damaged(summary.corrupt_files));
    }
    Ok(())
}

/// The text form of a summary.
pub fn render(s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let none = || "-".to_owned();
    let _ = writeln!(out, "files ({}):", s.files.len());
    for f in &s.files {
        let _ = writeln!(
            out,
            "  {}  run {} seq {}  {} inputs  {}",
            f.path.display(),
            f.run_id,
            f.seq,
            f.inputs,
            f.state
        );
    }
    for node in &s.nodes {
        let _ = writeln!(out, "node: {node}");
    }
    let _ = writeln!(
        out,
        "policy: {} ({} reloads recorded)",
        s.policy.clone().unwrap_or_else(none),
        s.policy_reloads
    );
    let _ = writeln!(
        out,
        "time: {} .. {}",
        s.from.clone().unwrap_or_else(none),
        s.to.clone().unwrap_or_else(none)
    );
    let counts = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "inputs: {}", counts(&s.inputs));
    let _ = writeln!(out, "lines (recorded policy): {}", counts(&s.lines));
    let _ = writeln!(out, "violations: {}", counts(&s.violations));
    let _ = writeln!(out, "containers ({}):", s.containers.len());
    for (id, c) in &s.containers {
        let _ = writeln!(
            out,
            "  {id}  {}  name {}  image {}{}",
            c.runtime,
            c.name.clone().unwrap_or_else(none),
            c.image.clone().unwrap_or_else(none),
            c.pod_namespace
                .as_ref()
                .map(|ns| format!("  namespace {ns}"))
                .unwrap_or_default()
        );
    }
    let l = &s.losses;
    let _ = writeln!(
        out,
        "losses: kernel_critical {}, kernel_bulk {}, decode {}, output {}, capture {} (marked missing in the files {}), damaged files {}",
        l.kernel_critical,
        l.kernel_bulk,
        l.decode,
        l.output,
        l.capture,
        l.not_recorded,
        l.damaged_files
    );
    out
}

fn ktime_of(input: &Input) -> Option<u64> {
    match input {
        Input::Kernel(event) => Some(event.task().ktime_ns),
        Input::Tick { ktime_ns, .. } if *ktime_ns > 0 => Some(*ktime_ns),
        _ => None,
    }
}

fn input_name(input: &Input) -> String {
    match input {
        Input::Kernel(event) => format!("kernel {}", event.name()),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("input").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "other".to_owned()),
    }
}

fn note_container(containers: &mut BTreeMap<String, ContainerSummary>, input: &Input) {
    let mut path_seen = |path: &str| {
        if let Some(c) = parse_cgroup_path(path) {
            containers.entry(c.id).or_default().runtime = c.runtime.as_str().to_owned();
        }
    };
    match input {
        Input::CgroupSnapshot { cgroups } => cgroups.iter().for_each(|(_, p)| path_seen(p)),
        Input::CgroupPath { path: Some(p), .. } => path_seen(p),
        Input::Kernel(KernelEvent::CgroupMkdir {
            hierarchy_id, path, ..
        }) if *hierarchy_id == CGROUP_V2_HIERARCHY_ID => path_seen(&String::from_utf8_lossy(path)),
        Input::Metadata {
            container_id,
            meta: Some(meta),
        } => {
            let entry = containers.entry(container_id.clone()).or_default();
            entry.name = meta.name.clone();
            entry.image = meta.image.clone();
            entry.pod_namespace = meta.pod.as_ref().and_then(|p| p.namespace.clone());
        }
        _ => {}
    }
}
