//! Where each runtime keeps its state, and the resolver that turns a [`CgroupContainer`] into
//! [`ContainerMeta`] by reading it.
//!
//! Every source read here exists before the container's cgroup does (checked on podman 4.3,
//! Docker 20.10 and containerd 1.6 by stopping runc at `cgroup_mkdir`): runtimes write their
//! state and the OCI bundle first, then `runc create` makes the cgroup.

use std::path::{Path, PathBuf};

use super::{containerd, crio, docker, podman, CgroupContainer, ContainerMeta, Runtime};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not written yet, or not a container of this runtime: the caller may retry for a bounded
    /// time (the pipeline resolves right after `cgroup_mkdir`).
    #[error("no {runtime} metadata for container {id} (looked for {})", path.display())]
    NotFound {
        runtime: Runtime,
        id: String,
        path: PathBuf,
    },
    #[error("cannot parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where runtimes keep their state. All configurable so a DaemonSet can point at host mounts
/// (see [`RuntimeRoots::with_prefix`]) and tests at temporary trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRoots {
    /// containers/storage graph root of podman: `overlay-containers/containers.json`,
    /// `overlay-containers/<id>/userdata/config.json`, `overlay-images/images.json`.
    pub podman_storage: PathBuf,
    /// Docker data root: `containers/<id>/config.v2.json`.
    pub docker_data: PathBuf,
    /// containerd state dir: `io.containerd.runtime.v2.task/<namespace>/<id>/config.json`, and
    /// `containerd.sock`, which `ctr` asks for what the spec lacks (the image of a `ctr run`).
    pub containerd_run: PathBuf,
    /// Socket of the containerd that dockerd runs itself (without `--containerd`), asked after
    /// `<containerd_run>/containerd.sock`.
    pub docker_containerd_socket: PathBuf,
    /// containers/storage run root of CRI-O: `overlay-containers/<id>/userdata/config.json`.
    pub crio_run: PathBuf,
    /// containers/storage graph root of CRI-O, which holds a second copy of `config.json`.
    pub crio_storage: PathBuf,
}

impl Default for RuntimeRoots {
    /// The standard host paths (rootful runtimes, default configuration).
    fn default() -> Self {
        Self {
            podman_storage: "/var/lib/containers/storage".into(),
            docker_data: "/var/lib/docker".into(),
            containerd_run: "/run/containerd".into(),
            docker_containerd_socket: "/run/docker/containerd/containerd.sock".into(),
            crio_run: "/run/containers/storage".into(),
            crio_storage: "/var/lib/containers/storage".into(),
        }
    }
}

impl RuntimeRoots {
    /// The default roots under `prefix`, e.g. `/host` when the host's `/` is mounted there.
    pub fn with_prefix(prefix: &Path) -> Self {
        let under = |p: PathBuf| prefix.join(p.strip_prefix("/").unwrap_or(&p));
        let d = Self::default();
        Self {
            podman_storage: under(d.podman_storage),
            docker_data: under(d.docker_data),
            containerd_run: under(d.containerd_run),
            docker_containerd_socket: under(d.docker_containerd_socket),
            crio_run: under(d.crio_run),
            crio_storage: under(d.crio_storage),
        }
    }
}

/// Reads runtime state files for container metadata.
#[derive(Debug, Clone)]
pub struct MetadataResolver {
    roots: RuntimeRoots,
}

impl MetadataResolver {
    pub fn new(roots: RuntimeRoots) -> Self {
        Self { roots }
    }

    pub fn roots(&self) -> &RuntimeRoots {
        &self.roots
    }

    /// Blocking file I/O; call it off the event path. `Err(MetadataError::NotFound { .. })` means
    /// "not written yet / unknown": the caller retries for a bounded time.
    pub fn resolve(&self, c: &CgroupContainer) -> Result<ContainerMeta, MetadataError> {
        match c.runtime {
            Runtime::Podman => podman::resolve(&self.roots, c),
            Runtime::Docker => docker::resolve(&self.roots, c),
            Runtime::CriO => crio::resolve(&self.roots, c),
            Runtime::Containerd => {
                let result = containerd::resolve(&self.roots, c);
                // A bare id under kubepods (cgroupfs driver) is containerd by guess; cri-dockerd
                // makes the same shape. Only then is Docker worth a look.
                let guessed = c.namespace.is_none() && c.pod_uid.is_some();
                match result {
                    Err(not_found @ MetadataError::NotFound { .. }) if guessed => {
                        match docker::resolve(&self.roots, c) {
                            Err(MetadataError::NotFound { .. }) => Err(not_found),
                            other => other,
                        }
                    }
                    other => other,
                }
            }
        }
    }
}

/// `Some(s)` unless `s` is empty: runtimes write "" for "unset".
pub(super) fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
