//! Shared by the resolver tests: fixtures and containers to resolve.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::{Path, PathBuf};

use super::{CgroupContainer, MetadataResolver, PodMeta, Runtime, RuntimeRoots};

pub const POD_UID: &str = "5f3d3c1e-8a2b-4c6d-9e0f-1a2b3c4d5e6f";

/// `testdata/host`, standing for the host's `/`.
pub fn fixture_host() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/container/testdata/host")
}

pub fn fixture_resolver() -> MetadataResolver {
    MetadataResolver::new(RuntimeRoots::with_prefix(&fixture_host()))
}

pub fn container(
    runtime: Runtime,
    id: &str,
    namespace: Option<&str>,
    pod_uid: Option<&str>,
) -> CgroupContainer {
    CgroupContainer {
        runtime,
        id: id.to_owned(),
        namespace: namespace.map(str::to_owned),
        pod_uid: pod_uid.map(str::to_owned),
    }
}

/// The pod every synthesized Kubernetes fixture belongs to.
pub fn web_pod() -> PodMeta {
    PodMeta {
        name: Some("web-7d4b9c6f5-x2x9q".into()),
        namespace: Some("shop".into()),
        uid: Some(POD_UID.into()),
    }
}

/// Copies one fixture file (path relative to `testdata/host`) into `dst_host`, for tests that
/// need only part of a runtime's state.
pub fn copy_fixture(rel: &str, dst_host: &Path) {
    let dst = dst_host.join(rel);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(fixture_host().join(rel), dst).unwrap();
}
