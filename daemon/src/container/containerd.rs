//! containerd (CRI and `ctr run`): the OCI spec in the task bundle, written before the shim runs
//! `runc create`. CRI puts container, image and pod names in its annotations.
//!
//! A plain `ctr run` container has no annotations: its image (and the labels of nerdctl) are
//! recorded only in containerd's bolt database (`io.containerd.metadata.v1.bolt/meta.db`), which
//! needs a bbolt reader and is held open by containerd. So when the spec names no image,
//! containerd itself is asked through its CLI, `ctr containers info` (blocking, bounded by
//! [`CTR_TIMEOUT`]); without `ctr` or a reachable socket the image stays `None`. The name is the
//! ctr id (which the user chose) unless a label names the container.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::annotations::{kube_names, read_spec};
use super::fileio::MAX_STATE_FILE;
use super::metadata::non_empty;
use super::{CgroupContainer, ContainerMeta, MetadataError, Runtime, RuntimeRoots};

/// The namespace the CRI plugin uses; cgroup paths made by CRI do not name it.
const CRI_NAMESPACE: &str = "k8s.io";

/// How long one `ctr containers info` may take before it is killed: it answers in milliseconds
/// when containerd is healthy.
pub(super) const CTR_TIMEOUT: Duration = Duration::from_secs(2);

/// Labels naming the container, in order of preference: containerd CRI, then nerdctl.
const NAME_LABELS: &[&str] = &["io.kubernetes.cri.container-name", "nerdctl/name"];

pub(super) fn resolve(
    roots: &RuntimeRoots,
    c: &CgroupContainer,
) -> Result<ContainerMeta, MetadataError> {
    let ns = c.namespace.as_deref().unwrap_or(CRI_NAMESPACE);
    let path = roots
        .containerd_run
        .join("io.containerd.runtime.v2.task")
        .join(ns)
        .join(&c.id)
        .join("config.json");
    let Some(spec) = read_spec(&path)? else {
        return Err(MetadataError::NotFound {
            runtime: Runtime::Containerd,
            id: c.id.clone(),
            path,
        });
    };
    let kube = kube_names(&spec.annotations, c.pod_uid.as_deref());
    let info = match kube.image {
        Some(_) => None,
        None => ask_containerd(roots, ns, &c.id),
    };
    let info = info.unwrap_or_default();
    let ctr_name = c.namespace.is_some().then(|| c.id.clone());
    Ok(ContainerMeta {
        name: kube.container.or_else(|| info.name()).or(ctr_name),
        image: kube.image.or_else(|| info.image()),
        pod: kube.pod,
    })
}

/// What `ctr containers info` prints, as far as metadata goes (it also prints the whole spec).
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
pub(super) struct CtrInfo {
    #[serde(rename = "Image", default)]
    pub image: Option<String>,
    /// `null` when the container has none.
    #[serde(rename = "Labels", default)]
    pub labels: Option<HashMap<String, String>>,
}

impl CtrInfo {
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    pub fn image(&self) -> Option<String> {
        self.image.as_deref().and_then(non_empty)
    }

    /// The container name a label gives (CRI, nerdctl); `None` for a plain `ctr run`.
    pub fn name(&self) -> Option<String> {
        let labels = self.labels.as_ref()?;
        NAME_LABELS
            .iter()
            .find_map(|key| labels.get(*key).and_then(|v| non_empty(v)))
    }
}

/// The containerd sockets to ask, in order: the standard one, then Docker's own containerd.
pub(super) fn socket_candidates(roots: &RuntimeRoots) -> [PathBuf; 2] {
    [
        roots.containerd_run.join("containerd.sock"),
        roots.docker_containerd_socket.clone(),
    ]
}

/// Asks every existing socket in turn; `None` when `ctr` is missing or no containerd knows the
/// container (logged at debug: the image is then simply unknown).
fn ask_containerd(roots: &RuntimeRoots, ns: &str, id: &str) -> Option<CtrInfo> {
    for socket in socket_candidates(roots) {
        if !socket.exists() {
            continue;
        }
        match ctr_info(&socket, ns, id) {
            Ok(info) => return Some(info),
            Err(CtrError::NotInstalled) => {
                tracing::debug!(
                    id,
                    "`ctr` is not installed: image of a ctr container unknown"
                );
                return None;
            }
            Err(err) => {
                tracing::debug!(id, ns, socket = %socket.display(), %err, "ctr containers info");
            }
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CtrError {
    #[error("`ctr` is not installed")]
    NotInstalled,
    #[error("cannot run `ctr`: {0}")]
    Spawn(std::io::Error),
    #[error("did not finish within {0:?} and was killed")]
    TimedOut(Duration),
    #[error("failed ({status}): {stderr}")]
    Failed { status: ExitStatus, stderr: String },
    #[error("unexpected output: {0}")]
    Parse(#[from] serde_json::Error),
}

/// `ctr --address <socket> -n <ns> containers info <id>`, parsed.
fn ctr_info(socket: &Path, ns: &str, id: &str) -> Result<CtrInfo, CtrError> {
    let mut cmd = Command::new("ctr");
    cmd.arg("--address")
        .arg(socket)
        .args(["--namespace", ns, "containers", "info", "--", id]);
    let out = run_bounded(&mut cmd, CTR_TIMEOUT)?;
    if !out.status.success() {
        return Err(CtrError::Failed {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(CtrInfo::parse(&out.stdout)?)
}

pub(super) struct BoundedOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` (no shell, stdin closed), capturing at most [`MAX_STATE_FILE`] bytes of each
/// output; kills it after `timeout`.
pub(super) fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<BoundedOutput, CtrError> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CtrError::NotInstalled,
            _ => CtrError::Spawn(e),
        })?;
    // Drained by threads so a large output cannot fill the pipe and stall the child.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => break Err(CtrError::TimedOut(timeout)),
            Err(e) => break Err(CtrError::Spawn(e)),
        }
    };
    if status.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = join(stdout);
    let stderr = join(stderr);
    Ok(BoundedOutput {
        status: status?,
        stdout,
        stderr,
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    let pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error leaves what was read: the caller then fails to parse it.
        let _ = pipe.take(MAX_STATE_FILE).read_to_end(&mut bytes);
        bytes
    }))
}

fn join(reader: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "containerd_tests.rs"]
mod tests;
