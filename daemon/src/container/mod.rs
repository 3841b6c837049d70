//! Which container a cgroup belongs to, and that container's metadata.
//!
//! Two steps, kept apart because they have different costs and timing:
//! - [`parse_cgroup_path`] is a pure function of the cgroup v2 path that `cgroup_mkdir` reports (or
//!   that a start-up scan finds). It gives runtime, id and pod uid, and is safe on the event path and
//!   in replay.
//! - [`MetadataResolver::resolve`] reads the runtime's state files (blocking I/O, off the event
//!   path) for name, image and pod. The files it reads are written before the runtime calls
//!   `runc create`, so they exist when the cgroup appears and even a 50 ms container is attributed
//!   (checked here for podman, Docker and `ctr`; CRI-O and containerd CRI write the bundle first too).
//!
//! [`cgroupfs`] finds the cgroup v2 mount and maps cgroup ids (`bpf_get_current_cgroup_id`) to paths.

mod annotations;
mod cgroup_path;
pub mod cgroupfs;
mod containerd;
mod crio;
mod docker;
mod fileio;
pub mod image_path;
pub mod in_root;
pub mod layer_access;
mod metadata;
mod podman;
#[cfg(test)]
mod test_support;

pub use cgroup_path::{parse_cgroup_path, parse_cgroup_path_with, DEFAULT_CONTAINERD_NAMESPACES};
pub use cgroupfs::{
    cgroup2_mount, find_cgroup2_mount, find_cgroup_by_id, scan_cgroups, CgroupFsError,
};
pub use metadata::{MetadataError, MetadataResolver, RuntimeRoots};

use serde::{Deserialize, Serialize};

/// The container runtime that made a cgroup; decides where its metadata lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
    CriO,
}

impl Runtime {
    /// The same spelling as the JSON form, for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the cgroup path alone tells.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CgroupContainer {
    pub runtime: Runtime,
    /// Full container id: 64 lowercase hex, except for `ctr run` containers, whose id is any name
    /// the user chose.
    pub id: String,
    /// containerd namespace for `/<namespace>/<id>` paths made by `ctr run` (e.g. "default").
    pub namespace: Option<String>,
    /// Pod uid from kubepods paths, with the systemd driver's '_' turned back into '-'.
    pub pod_uid: Option<String>,
}

/// Kubernetes pod of a container, from CRI annotations or labels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PodMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
}

/// What the runtime's state files tell; every field is optional because runtimes differ in what
/// they record (e.g. `ctr run` records no image outside containerd's database).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerMeta {
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: Option<PodMeta>,
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on bad fixtures")]
mod tests {
    use super::*;

    #[test]
    fn runtime_json_names_match_as_str() {
        for rt in [
            Runtime::Podman,
            Runtime::Docker,
            Runtime::Containerd,
            Runtime::CriO,
        ] {
            let json = serde_json::to_string(&rt).unwrap();
            assert_eq!(json, format!("\"{}\"", rt.as_str()));
            assert_eq!(serde_json::from_str::<Runtime>(&json).unwrap(), rt);
        }
        assert_eq!(Runtime::CriO.as_str(), "cri-o");
    }
}
