//! Removes containers left behind by earlier test processes that were killed before their drop
//! guards ran (a test run interrupted by a timeout or a SIGKILL). Only containers whose name has
//! the harness's shape `sw-...-<pid>-<n>` and whose test process no longer exists are removed.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cmd;
use crate::runtime::{remove_quietly, Runtime, NAME_LABEL};

/// Removes the runtime's leftover test containers; reports what it removed on stderr.
pub fn sweep(runtime: Runtime) -> Result<()> {
    let names = match runtime {
        Runtime::Podman | Runtime::Docker => {
            let list = cmd::ok(runtime.as_str(), &["ps", "--all", "--format", "{{.Names}}"])?;
            list.lines()
                .map(|name| (name.to_owned(), name.to_owned()))
                .collect()
        }
        Runtime::Containerd | Runtime::ContainerdCri => containerd_names(runtime)?,
    };
    for (reference, name) in names {
        if is_stale(&name) {
            eprintln!("removing leftover {} container {name}", runtime.as_str());
            remove_quietly(runtime, &reference);
        }
    }
    Ok(())
}

/// (id, harness name) of every containerd container that carries [`NAME_LABEL`].
fn containerd_names(runtime: Runtime) -> Result<Vec<(String, String)>> {
    let filter = format!("labels.\"{NAME_LABEL}\"");
    let ids = cmd::ok(
        "ctr",
        &runtime.ctr_args(&["containers", "ls", "--quiet", &filter]),
    )?;
    let mut names = Vec::new();
    for id in ids.lines() {
        let info = cmd::ok("ctr", &runtime.ctr_args(&["containers", "info", id]))?;
        let info: Value = serde_json::from_str(&info).context("parsing `ctr containers info`")?;
        if let Some(name) = info["Labels"][NAME_LABEL].as_str() {
            names.push((id.to_owned(), name.to_owned()));
        }
    }
    Ok(names)
}

/// A harness name (`sw-...-<pid>-<n>`) whose pid is not a running process.
fn is_stale(name: &str) -> bool {
    let mut parts = name.rsplit('-');
    let (Some(n), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.starts_with("sw-")
        && numeric(n)
        && numeric(pid)
        && pid != std::process::id().to_string()
        && !Path::new("/proc").join(pid).exists()
}

#[cfg(test)]
mod tests {
    use super::is_stale;

    #[test]
    fn only_harness_names_of_dead_processes_are_stale() {
        assert!(is_stale("sw-fnd-999999999-3"));
        assert!(!is_stale(&format!("sw-fnd-{}-3", std::process::id())));
        assert!(!is_stale("sw-fnd-1-3"), "pid 1 is alive");
        assert!(!is_stale("web-999999999-3"));
        assert!(!is_stale("sw-fnd"));
    }
}
