#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::container::test_support::{container, copy_fixture, fixture_resolver};
use crate::container::{ContainerMeta, MetadataError, MetadataResolver, Runtime, RuntimeRoots};

/// `podman run --name sw-pod1 localhost/bb:1`, captured at cgroup creation.
const ID: &str = "f231369ad4c85c7c51eb0a7eb9779a4a7c141c76c939d25f31fe27c27408e89c";
const CONTAINERS: &str = "var/lib/containers/storage/overlay-containers/containers.json";
const SPEC: &str = "var/lib/containers/storage/overlay-containers/f231369ad4c85c7c51eb0a7eb9779a4a7c141c76c939d25f31fe27c27408e89c/userdata/config.json";

fn resolve_in(host: &std::path::Path, id: &str) -> Result<ContainerMeta, MetadataError> {
    MetadataResolver::new(RuntimeRoots::with_prefix(host)).resolve(&container(
        Runtime::Podman,
        id,
        None,
        None,
    ))
}

#[test]
fn real_container() {
    let meta = fixture_resolver()
        .resolve(&container(Runtime::Podman, ID, None, None))
        .unwrap();
    let want = ContainerMeta {
        name: Some("sw-pod1".into()),
        image: Some("localhost/bb:1".into()),
        pod: None,
    };
    assert_eq!(meta, want);
}

#[test]
fn image_from_images_json_when_metadata_lacks_it() {
    let meta = fixture_resolver()
        .resolve(&container(Runtime::Podman, &"a0".repeat(32), None, None))
        .unwrap();
    assert_eq!(meta.name.as_deref(), Some("old-style"));
    assert_eq!(meta.image.as_deref(), Some("localhost/bb:1"));
}

#[test]
fn spec_alone_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(SPEC, dir.path());
    assert_eq!(
        resolve_in(dir.path(), ID).unwrap(),
        ContainerMeta::default()
    );
}

#[test]
fn containers_json_alone_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(CONTAINERS, dir.path());
    let meta = resolve_in(dir.path(), ID).unwrap();
    assert_eq!(meta.name.as_deref(), Some("sw-pod1"));
    assert_eq!(meta.image.as_deref(), Some("localhost/bb:1"));
    // No images.json: an image known only by id is reported as the id.
    let meta = resolve_in(dir.path(), &"a0".repeat(32)).unwrap();
    assert_eq!(
        meta.image.as_deref(),
        Some("5aebb88d5746434a0ce9337573e9acbac929067c3b3ef5feb9f853f560a5f0b5")
    );
}

#[test]
fn unknown_container_is_not_found() {
    let err = fixture_resolver()
        .resolve(&container(Runtime::Podman, &"b0".repeat(32), None, None))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::NotFound {
                runtime: Runtime::Podman,
                ..
            }
        ),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        resolve_in(empty.path(), ID),
        Err(MetadataError::NotFound { .. })
    ));
}

#[test]
fn broken_containers_json_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(SPEC, dir.path());
    let path = dir.path().join(CONTAINERS);
    std::fs::write(&path, "[{\"id\":").unwrap();
    match resolve_in(dir.path(), ID) {
        Err(MetadataError::Parse { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}
