//! containerd (CRI and `ctr run`): the OCI spec in the task bundle, written before the shim runs
//! `runc create`. CRI puts container, image and pod names in its annotations.
//!
//! Limitation: a plain `ctr run` container has no annotations, and its image is recorded only in
//! containerd's bolt database (`io.containerd.metadata.v1.bolt/meta.db`), which needs a bbolt
//! reader and is held open by containerd: not read, so its image is `None` and its name is the
//! ctr id (which the user chose).

use super::annotations::{kube_names, read_spec};
use super::{CgroupContainer, ContainerMeta, MetadataError, Runtime, RuntimeRoots};

/// The namespace the CRI plugin uses; cgroup paths made by CRI do not name it.
const CRI_NAMESPACE: &str = "k8s.io";

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
    let ctr_name = c.namespace.is_some().then(|| c.id.clone());
    Ok(ContainerMeta {
        name: kube.container.or(ctr_name),
        image: kube.image,
        pod: kube.pod,
    })
}

#[cfg(test)]
#[path = "containerd_tests.rs"]
mod tests;
