#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::container::test_support::{container, fixture_resolver, web_pod, POD_UID};
use crate::container::{ContainerMeta, MetadataError, Runtime};

#[test]
fn real_container() {
    // `docker run --name sw-dock1 bb:1`, captured at cgroup creation.
    let id = "1a708eaff6d30331090fe389717687d869396be66d483fffbba08128452dca01";
    let meta = fixture_resolver()
        .resolve(&container(Runtime::Docker, id, None, None))
        .unwrap();
    let want = ContainerMeta {
        name: Some("sw-dock1".into()),
        image: Some("bb:1".into()),
        pod: None,
    };
    assert_eq!(meta, want);
}

#[test]
fn cri_dockerd_labels_give_the_pod() {
    let id = "f3".repeat(32);
    let meta = fixture_resolver()
        .resolve(&container(Runtime::Docker, &id, None, Some(POD_UID)))
        .unwrap();
    let want = ContainerMeta {
        name: Some("web".into()),
        image: Some("nginx:1.25".into()),
        pod: Some(web_pod()),
    };
    assert_eq!(meta, want);
}

#[test]
fn unknown_container_is_not_found() {
    let err = fixture_resolver()
        .resolve(&container(Runtime::Docker, &"b0".repeat(32), None, None))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::NotFound {
                runtime: Runtime::Docker,
                ..
            }
        ),
        "{err}"
    );
}
