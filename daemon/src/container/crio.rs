//! CRI-O: the OCI spec, which CRI-O writes to both its run root (the bundle runc reads) and its
//! graph root before creating the container; the kubelet's labels and CRI-O's own
//! `io.kubernetes.cri-o.ImageName` are annotations there.

use super::annotations::{kube_names, read_spec, storage_spec_path};
use super::{CgroupContainer, ContainerMeta, MetadataError, Runtime, RuntimeRoots};

pub(super) fn resolve(
    roots: &RuntimeRoots,
    c: &CgroupContainer,
) -> Result<ContainerMeta, MetadataError> {
    let run_path = storage_spec_path(&roots.crio_run, &c.id);
    let spec = match read_spec(&run_path)? {
        Some(spec) => spec,
        None => read_spec(&storage_spec_path(&roots.crio_storage, &c.id))?.ok_or_else(|| {
            MetadataError::NotFound {
                runtime: Runtime::CriO,
                id: c.id.clone(),
                path: run_path,
            }
        })?,
    };
    let kube = kube_names(&spec.annotations, c.pod_uid.as_deref());
    Ok(ContainerMeta {
        name: kube.container,
        image: kube.image,
        pod: kube.pod,
    })
}

#[cfg(test)]
#[path = "crio_tests.rs"]
mod tests;
