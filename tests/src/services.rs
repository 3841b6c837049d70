//! Background services the runtimes need: containerd and dockerd.
//!
//! Decision: ONE standalone containerd on the standard socket `/run/containerd/containerd.sock`,
//! started before dockerd, and dockerd is pointed at it with `--containerd`. So Docker's containers
//! live in containerd namespace `moby` and the `ctr` containers of the tests in namespace `default`
//! of the same containerd, at the address a Kubernetes node uses (the daemon needs no special
//! socket path for tests). When a containerd or a dockerd is already answering, it is reused.
//! Both are left running when the tests end (they are slow to start, and harmless); their logs go
//! to `<target>/sealwatch-tests/{containerd,dockerd}.log`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::cmd;

/// The containerd socket used by `ctr` and by dockerd.
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// How long a freshly started containerd or dockerd may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one liveness probe (`ctr version`, `docker info`) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Makes sure containerd answers on [`CONTAINERD_SOCKET`], starting it if needed (once per process).
pub fn ensure_containerd() -> Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| start_containerd().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Makes sure dockerd answers `docker info`, starting it if needed (once per process).
pub fn ensure_dockerd() -> Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| start_dockerd().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn containerd_answers() -> bool {
    cmd::succeeds(
        "ctr",
        &["--address", CONTAINERD_SOCKET, "version"],
        PROBE_TIMEOUT,
    )
}

fn docker_answers() -> bool {
    cmd::succeeds("docker", &["info"], PROBE_TIMEOUT)
}

fn start_containerd() -> Result<()> {
    crate::require_root()?;
    if containerd_answers() {
        return Ok(());
    }
    let dir = crate::artifacts_dir()?;
    // The CRI plugin is not needed (no kubelet can run here) and only adds CNI noise to the log.
    let config = dir.join("containerd.toml");
    std::fs::write(
        &config,
        "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let log = dir.join("containerd.log");
    let mut command = Command::new("containerd");
    command
        .arg("--config")
        .arg(&config)
        .args(["--address", CONTAINERD_SOCKET]);
    spawn_service(command, &log, "containerd", containerd_answers)
}

fn start_dockerd() -> Result<()> {
    crate::require_root()?;
    if docker_answers() {
        return Ok(());
    }
    ensure_containerd()?;
    let log = crate::artifacts_dir()?.join("dockerd.log");
    let mut command = Command::new("dockerd");
    command.args([
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--storage-driver=overlay2",
        "--default-ulimit",
        "nofile=1024:1024",
        "--containerd",
        CONTAINERD_SOCKET,
    ]);
    spawn_service(command, &log, "dockerd", docker_answers)
}

/// Starts a long-running service in its own process group with output to `log`, and waits until
/// `answers` says it is up. Fails with the log's tail when it exits or does not answer in time.
fn spawn_service(
    mut command: Command,
    log: &Path,
    name: &str,
    answers: fn() -> bool,
) -> Result<()> {
    let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating a log file handle")?;
    let line = cmd::describe(&command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: a Ctrl-C on the test run does not take the service down with it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start `{line}` (is {name} installed?)"))?;
    let mut exited = None;
    let up = cmd::poll_until(START_TIMEOUT, || {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            return true;
        }
        answers()
    });
    if let Some(status) = exited {
        bail!(
            "`{line}` exited with {status} before answering; last lines of {}:\n{}",
            log.display(),
            cmd::file_tail(log, 30)
        );
    }
    if !up {
        bail!(
            "`{line}` (pid {}) does not answer after {START_TIMEOUT:?}; last lines of {}:\n{}",
            child.id(),
            log.display(),
            cmd::file_tail(log, 30)
        );
    }
    // The child is left running on purpose; dropping the handle does not kill it.
    Ok(())
}
