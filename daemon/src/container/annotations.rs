//! The OCI runtime spec (`config.json`) as far as metadata goes: its annotations, and the
//! Kubernetes names CRI runtimes put there (containerd's `io.kubernetes.cri.*`, CRI-O's copies of
//! the kubelet labels `io.kubernetes.pod.*`). cri-dockerd puts the same labels on Docker
//! containers, so Docker's labels go through here too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fileio::read_json;
use super::{MetadataError, PodMeta};

/// Only the field we need: the full OCI model is large and runtime-version dependent.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OciSpec {
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

/// The bundle `config.json` of a container in a containers/storage root (podman, CRI-O).
pub(super) fn storage_spec_path(storage_root: &Path, id: &str) -> PathBuf {
    storage_root
        .join("overlay-containers")
        .join(id)
        .join("userdata/config.json")
}

/// Reads an OCI `config.json`; `Ok(None)` when it does not exist (yet).
pub(super) fn read_spec(path: &Path) -> Result<Option<OciSpec>, MetadataError> {
    read_json(path)
}

/// Container name, image and pod as Kubernetes runtimes record them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct KubeNames {
    pub container: Option<String>,
    pub image: Option<String>,
    pub pod: Option<PodMeta>,
}

/// Keys in order of preference: containerd CRI first, then the kubelet labels (CRI-O, cri-dockerd).
const CONTAINER_NAME: &[&str] = &[
    "io.kubernetes.cri.container-name",
    "io.kubernetes.container.name",
];
const IMAGE_NAME: &[&str] = &[
    "io.kubernetes.cri.image-name",
    "io.kubernetes.cri-o.ImageName",
];
const POD_NAME: &[&str] = &["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"];
const POD_NAMESPACE: &[&str] = &[
    "io.kubernetes.cri.sandbox-namespace",
    "io.kubernetes.pod.namespace",
];
const POD_UID: &[&str] = &["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"];

/// Kubernetes names from annotations (or Docker labels); `path_pod_uid` (from the cgroup path)
/// fills the pod uid when the files do not have it.
pub(super) fn kube_names(map: &HashMap<String, String>, path_pod_uid: Option<&str>) -> KubeNames {
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| map.get(*k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let pod = PodMeta {
        name: get(POD_NAME),
        namespace: get(POD_NAMESPACE),
        uid: get(POD_UID).or_else(|| path_pod_uid.map(str::to_owned)),
    };
    let has_pod = pod.name.is_some() || pod.namespace.is_some() || pod.uid.is_some();
    KubeNames {
        container: get(CONTAINER_NAME),
        image: get(IMAGE_NAME),
        pod: has_pod.then_some(pod),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_kubernetes_keys_means_no_pod() {
        let podman = map(&[
            ("io.container.manager", "libpod"),
            ("io.kubernetes.cri-o.TTY", "false"),
        ]);
        assert_eq!(kube_names(&podman, None), KubeNames::default());
    }

    #[test]
    fn path_uid_fills_in() {
        let names = kube_names(&HashMap::new(), Some("u-1"));
        let pod = names.pod.unwrap();
        assert_eq!((pod.name, pod.uid.as_deref()), (None, Some("u-1")));
    }

    #[test]
    fn file_uid_wins_and_empty_values_are_absent() {
        let m = map(&[
            ("io.kubernetes.pod.uid", "from-file"),
            ("io.kubernetes.pod.name", ""),
            ("io.kubernetes.container.name", "app"),
        ]);
        let names = kube_names(&m, Some("from-path"));
        assert_eq!(names.container.as_deref(), Some("app"));
        let pod = names.pod.unwrap();
        assert_eq!((pod.name, pod.uid.as_deref()), (None, Some("from-file")));
    }
}
