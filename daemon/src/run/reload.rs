//! Policy reload on SIGHUP or when the policy file changes, without stopping the event flow: the
//! new policy is parsed next to the old one and swapped in only when it is valid. A bad file keeps
//! the old policy in force, is logged with file:line:column, and is counted in the metrics.
//!
//! Changes are found by polling the file's identity (device, inode, size, mtime) once a second.
//! `metadata` follows symlinks, so a Kubernetes ConfigMap update (the kubelet swaps the `..data`
//! symlink) is seen like an edit in place.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use crate::{
    metrics::Metrics,
    policy::{NetEnvironment, Policy},
};

/// How often the policy file is checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Watches the `--policy` file (nothing without one: the embedded default cannot change).
pub struct PolicyReloader {
    path: Option<PathBuf>,
    seen: Option<Stamp>,
}

impl PolicyReloader {
    /// Starts watching `path` as it is now (the policy just loaded from it).
    pub fn new(path: Option<&Path>) -> Self {
        let seen = path.and_then(stamp);
        PolicyReloader {
            path: path.map(Path::to_path_buf),
            seen,
        }
    }

    /// Whether the file changed since the last look (a vanished file counts as a change once).
    pub fn changed(&mut self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let now = stamp(path);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }

    /// Loads the file again and returns it when it is valid (for this node's network
    /// environment `env`), to be put in force; `trigger` says why, for the log.
    pub fn reload(
        &mut self,
        trigger: &str,
        env: &NetEnvironment,
        metrics: &Metrics,
    ) -> Option<Policy> {
        let Some(path) = &self.path else {
            tracing::info!(
                trigger,
                "no --policy file: the embedded default policy stays in force"
            );
            return None;
        };
        // What is loaded now is what the next poll compares with, so one change reloads once.
        self.seen = stamp(path);
        let loaded = Policy::load(path).and_then(|policy| {
            policy.check_network_environment(env)?;
            Ok(policy)
        });
        match loaded {
            Ok(policy) => {
                tracing::info!(trigger, policy = policy.source(), "policy reloaded");
                metrics.policy_reloaded(true);
                Some(policy)
            }
            Err(error) => {
                tracing::error!(
                    trigger,
                    %error,
                    "policy reload failed: the previous policy stays in force"
                );
                metrics.policy_reloaded(false);
                None
            }
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn edits_are_seen_once_and_bad_policies_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, "version: 1\n").unwrap();
        let mut reloader = PolicyReloader::new(Some(&path));
        let metrics = Metrics::new();
        let env = NetEnvironment::default();
        assert!(!reloader.changed());

        std::fs::write(&path, "version: 1\nrules: {}\n").unwrap();
        assert!(reloader.changed());
        assert!(!reloader.changed(), "one change, one reload");
        assert!(reloader.reload("test", &env, &metrics).is_some());

        std::fs::write(&path, "version: 1\nrules:\n  no-such-rule: {}\n").unwrap();
        assert!(reloader.changed());
        assert!(reloader.reload("test", &env, &metrics).is_none());
        let text = metrics.encode().unwrap();
        assert!(text.contains("sealwatch_policy_reloads_total{result=\"success\"} 1"));
        assert!(text.contains("sealwatch_policy_reloads_total{result=\"error\"} 1"));
        assert!(text.contains("sealwatch_policy_last_reload_successful 0"));

        std::fs::remove_file(&path).unwrap();
        assert!(reloader.changed(), "a vanished file is a change");
        assert!(!reloader.changed());
    }

    #[test]
    fn without_a_policy_file_nothing_changes() {
        let mut reloader = PolicyReloader::new(None);
        assert!(!reloader.changed());
        assert!(reloader
            .reload("SIGHUP", &NetEnvironment::default(), &Metrics::new())
            .is_none());
    }
}
