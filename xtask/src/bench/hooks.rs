//! What a running sealwatch has attached, read from the kernel rather than from a list kept by
//! hand: every BPF link the process holds shows its type and tracepoint in
//! `/proc/PID/fdinfo/FD` (`link_type: raw_tracepoint` + `tp_name:` for tp_btf and raw
//! tracepoints; `link_type: perf` + `event_type: tracepoint` + `tp_name:` for classic
//! tracepoints, whose category is found in tracefs). The floor attaches empty programs to the
//! same hooks, so it follows new sensors without edits here.

use std::path::Path;

/// One attached hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// A raw tracepoint (sealwatch's tp_btf programs attach this way).
    Raw(String),
    /// A classic tracepoint, `category/name` (e.g. `syscalls/sys_enter_openat`).
    Tracepoint(String),
    /// Anything else (cgroup hooks, ...): described, not mirrored by the floor.
    Other(String),
}

impl Hook {
    /// The `loadgen floor` argument for this hook, if the floor can mirror it.
    pub fn floor_arg(&self) -> Option<&str> {
        match self {
            Hook::Raw(name) | Hook::Tracepoint(name) => Some(name),
            Hook::Other(_) => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Hook::Raw(n) | Hook::Tracepoint(n) | Hook::Other(n) => n,
        }
    }
}

/// The hooks of every BPF link process `pid` holds, in fd order.
pub fn attached(pid: u32) -> Vec<Hook> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<(u32, std::path::PathBuf)> = fds
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    fds.sort();
    fds.iter()
        .filter(|(_, path)| {
            std::fs::read_link(path).is_ok_and(|t| t.to_string_lossy() == "anon_inode:bpf_link")
        })
        .filter_map(|(fd, _)| std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok())
        .filter_map(|info| parse_link(&info, &tracepoint_category))
        .collect()
}

/// Processes other than this one and `exclude` that hold BPF links on syscall tracepoints
/// (`sys_enter_*`/`sys_exit_*`, or raw `sys_enter`/`sys_exit`), as `comm[pid]`. While any
/// syscall tracepoint is enabled, every syscall of every task takes the kernel's tracing slow
/// path, so a baseline measured then is not a clean baseline (other engineers' integration
/// tests run sealwatch on this machine).
pub fn foreign_syscall_hooks(exclude: &[u32]) -> Vec<String> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut holders = Vec::new();
    for entry in procs.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || exclude.contains(&pid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.filter_map(Result::ok).any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:bpf_link")
                && std::fs::read_to_string(entry.path().join("fdinfo").join(fd.file_name()))
                    .is_ok_and(|info| is_syscall_link(&info))
        });
        if holds {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            holders.push(format!("{}[{pid}]", comm.trim()));
        }
    }
    holders
}

fn is_syscall_link(info: &str) -> bool {
    info.lines()
        .filter_map(|l| l.strip_prefix("tp_name:"))
        .map(str::trim)
        .any(|tp| tp.starts_with("sys_enter") || tp.starts_with("sys_exit"))
}

/// A hook from a link's fdinfo; `category` finds a classic tracepoint's category by name.
fn parse_link(info: &str, category: &dyn Fn(&str) -> Option<String>) -> Option<Hook> {
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    let link_type = field("link_type")?;
    let tp_name = field("tp_name");
    Some(match (link_type.as_str(), tp_name) {
        ("raw_tracepoint" | "tracing", Some(tp)) => Hook::Raw(tp),
        ("perf", Some(tp)) if field("event_type").as_deref() == Some("tracepoint") => {
            match category(&tp) {
                Some(cat) => Hook::Tracepoint(format!("{cat}/{tp}")),
                None => Hook::Other(format!("tracepoint {tp} (category not found in tracefs)")),
            }
        }
        (other, tp) => Hook::Other(match tp {
            Some(tp) => format!("{other} link on {tp}"),
            None => format!("{other} link"),
        }),
    })
}

/// The tracefs category that has an event called `name` (`syscalls` for `sys_enter_openat`).
fn tracepoint_category(name: &str) -> Option<String> {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .find_map(|root| {
        std::fs::read_dir(root)
            .ok()?
            .filter_map(Result::ok)
            .find(|cat| Path::new(&cat.path()).join(name).join("id").is_file())
            .map(|cat| cat.file_name().to_string_lossy().into_owned())
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn syscalls(_: &str) -> Option<String> {
        Some("syscalls".into())
    }

    #[test]
    fn links_from_fdinfo() {
        let raw =
            "pos:\t0\nlink_type:\traw_tracepoint\nlink_id:\t268\ntp_name:\tsched_process_exec\n";
        assert_eq!(
            parse_link(raw, &syscalls),
            Some(Hook::Raw("sched_process_exec".into()))
        );
        let perf = "link_type:\tperf\nprog_id:\t450\ntp_name:\tsys_enter_openat\nevent_type:\ttracepoint\n";
        let hook = parse_link(perf, &syscalls).unwrap();
        assert_eq!(hook.floor_arg(), Some("syscalls/sys_enter_openat"));
        assert!(is_syscall_link(perf));
        assert!(!is_syscall_link(raw));
        let cgroup = "link_type:\tcgroup\nprog_id:\t9\n";
        assert_eq!(parse_link(cgroup, &syscalls).unwrap().floor_arg(), None);
        assert_eq!(parse_link("pos:\t0\n", &syscalls), None);
    }
}
