#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use super::*;
use crate::container::test_support::container;

#[test]
fn default_roots_are_the_host_paths() {
    let d = RuntimeRoots::default();
    assert_eq!(d.podman_storage, Path::new("/var/lib/containers/storage"));
    assert_eq!(d.docker_data, Path::new("/var/lib/docker"));
    assert_eq!(d.containerd_run, Path::new("/run/containerd"));
    assert_eq!(d.crio_run, Path::new("/run/containers/storage"));
    assert_eq!(d.crio_storage, Path::new("/var/lib/containers/storage"));
}

#[test]
fn prefix_moves_every_root() {
    let p = RuntimeRoots::with_prefix(Path::new("/host"));
    assert_eq!(
        p.podman_storage,
        Path::new("/host/var/lib/containers/storage")
    );
    assert_eq!(p.docker_data, Path::new("/host/var/lib/docker"));
    assert_eq!(p.containerd_run, Path::new("/host/run/containerd"));
    assert_eq!(p.crio_run, Path::new("/host/run/containers/storage"));
    assert_eq!(
        p.crio_storage,
        Path::new("/host/var/lib/containers/storage")
    );
    assert_eq!(
        RuntimeRoots::with_prefix(Path::new("/")),
        RuntimeRoots::default()
    );
}

#[test]
fn not_found_names_what_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let resolver = MetadataResolver::new(RuntimeRoots::with_prefix(dir.path()));
    let id = "ab".repeat(32);
    for rt in [
        Runtime::Podman,
        Runtime::Docker,
        Runtime::Containerd,
        Runtime::CriO,
    ] {
        let err = resolver
            .resolve(&container(rt, &id, None, None))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, MetadataError::NotFound { runtime, .. } if runtime == rt),
            "{text}"
        );
        assert!(text.contains(&id) && text.contains(rt.as_str()), "{text}");
    }
}

#[test]
fn unreadable_path_is_an_io_error() {
    // A directory where a file is expected: open succeeds, read fails with EISDIR.
    let dir = tempfile::tempdir().unwrap();
    let id = "ab".repeat(32);
    std::fs::create_dir_all(
        dir.path()
            .join(format!("var/lib/docker/containers/{id}/config.v2.json")),
    )
    .unwrap();
    let resolver = MetadataResolver::new(RuntimeRoots::with_prefix(dir.path()));
    let err = resolver
        .resolve(&container(Runtime::Docker, &id, None, None))
        .unwrap_err();
    assert!(matches!(err, MetadataError::Io { .. }), "{err}");
}
