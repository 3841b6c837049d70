#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use super::*;

/// Real ids seen on the build machine (podman, Docker) and made-up ones for the rest.
const PODMAN_ID: &str = "f231369ad4c85c7c51eb0a7eb9779a4a7c141c76c939d25f31fe27c27408e89c";
const DOCKER_ID: &str = "1a708eaff6d30331090fe389717687d869396be66d483fffbba08128452dca01";
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const POD_UID: &str = "5f3d3c1e-8a2b-4c6d-9e0f-1a2b3c4d5e6f";
const POD_UID_SYSTEMD: &str = "5f3d3c1e_8a2b_4c6d_9e0f_1a2b3c4d5e6f";

fn expect(path: &str, runtime: Runtime, id: &str, ns: Option<&str>, pod: Option<&str>) {
    let got = parse_cgroup_path(path).unwrap_or_else(|| panic!("no container in {path}"));
    let want = CgroupContainer {
        runtime,
        id: id.to_owned(),
        namespace: ns.map(str::to_owned),
        pod_uid: pod.map(str::to_owned),
    };
    assert_eq!(got, want, "{path}");
}

fn none(path: &str) {
    assert_eq!(parse_cgroup_path(path), None, "{path}");
}

#[test]
fn podman() {
    // Seen on this machine (cgroupfs manager).
    expect(
        &format!("/libpod_parent/libpod-{PODMAN_ID}"),
        Runtime::Podman,
        PODMAN_ID,
        None,
        None,
    );
    // systemd manager, rootful and rootless.
    expect(
        &format!("/machine.slice/libpod-{ID}.scope"),
        Runtime::Podman,
        ID,
        None,
        None,
    );
    expect(
        &format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
        Runtime::Podman,
        ID,
        None,
        None,
    );
    // Sub-cgroups (systemd inside the container, podman's `container` leaf) are the same container.
    expect(
        &format!("/libpod_parent/libpod-{ID}/container"),
        Runtime::Podman,
        ID,
        None,
        None,
    );
    expect(
        &format!("/machine.slice/libpod-{ID}.scope/container/init.scope"),
        Runtime::Podman,
        ID,
        None,
        None,
    );
    // Container in a podman pod (cgroupfs): the pod's own cgroup is not a container.
    expect(
        &format!("/libpod_parent/{DOCKER_ID}/libpod-{ID}"),
        Runtime::Podman,
        ID,
        None,
        None,
    );
    none(&format!("/libpod_parent/{DOCKER_ID}"));
}

#[test]
fn conmon_is_not_the_container() {
    none(&format!("/machine.slice/libpod-conmon-{ID}.scope"));
    none(&format!("/libpod_parent/libpod-conmon-{ID}"));
    none("/libpod_parent/conmon");
    none("/libpod_parent");
    none(&format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/crio-conmon-{ID}.scope"));
}

#[test]
fn docker() {
    expect(
        &format!("/docker/{DOCKER_ID}"),
        Runtime::Docker,
        DOCKER_ID,
        None,
        None,
    );
    expect(
        &format!("/system.slice/docker-{ID}.scope"),
        Runtime::Docker,
        ID,
        None,
        None,
    );
    expect(
        &format!("/docker/{ID}/init.scope"),
        Runtime::Docker,
        ID,
        None,
        None,
    );
    // Docker-in-Docker: the outer container is the one the host has metadata for.
    expect(
        &format!("/docker/{DOCKER_ID}/docker/{ID}"),
        Runtime::Docker,
        DOCKER_ID,
        None,
        None,
    );
    // dockerd's parent cgroup, made by runc with the first container.
    none("/docker");
    none("/system.slice/docker.service");
}

#[test]
fn containerd_ctr() {
    // Seen on this machine: `ctr -n default run … myid` and a 64-hex id.
    expect(
        "/default/myid",
        Runtime::Containerd,
        "myid",
        Some("default"),
        None,
    );
    expect(
        &format!("/default/{ID}"),
        Runtime::Containerd,
        ID,
        Some("default"),
        None,
    );
    expect(
        &format!("/default/{ID}/sub"),
        Runtime::Containerd,
        ID,
        Some("default"),
        None,
    );
    expect(
        "/k8s.io/web_1.v2-x",
        Runtime::Containerd,
        "web_1.v2-x",
        Some("k8s.io"),
        None,
    );
    // The namespace's own cgroup, made with the first container.
    none("/default");
    // Non-hex ids only as exactly two components.
    none("/default/myid/sub");
    // Not a containerd id.
    none("/default/-x");
    none("/default/.hidden");
    // Unlisted namespaces need configuration, even with a hex leaf.
    none("/custom/myid");
    none(&format!("/custom/{ID}"));
    let nss = ["custom"];
    assert_eq!(
        parse_cgroup_path_with("/custom/myid", &nss),
        Some(CgroupContainer {
            runtime: Runtime::Containerd,
            id: "myid".into(),
            namespace: Some("custom".into()),
            pod_uid: None
        })
    );
    assert_eq!(parse_cgroup_path_with("/default/myid", &nss), None);
}

#[test]
fn containerd_cri_and_kubepods_systemd() {
    let path = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"
    );
    expect(&path, Runtime::Containerd, ID, None, Some(POD_UID));
    let guaranteed =
        format!("/kubepods.slice/kubepods-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope");
    expect(&guaranteed, Runtime::Containerd, ID, None, Some(POD_UID));
    expect(
        &format!("/system.slice/cri-containerd-{ID}.scope"),
        Runtime::Containerd,
        ID,
        None,
        None,
    );
    // kubelet with --cgroup-root=/kubelet.
    let rooted = format!(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{ID}.scope"
    );
    expect(&rooted, Runtime::Containerd, ID, None, Some(POD_UID));
    let docker = format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/docker-{ID}.scope");
    expect(&docker, Runtime::Docker, ID, None, Some(POD_UID));
    // Pod and QoS slices are not containers.
    none(&format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID_SYSTEMD}.slice"
    ));
    none("/kubepods.slice/kubepods-burstable.slice");
}

