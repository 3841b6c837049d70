#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::container::test_support::{container, fixture_resolver, web_pod, POD_UID};
use crate::container::{parse_cgroup_path, ContainerMeta, MetadataError, PodMeta, Runtime};

#[test]
fn ctr_container_has_its_id_as_name_and_no_image() {
    // `ctr -n default run -d docker.io/library/bb:1 myid sleep 1000`: cgroup `/default/myid`.
    let c = parse_cgroup_path("/default/myid").unwrap();
    let meta = fixture_resolver().resolve(&c).unwrap();
    let want = ContainerMeta {
        name: Some("myid".into()),
        image: None,
        pod: None,
    };
    assert_eq!(meta, want);
}

#[test]
fn cri_container() {
    let id = "d1".repeat(32);
    let path = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
        POD_UID.replace('-', "_")
    );
    let c = parse_cgroup_path(&path).unwrap();
    let meta = fixture_resolver().resolve(&c).unwrap();
    let want = ContainerMeta {
        name: Some("web".into()),
        image: Some("docker.io/library/nginx:1.25".into()),
        pod: Some(web_pod()),
    };
    assert_eq!(meta, want);
}

#[test]
fn cri_sandbox_has_a_pod_but_no_container_name() {
    let id = "e2".repeat(32);
    let c = parse_cgroup_path(&format!("/kubepods/besteffort/pod{POD_UID}/{id}")).unwrap();
    let meta = fixture_resolver().resolve(&c).unwrap();
    assert_eq!((meta.name, meta.image), (None, None));
    assert_eq!(meta.pod, Some(web_pod()));
}

#[test]
fn kubepods_leaf_falls_back_to_docker() {
    // Same cgroup shape for cri-dockerd: containerd has no such task, Docker does.
    let id = "f3".repeat(32);
    let c = parse_cgroup_path(&format!("/kubepods/besteffort/pod{POD_UID}/{id}")).unwrap();
    assert_eq!(c.runtime, Runtime::Containerd);
    let meta = fixture_resolver().resolve(&c).unwrap();
    assert_eq!(meta.name.as_deref(), Some("web"));
    assert_eq!(meta.image.as_deref(), Some("nginx:1.25"));
}

#[test]
fn unknown_container_is_not_found_with_containerd_path() {
    let id = "b0".repeat(32);
    for c in [
        container(Runtime::Containerd, &id, None, Some(POD_UID)),
        container(Runtime::Containerd, &id, Some("default"), None),
    ] {
        match fixture_resolver().resolve(&c) {
            Err(MetadataError::NotFound { runtime, path, .. }) => {
                assert_eq!(runtime, Runtime::Containerd);
                let ns = c.namespace.as_deref().unwrap_or("k8s.io");
                assert!(
                    path.ends_with(format!(
                        "io.containerd.runtime.v2.task/{ns}/{id}/config.json"
                    )),
                    "{path:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn path_pod_uid_fills_a_pod_without_annotations() {
    // A ctr container is never under kubepods, but a CRI runtime without annotations might be.
    let c = container(Runtime::Containerd, "myid", Some("default"), Some(POD_UID));
    let meta = fixture_resolver().resolve(&c).unwrap();
    let want = PodMeta {
        uid: Some(POD_UID.into()),
        ..PodMeta::default()
    };
    assert_eq!(meta.pod, Some(want));
}
