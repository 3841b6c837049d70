#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use super::*;
use std::os::unix::fs::MetadataExt;

/// Trimmed from this build machine's `/proc/self/mountinfo` (hybrid: v1 controllers + v2).
const HYBRID: &str = "\
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// A Debian 12 systemd host (pure v2), with optional fields after the options.
const PURE_V2: &str = "\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
30 22 0:27 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:12 - bpf bpf rw,mode=700
";

/// A DaemonSet pod: its own cgroup namespace view first (root is not the hierarchy root), then the
/// host's hierarchy bind-mounted at /host/sys/fs/cgroup, with a space escaped in a path.
const DAEMONSET: &str = "\
1201 1190 0:24 /kubepods.slice/kubepods-pod1.slice /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
1210 1190 0:24 / /host/sys/fs\\040cgroup rw,relatime - cgroup2 cgroup2 rw
";

#[test]
fn finds_cgroup2_in_hybrid_and_pure_v2_layouts() {
    assert_eq!(
        find_cgroup2_mount(HYBRID),
        Some(PathBuf::from("/sys/fs/cgroup/unified"))
    );
    assert_eq!(
        find_cgroup2_mount(PURE_V2),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
    assert_eq!(
        find_cgroup2_mount(DAEMONSET),
        Some(PathBuf::from("/host/sys/fs cgroup"))
    );
    let only_nested = DAEMONSET.lines().next().unwrap();
    assert_eq!(
        find_cgroup2_mount(only_nested),
        Some(PathBuf::from("/sys/fs/cgroup"))
    );
}

#[test]
fn no_cgroup2_means_none() {
    let v1_only: String = HYBRID
        .lines()
        .filter(|l| !l.contains("cgroup2"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(find_cgroup2_mount(&v1_only), None);
    assert_eq!(find_cgroup2_mount(""), None);
    assert_eq!(
        find_cgroup2_mount("garbage without separator cgroup2\n - \n"),
        None
    );
}

#[test]
fn octal_escapes() {
    assert_eq!(unescape_octal("/a\\040b\\011c\\134d"), "/a b\tc\\d");
    assert_eq!(unescape_octal("/trailing\\04"), "/trailing\\04");
    assert_eq!(unescape_octal("/not\\999octal"), "/not\\999octal");
}

#[test]
fn scans_a_directory_tree_by_inode() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docker/abc")).unwrap();
    std::fs::create_dir_all(root.join("libpod_parent")).unwrap();
    std::fs::write(root.join("cgroup.procs"), "").unwrap();
    std::fs::write(root.join("docker/cgroup.procs"), "").unwrap();
    // A symlinked directory is not followed (cgroupfs has none).
    std::os::unix::fs::symlink(root.join("docker"), root.join("link")).unwrap();

    let ino = |rel: &str| {
        std::fs::metadata(root.join(rel.trim_start_matches('/')))
            .unwrap()
            .ino()
    };
    let mut got = scan_cgroups(root);
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let want: Vec<(u64, String)> = ["/", "/docker", "/docker/abc", "/libpod_parent"]
        .iter()
        .map(|p| (ino(p), (*p).to_owned()))
        .collect();
    assert_eq!(got, want);

    assert_eq!(
        find_cgroup_by_id(root, ino("/docker/abc")),
        Some("/docker/abc".to_owned())
    );
    assert_eq!(find_cgroup_by_id(root, ino("/")), Some("/".to_owned()));
    assert_eq!(find_cgroup_by_id(root, u64::MAX), None);
    assert!(scan_cgroups(&root.join("missing")).is_empty());
}
