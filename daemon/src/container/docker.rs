//! Docker: `config.v2.json`, written at `docker create`, has the name and the image reference the
//! user ran; cri-dockerd's Kubernetes labels are in its `Config.Labels`.
//!
//! The OCI spec (`<containerd state>/io.containerd.runtime.v2.task/moby/<id>/config.json`, under
//! `/run/docker/containerd/daemon` when dockerd runs its own containerd) adds nothing: Docker
//! 20.10 writes no annotations there.

use std::collections::HashMap;

use serde::Deserialize;

use super::annotations::kube_names;
use super::fileio::read_json;
use super::metadata::non_empty;
use super::{CgroupContainer, ContainerMeta, MetadataError, Runtime, RuntimeRoots};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigV2 {
    /// "/name".
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    #[serde(default)]
    image: String,
    #[serde(default)]
    labels: Option<HashMap<String, String>>,
}

pub(super) fn resolve(
    roots: &RuntimeRoots,
    c: &CgroupContainer,
) -> Result<ContainerMeta, MetadataError> {
    let path = roots
        .docker_data
        .join("containers")
        .join(&c.id)
        .join("config.v2.json");
    let Some(v2) = read_json::<ConfigV2>(&path)? else {
        return Err(MetadataError::NotFound {
            runtime: Runtime::Docker,
            id: c.id.clone(),
            path,
        });
    };
    let (image, labels) = match v2.config {
        Some(config) => (non_empty(&config.image), config.labels.unwrap_or_default()),
        None => (None, HashMap::new()),
    };
    let kube = kube_names(&labels, c.pod_uid.as_deref());
    Ok(ContainerMeta {
        // cri-dockerd names containers `k8s_<container>_<pod>_…`: the label is the useful name.
        name: kube
            .container
            .or_else(|| non_empty(v2.name.trim_start_matches('/'))),
        image: image.or(kube.image),
        pod: kube.pod,
    })
}

#[cfg(test)]
#[path = "docker_tests.rs"]
mod tests;
