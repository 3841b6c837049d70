//! podman: name and image from containers/storage's `containers.json` (and `images.json`), pod
//! names (if any) from the OCI spec's annotations.
//!
//! podman 4.3 puts neither the name nor the image in `config.json` annotations; `containers.json`
//! has both (`names`, and `metadata.image-name`, the reference the user ran, e.g.
//! `localhost/bb:1`). Both files are written at `podman create`, before the cgroup exists. The
//! libpod database (bolt or sqlite) is not read: it needs a database reader and is locked while
//! podman runs.

use std::path::Path;

use serde::Deserialize;

use super::annotations::{kube_names, read_spec, storage_spec_path, OciSpec};
use super::fileio::read_json;
use super::metadata::non_empty;
use super::{CgroupContainer, ContainerMeta, MetadataError, Runtime};

/// One entry of `overlay-containers/containers.json`.
#[derive(Debug, Deserialize)]
struct StorageContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    /// Image id.
    #[serde(default)]
    image: String,
    /// podman's own JSON, stored as a string.
    #[serde(default)]
    metadata: String,
}

/// The part of `StorageContainer::metadata` podman writes.
#[derive(Debug, Default, Deserialize)]
struct PodmanMetadata {
    #[serde(rename = "image-name", default)]
    image_name: String,
}

/// One entry of `overlay-images/images.json`.
#[derive(Debug, Deserialize)]
struct StorageImage {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

pub(super) fn resolve(
    roots: &super::RuntimeRoots,
    c: &CgroupContainer,
) -> Result<ContainerMeta, MetadataError> {
    let storage = &roots.podman_storage;
    let spec_path = storage_spec_path(storage, &c.id);
    let spec = read_spec(&spec_path)?;
    let containers_path = storage.join("overlay-containers/containers.json");
    let entry = read_json::<Vec<StorageContainer>>(&containers_path)?
        .and_then(|all| all.into_iter().find(|e| e.id == c.id));
    if spec.is_none() && entry.is_none() {
        return Err(MetadataError::NotFound {
            runtime: Runtime::Podman,
            id: c.id.clone(),
            path: spec_path,
        });
    }

    let kube = kube_names(
        &spec.unwrap_or_else(OciSpec::default).annotations,
        c.pod_uid.as_deref(),
    );
    let mut meta = ContainerMeta {
        name: kube.container,
        image: kube.image,
        pod: kube.pod,
    };
    if let Some(entry) = entry {
        meta.name = meta
            .name
            .or_else(|| entry.names.first().and_then(|n| non_empty(n)));
        // The metadata string is podman's private format: unreadable means "no image name here",
        // not a failure of the whole lookup.
        let image_name = serde_json::from_str::<PodmanMetadata>(&entry.metadata)
            .ok()
            .and_then(|m| non_empty(&m.image_name));
        meta.image = match (meta.image, image_name) {
            (Some(image), _) | (None, Some(image)) => Some(image),
            (None, None) => image_by_id(storage, &entry.image)?,
        };
    }
    Ok(meta)
}

/// The first name of an image id in `images.json`, or the id itself for an untagged image.
fn image_by_id(storage: &Path, image_id: &str) -> Result<Option<String>, MetadataError> {
    if image_id.is_empty() {
        return Ok(None);
    }
    let images = read_json::<Vec<StorageImage>>(&storage.join("overlay-images/images.json"))?;
    let name = images
        .and_then(|all| all.into_iter().find(|i| i.id == image_id))
        .and_then(|i| i.names.into_iter().find(|n| !n.is_empty()));
    Ok(Some(name.unwrap_or_else(|| image_id.to_owned())))
}

#[cfg(test)]
#[path = "podman_tests.rs"]
mod tests;
