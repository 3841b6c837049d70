//! Harness for sealwatch's privileged integration tests.
//!
//! The tests run the real daemon binary (`$SEALWATCH_BIN`, default `<target>/release/sealwatch`)
//! as root against real containers from podman, Docker and containerd. Nothing here is mocked: when
//! the environment is broken (not root, a runtime missing, the daemon not built) the helpers fail
//! with a message that names what is wrong, so a broken machine never looks like a passing test.
//!
//! - [`cmd`]: run a command with a timeout and a readable error.
//! - [`image`]: the busybox test image, built once per test process and imported into every runtime.
//! - [`runtime`]: start, exec into and remove containers (podman, Docker, containerd via `ctr`).
//! - [`services`]: containerd and dockerd, started in the background when not running.
//! - [`leftovers`]: remove containers that killed test processes left behind.
//! - [`daemon`]: start the daemon, wait for events on its JSON stream, stop it and validate every line.
//! - [`schema`]: validate event lines against `schema/sealwatch.event.v1.json`.
//! - [`escape`]: decode the escaped form of kernel byte strings.
//! - [`events`]: pick events from the stream and check their fields.
//! - [`netns`]: a network namespace with a veth pair to the host, and servers inside it.
//! - [`peers`]: TCP and UDP servers that record what they saw.
//! - [`dns_server`]: a tiny authoritative DNS server for the name-based network rules.
//! - [`net_events`]: the network lines the network tests expect, and their end-of-test checks.
//! - [`net_workload`]: the network tests' policies, host-network containers and clients.
//! - [`learn`]: `sealwatch learn`, run to completion.
//! - [`bpftool`]: loaded and attached socket BPF programs, cgroup v2 directories.

pub mod attack;
pub mod bpftool;
pub mod capture;
pub mod clickhouse;
pub mod cmd;
pub mod daemon;
pub mod dns_server;
pub mod escape;
pub mod events;
pub mod image;
pub mod learn;
pub mod leftovers;
pub mod net_events;
pub mod net_workload;
pub mod netns;
pub mod otlp;
pub mod peers;
pub mod prometheus;
pub mod pty;
pub mod runtime;
pub mod schema;
pub mod services;
pub mod sessions;
pub mod shipped;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The repository root: `$SEALWATCH_REPO` (set by `cargo xtask test`), else the parent of this
/// crate's directory.
pub fn repo_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| match std::env::var_os("SEALWATCH_REPO") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate lives one level below the repository root")
            .to_path_buf(),
    })
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `<repo>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// Where the harness keeps its files (rootfs tar, daemon and runtime logs):
/// `<target>/sealwatch-tests`, created on first use.
pub fn artifacts_dir() -> Result<PathBuf> {
    let dir = target_dir().join("sealwatch-tests");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Fails unless the test process runs as root: every privileged test needs it, and says so.
pub fn require_root() -> Result<()> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        bail!(
            "the sealwatch integration tests must run as root (euid is {euid}): \
             run them with `cargo xtask test` as root"
        );
    }
    Ok(())
}

/// A name unique to this test process and call: `<prefix>-<pid>-<counter>`.
/// Use it for container names and for markers in argv that identify a test's own events.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}
