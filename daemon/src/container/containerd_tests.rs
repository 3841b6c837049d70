#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{run_bounded, socket_candidates, CtrError, CtrInfo};
use crate::container::test_support::{container, fixture_resolver, web_pod, POD_UID};
use crate::container::{
    parse_cgroup_path, ContainerMeta, MetadataError, PodMeta, Runtime, RuntimeRoots,
};

/// `ctr -n default containers info swfix2` (containerd 1.6.20) of
/// `ctr -n default run -d docker.io/library/sealwatch-test:1 swfix2 sleep 300`; `Spec` trimmed.
const CTR_INFO_PLAIN: &str = r#"{
    "ID": "swfix2",
    "Labels": {
        "io.containerd.image.config.stop-signal": "SIGTERM"
    },
    "Image": "docker.io/library/sealwatch-test:1",
    "Runtime": {
        "Name": "io.containerd.runc.v2",
        "Options": {
            "type_url": "containerd.runc.v1.Options"
        }
    },
    "SnapshotKey": "swfix2",
    "Snapshotter": "overlayfs",
    "CreatedAt": "2026-11-22T14:18:01.045307664Z",
    "UpdatedAt": "2026-11-22T14:18:01.045307664Z",
    "Extensions": null,
    "Spec": {
        "ociVersion": "1.0.2-dev",
        "process": {
            "args": [
                "sleep",
                "300"
            ],
            "cwd": "/"
        },
        "linux": {
            "cgroupsPath": "/default/swfix2"
        }
    }
}
"#;

/// The same with `--label nerdctl/name=nname` (as nerdctl labels its containers); `Spec` dropped.
const CTR_INFO_NERDCTL: &str = r#"{
    "ID": "swfix1",
    "Labels": {
        "io.containerd.image.config.stop-signal": "SIGTERM",
        "nerdctl/name": "nname"
    },
    "Image": "docker.io/library/sealwatch-test:1",
    "Runtime": {
        "Name": "io.containerd.runc.v2",
        "Options": {
            "type_url": "containerd.runc.v1.Options"
        }
    },
    "SnapshotKey": "swfix1",
    "Snapshotter": "overlayfs",
    "CreatedAt": "2026-11-22T14:17:57.905836736Z",
    "UpdatedAt": "2026-11-22T14:17:57.905836736Z",
    "Extensions": null
}
"#;

#[test]
fn ctr_info_of_a_plain_ctr_container_gives_the_image_only() {
    let info = CtrInfo::parse(CTR_INFO_PLAIN.as_bytes()).unwrap();
    assert_eq!(
        info.image().as_deref(),
        Some("docker.io/library/sealwatch-test:1")
    );
    assert_eq!(info.name(), None);
}

#[test]
fn ctr_info_name_comes_from_labels() {
    let info = CtrInfo::parse(CTR_INFO_NERDCTL.as_bytes()).unwrap();
    assert_eq!(info.name().as_deref(), Some("nname"));
    // The CRI label wins over nerdctl's.
    let both = r#"{"Image": "i", "Labels": {
        "nerdctl/name": "nname", "io.kubernetes.cri.container-name": "web"}}"#;
    let info = CtrInfo::parse(both.as_bytes()).unwrap();
    assert_eq!(info.name().as_deref(), Some("web"));
}

#[test]
fn ctr_info_empty_null_and_missing_fields_are_none() {
    for json in [
        r#"{"ID": "x", "Image": "", "Labels": {"nerdctl/name": ""}}"#,
        r#"{"ID": "x", "Image": null, "Labels": null}"#,
        r#"{"ID": "x"}"#,
    ] {
        let info = CtrInfo::parse(json.as_bytes()).unwrap();
        assert_eq!((info.image(), info.name()), (None, None), "{json}");
    }
    assert!(CtrInfo::parse(b"ctr: container \"x\" not found").is_err());
    assert!(CtrInfo::parse(br#"{"Image": 3}"#).is_err());
}

#[test]
fn sockets_are_the_containerd_run_one_then_dockers() {
    let roots = RuntimeRoots::with_prefix(Path::new("/host"));
    assert_eq!(
        socket_candidates(&roots),
        [
            Path::new("/host/run/containerd/containerd.sock").to_owned(),
            Path::new("/host/run/docker/containerd/containerd.sock").to_owned(),
        ]
    );
}

#[test]
fn bounded_run_captures_output_and_status() {
    let out = run_bounded(
        Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        (&out.stdout[..], &out.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..])
    );
}

#[test]
fn bounded_run_kills_on_timeout_and_reports_a_missing_program() {
    let start = Instant::now();
    let err = run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(100))
        .err()
        .unwrap();
    assert!(matches!(err, CtrError::TimedOut(_)), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let err = run_bounded(
        &mut Command::new("sealwatch-no-such-program"),
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(matches!(err, CtrError::NotInstalled), "{err}");
}

#[test]
fn ctr_container_has_its_id_as_name_and_no_image() {
    // `ctr -n default run -d docker.io/library/bb:1 myid sleep 1000`: cgroup `/default/myid`.
    // No containerd socket under the fixture host, so nothing tells the image.
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
