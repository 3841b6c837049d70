//! `bpftool` (Debian's `bpftool`) for the block-mode tests: which socket-related BPF programs
//! are loaded, which act on a cgroup, and a process's cgroup v2 directory. A daemon that stops
//! must leave none of its programs loaded or attached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd;

/// Program types that act on sockets of a cgroup (what a network sensor may attach); not
/// `cgroup_device`, which container runtimes attach themselves.
pub const SOCKET_PROG_TYPES: &[&str] = &[
    "cgroup_sock_addr",
    "cgroup_sock",
    "cgroup_skb",
    "cgroup_sockopt",
    "sock_ops",
];

/// A loaded program: `bpftool prog show`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prog {
    pub id: u64,
    pub prog_type: String,
    pub name: String,
}

/// Every loaded program whose type is in [`SOCKET_PROG_TYPES`], by id.
pub fn socket_programs() -> Result<BTreeMap<u64, Prog>> {
    let list = bpftool(&["prog", "show"])?;
    let mut progs = BTreeMap::new();
    for prog in list.as_array().into_iter().flatten() {
        let prog_type = prog["type"].as_str().unwrap_or_default();
        if !SOCKET_PROG_TYPES.contains(&prog_type) {
            continue;
        }
        let Some(id) = prog["id"].as_u64() else {
            continue;
        };
        progs.insert(
            id,
            Prog {
                id,
                prog_type: prog_type.to_owned(),
                name: prog["name"].as_str().unwrap_or_default().to_owned(),
            },
        );
    }
    Ok(progs)
}

/// The programs of [`SOCKET_PROG_TYPES`] in effect on cgroup `dir` (attached to it or to an
/// ancestor), as `"<attach type> <id> <name>"` lines.
pub fn effective_socket_attachments(dir: &Path) -> Result<Vec<String>> {
    let progs = socket_programs()?;
    let dir_text = dir.to_str().context("cgroup path is not UTF-8")?;
    let list = bpftool(&["cgroup", "show", dir_text, "effective"])?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["id"].as_u64().is_some_and(|id| progs.contains_key(&id)))
        .map(|a| {
            format!(
                "{} {} {}",
                a["attach_type"].as_str().unwrap_or("?"),
                a["id"],
                a["name"].as_str().unwrap_or("?")
            )
        })
        .collect())
}

/// The cgroup v2 directory of process `pid`: the unified hierarchy's mount point joined with
/// the `0::` line of `/proc/<pid>/cgroup`.
pub fn cgroup_v2_dir(pid: u32) -> Result<PathBuf> {
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    // "<id> <parent> <dev> <root> <mount point> <options> ... - <fstype> <source> <options>"
    let mount = mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2"))
                .then(|| left.split_whitespace().nth(4))
                .flatten()
        })
        .context("no cgroup2 mount in /proc/self/mountinfo")?;
    let file = format!("/proc/{pid}/cgroup");
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
    let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
        bail!("no cgroup v2 line in {file}:\n{text}");
    };
    Ok(Path::new(mount).join(path.trim_start_matches('/')))
}

/// `bpftool -j <args>`, parsed.
fn bpftool(args: &[&str]) -> Result<Value> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let out = cmd::ok("bpftool", &full)
        .context("bpftool is Debian's package bpftool (`cargo xtask setup` installs it)")?;
    if out.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(&out).with_context(|| format!("parsing `bpftool -j {args:?}`: {out}"))
}
