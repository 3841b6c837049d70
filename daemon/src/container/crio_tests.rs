#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use crate::container::test_support::{copy_fixture, fixture_resolver, web_pod, POD_UID};
use crate::container::{
    parse_cgroup_path, ContainerMeta, MetadataError, MetadataResolver, Runtime, RuntimeRoots,
};

const RUN_SPEC: &str = "run/containers/storage/overlay-containers/c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0/userdata/config.json";

fn web_container() -> crate::container::CgroupContainer {
    let path = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{}.scope",
        POD_UID.replace('-', "_"),
        "c0".repeat(32)
    );
    parse_cgroup_path(&path).unwrap()
}

fn web_meta() -> ContainerMeta {
    ContainerMeta {
        name: Some("web".into()),
        image: Some("docker.io/library/nginx:1.25".into()),
        pod: Some(web_pod()),
    }
}

#[test]
fn container_from_run_root() {
    assert_eq!(
        fixture_resolver().resolve(&web_container()).unwrap(),
        web_meta()
    );
}

#[test]
fn falls_back_to_the_graph_root_copy() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(RUN_SPEC, dir.path());
    let roots = RuntimeRoots {
        crio_run: dir.path().join("nothing-here"),
        crio_storage: dir.path().join("run/containers/storage"),
        ..RuntimeRoots::with_prefix(dir.path())
    };
    assert_eq!(
        MetadataResolver::new(roots)
            .resolve(&web_container())
            .unwrap(),
        web_meta()
    );
}

#[test]
fn unknown_container_is_not_found() {
    let mut c = web_container();
    c.id = "b0".repeat(32);
    let err = fixture_resolver().resolve(&c).unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::NotFound {
                runtime: Runtime::CriO,
                ..
            }
        ),
        "{err}"
    );
}