#[test]
fn kubepods_cgroupfs() {
    expect(
        &format!("/kubepods/besteffort/pod{POD_UID}/{ID}"),
        Runtime::Containerd,
        ID,
        None,
        Some(POD_UID),
    );
    expect(
        &format!("/kubepods/pod{POD_UID}/{ID}"),
        Runtime::Containerd,
        ID,
        None,
        Some(POD_UID),
    );
    expect(
        &format!("/kubepods/burstable/pod{POD_UID}/crio-{ID}"),
        Runtime::CriO,
        ID,
        None,
        Some(POD_UID),
    );
    // Static pods: uid is a 32-hex config hash.
    let hash = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    expect(
        &format!("/kubepods/pod{hash}/{ID}"),
        Runtime::Containerd,
        ID,
        None,
        Some(hash),
    );
    none(&format!("/kubepods/besteffort/pod{POD_UID}"));
    none("/kubepods/besteffort");
    // A bare hex leaf outside kubepods and docker says nothing about the runtime.
    none(&format!("/somewhere/pod{POD_UID}/{ID}"));
}

#[test]
fn crio() {
    let path = format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/crio-{ID}.scope");
    expect(&path, Runtime::CriO, ID, None, Some(POD_UID));
    expect(
        &format!("/machine.slice/crio-{ID}.scope"),
        Runtime::CriO,
        ID,
        None,
        None,
    );
    expect(
        &format!("/machine.slice/crio-{ID}.scope/container"),
        Runtime::CriO,
        ID,
        None,
        None,
    );
}

#[test]
fn host_paths_and_malformed_ids() {
    for path in [
        "/",
        "",
        "/system.slice/ssh.service",
        "/system.slice/containerd.service",
        "/user.slice/user-1000.slice/session-3.scope",
        "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service",
        "/init.scope",
        "system.slice/docker-0123.scope",
    ] {
        none(path);
    }
    let truncated = &ID[..63];
    let long = format!("{ID}0");
    let upper = ID.to_uppercase();
    for id in [truncated, long.as_str(), upper.as_str(), ""] {
        none(&format!("/docker/{id}"));
        none(&format!("/system.slice/docker-{id}.scope"));
        none(&format!("/machine.slice/libpod-{id}.scope"));
        none(&format!("/machine.slice/crio-{id}.scope"));
        none(&format!("/kubepods/besteffort/pod{POD_UID}/{id}"));
    }
    // Relative paths and empty components are not what the kernel reports.
    none(&format!("docker/{ID}"));
    none(&format!("/docker//{ID}"));
    // A trailing slash is tolerated.
    expect(&format!("/docker/{ID}/"), Runtime::Docker, ID, None, None);
}
