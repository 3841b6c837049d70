//! The test image: a tiny rootfs made of Debian's static busybox, imported into every runtime.
//!
//! Contents: `/bin/busybox` plus a symlink `/bin/<applet>` -> `busybox` for every applet of
//! `busybox --list` (so `/bin/id` is a symlink whose exe is `/bin/busybox`), `/etc/passwd` and
//! `/etc/group` with `root` and `nobody` (65534), the image files [`FIXTURE_FILES`] (0644, for the
//! immutability tests to modify), the static [`EXEC_HELPER`] built from
//! `tests/helpers/memfd_exec.c` (runs a memfd or a deleted binary, for the drift tests), the
//! static [`NET_PROBE`], [`OPEN_PROBE`] and [`URING_PROBE`] (network and open syscalls busybox
//! does not make, and the same through io_uring), the
//! host's dynamically linked [`PERL`] with its dynamic loader and libraries at the host's paths
//! (an interpreter other than the shell, and a loader an attacker can start a dropped program
//! through), and empty `/tmp` (1777), `/root`, `/proc`, `/sys`, `/dev`. The rootfs tar is built once per test
//! process; imports are skipped when the image already exists (bump [`TAG`] when the contents
//! change).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use crate::cmd;
use crate::services;

/// Image tag; bump it when the rootfs changes so stale imports are not reused.
pub const TAG: &str = "10";
/// The image as podman names it (and reports it).
pub const PODMAN_IMAGE: &str = "localhost/sealwatch-test:10";
/// The image as Docker names it (and reports it).
pub const DOCKER_IMAGE: &str = "sealwatch-test:10";
/// The image as containerd names it after `docker save` | `ctr images import`.
pub const CONTAINERD_IMAGE: &str = "docker.io/library/sealwatch-test:10";
/// Regular files of the image (content [`FIXTURE_CONTENT`], mode 0644) that tests may modify.
/// None of them is a runtime bind mount (unlike `/etc/hosts`, `/etc/hostname`,
/// `/etc/resolv.conf`), so they stay on the container's overlay.
pub const FIXTURE_FILES: &[&str] = &[
    "/etc/sw-image/a.conf",
    "/etc/sw-image/b.conf",
    "/etc/sw-image/c.conf",
    "/etc/sw-image/d.conf",
    "/etc/sw-image/e.conf",
];
/// The content of every [`FIXTURE_FILES`] entry.
pub const FIXTURE_CONTENT: &str = "sealwatch image fixture\n";
/// The drift helper in the image: `sw-exec-helper memfd` execs a memfd copy of busybox as `true`;
/// `sw-exec-helper deleted PATH` copies busybox to PATH, opens it, unlinks it and execs the fd.
pub const EXEC_HELPER: &str = "/bin/sw-exec-helper";
/// Its source, relative to the repository root.
pub const EXEC_HELPER_SOURCE: &str = "tests/helpers/memfd_exec.c";

/// The network probe in the image (busybox nc has no UDP mode): `sw-net-probe udp ADDR PORT`,
/// `udp-connect ADDR PORT`, `tcp ADDR PORT`, `udp-bind PORT`; prints `ok` or `error: <reason>`.
pub const NET_PROBE: &str = "/bin/sw-net-probe";
pub const NET_PROBE_SOURCE: &str = "tests/helpers/net_probe.c";
/// The open probe in the image: `sw-open-probe open|openat|openat2 PATH FLAGS MODE` and
/// `sw-open-probe creat PATH MODE` (octal) open through that very syscall; prints `ok` or
/// `error: <reason>`. `sw-open-probe openat2-race PATH N` makes N openat2 calls while a second
/// thread flips their flags between write and read-only; prints `writes W`.
pub const OPEN_PROBE: &str = "/bin/sw-open-probe";
pub const OPEN_PROBE_SOURCE: &str = "tests/helpers/open_probe.c";
/// The io_uring probe in the image: `sw-uring-probe append PATH TEXT`, `unlink PATH`,
/// `rename OLD NEW`, `link OLD NEW`, `connect ADDR PORT`, each submitted through io_uring
/// (no syscall of its kind); prints `ok` or `error: <reason>`.
pub const URING_PROBE: &str = "/bin/sw-uring-probe";
pub const URING_PROBE_SOURCE: &str = "tests/helpers/uring_probe.c";

/// The host's perl, copied into the image with the libraries and the dynamic loader `ldd` names.
pub const PERL: &str = "/usr/bin/perl";

/// The containerd namespace the `ctr` tests use (Docker's own containers are in `moby`).
pub const CONTAINERD_NAMESPACE: &str = "default";
/// The containerd namespace a kubelet's containers live in (CRI).
pub const CONTAINERD_CRI_NAMESPACE: &str = "k8s.io";

const BUSYBOX: &str = "/bin/busybox";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// The rootfs tar (`<target>/sealwatch-tests/rootfs.tar`), built on first call in this process.
pub fn rootfs_tar() -> Result<&'static Path> {
    static TAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TAR.get_or_init(|| build_rootfs_tar().map_err(|e| format!("{e:#}")))
        .as_deref()
        .map_err(|e| anyhow!("building the test rootfs: {e}"))
}

/// Imports the image into podman as [`PODMAN_IMAGE`] unless it is there already.
pub fn ensure_podman() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    once(&DONE, || {
        if cmd::succeeds(
            "podman",
            &["image", "exists", PODMAN_IMAGE],
            cmd::DEFAULT_TIMEOUT,
        ) {
            return Ok(());
        }
        let tar = rootfs_tar()?;
        cmd::ok(
            "podman",
            &["import".as_ref(), tar.as_os_str(), PODMAN_IMAGE.as_ref()],
        )
        .context("importing the test image into podman")?;
        Ok(())
    })
}

/// Imports the image into Docker as [`DOCKER_IMAGE`] unless it is there already (starts dockerd).
pub fn ensure_docker() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    once(&DONE, || {
        services::ensure_dockerd()?;
        if docker_has_image() {
            return Ok(());
        }
        let tar = rootfs_tar()?;
        cmd::ok(
            "docker",
            &["import".as_ref(), tar.as_os_str(), DOCKER_IMAGE.as_ref()],
        )
        .context("importing the test image into Docker")?;
        Ok(())
    })
}

/// Imports the image into containerd (namespace [`CONTAINERD_NAMESPACE`]) as [`CONTAINERD_IMAGE`]
/// unless it is there already: `docker save` then `ctr images import`.
pub fn ensure_containerd() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    once(&DONE, || import_into_containerd(CONTAINERD_NAMESPACE))
}

/// [`ensure_containerd`] for namespace [`CONTAINERD_CRI_NAMESPACE`], where a kubelet's
/// containers live (images are per namespace).
pub fn ensure_containerd_cri() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    once(&DONE, || import_into_containerd(CONTAINERD_CRI_NAMESPACE))
}

fn import_into_containerd(namespace: &str) -> Result<()> {
    services::ensure_containerd()?;
    if containerd_images(namespace)?
        .iter()
        .any(|name| name == CONTAINERD_IMAGE)
    {
        return Ok(());
    }
    ensure_docker()?;
    let saved = crate::artifacts_dir()?.join("sealwatch-test.docker.tar");
    cmd::ok(
        "docker",
        &[
            "save".as_ref(),
            "-o".as_ref(),
            saved.as_os_str(),
            DOCKER_IMAGE.as_ref(),
        ],
    )
    .context("saving the Docker test image for containerd")?;
    let saved = saved.to_str().context("artifact path is not UTF-8")?;
    cmd::ok("ctr", &ctr_args_in(namespace, &["images", "import", saved])).with_context(|| {
        format!("importing the test image into containerd namespace {namespace}")
    })?;
    let names = containerd_images(namespace)?;
    if !names.iter().any(|name| name == CONTAINERD_IMAGE) {
        bail!("after `ctr images import` containerd namespace {namespace} has {names:?}, not {CONTAINERD_IMAGE}");
    }
    Ok(())
}

/// `ctr --address <socket> -n <namespace>` followed by `args`, in [`CONTAINERD_NAMESPACE`].
pub fn ctr_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    ctr_args_in(CONTAINERD_NAMESPACE, args)
}

/// `ctr --address <socket> -n <namespace>` followed by `args`.
pub fn ctr_args_in<'a>(namespace: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "--address",
        services::CONTAINERD_SOCKET,
        "--namespace",
        namespace,
    ];
    all.extend_from_slice(args);
    all
}

fn docker_has_image() -> bool {
    cmd::succeeds(
        "docker",
        &["image", "inspect", DOCKER_IMAGE],
        cmd::DEFAULT_TIMEOUT,
    )
}

fn containerd_images(namespace: &str) -> Result<Vec<String>> {
    let out = cmd::ok("ctr", &ctr_args_in(namespace, &["images", "ls", "-q"]))
        .context("listing containerd images")?;
    Ok(out.lines().map(str::to_owned).collect())
}

fn once(cell: &'static OnceLock<Result<(), String>>, f: impl FnOnce() -> Result<()>) -> Result<()> {
    crate::require_root()?;
    cell.get_or_init(|| f().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn build_rootfs_tar() -> Result<PathBuf> {
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static");
    }
    let dir = crate::artifacts_dir()?;
    let staging = tempfile::Builder::new()
        .prefix("rootfs-")
        .tempdir_in(&dir)
        .context("creating a staging directory for the rootfs")?;
    let root = staging.path();
    for sub in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir(root.join(sub)).with_context(|| format!("creating /{sub}"))?;
    }
    set_mode(&root.join("tmp"), 0o1777)?;
    set_mode(&root.join("root"), 0o700)?;
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).context("copying busybox")?;
    set_mode(&root.join("bin/busybox"), 0o755)?;
    let applets = cmd::ok(BUSYBOX, &["--list"]).context("listing busybox applets")?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", root.join("bin").join(applet))
            .with_context(|| format!("linking /bin/{applet}"))?;
    }
    std::fs::write(root.join("etc/passwd"), PASSWD).context("writing /etc/passwd")?;
    std::fs::write(root.join("etc/group"), GROUP).context("writing /etc/group")?;
    for file in FIXTURE_FILES {
        let path = root.join(file.trim_start_matches('/'));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, FIXTURE_CONTENT).with_context(|| format!("writing {file}"))?;
        set_mode(&path, 0o644)?;
    }
    let helper = root.join(EXEC_HELPER.trim_start_matches('/'));
    std::fs::copy(exec_helper()?, &helper).with_context(|| format!("copying {EXEC_HELPER}"))?;
    set_mode(&helper, 0o755)?;
    let probe = root.join(NET_PROBE.trim_start_matches('/'));
    std::fs::copy(net_probe()?, &probe).with_context(|| format!("copying {NET_PROBE}"))?;
    set_mode(&probe, 0o755)?;
    let opener = root.join(OPEN_PROBE.trim_start_matches('/'));
    std::fs::copy(open_probe()?, &opener).with_context(|| format!("copying {OPEN_PROBE}"))?;
    set_mode(&opener, 0o755)?;
    let uring = root.join(URING_PROBE.trim_start_matches('/'));
    std::fs::copy(uring_probe()?, &uring).with_context(|| format!("copying {URING_PROBE}"))?;
    set_mode(&uring, 0o755)?;
    copy_dynamic(root, PERL)?;

    // Written under a process-unique name, then renamed: test binaries may build it concurrently.
    let tar = dir.join("rootfs.tar");
    let partial = dir.join(format!("rootfs.tar.{}", std::process::id()));
    let root_str = root.to_str().context("staging path is not UTF-8")?;
    let partial_str = partial.to_str().context("artifact path is not UTF-8")?;
    cmd::ok(
        "tar",
        &[
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-C",
            root_str,
            "-cf",
            partial_str,
            ".",
        ],
    )
    .context("writing the rootfs tar")?;
    std::fs::rename(&partial, &tar).with_context(|| format!("renaming to {}", tar.display()))?;
    Ok(tar)
}

/// A static helper compiled once per test process (see [`build_static`]).
type Built = OnceLock<Result<PathBuf, String>>;

/// [`EXEC_HELPER_SOURCE`] compiled with `gcc -static -O2` into the artifacts dir, once per test
/// process (under a process-unique name: test binaries may build it concurrently).
pub fn exec_helper() -> Result<&'static Path> {
    static BIN: Built = OnceLock::new();
    built_once(
        &BIN,
        EXEC_HELPER_SOURCE,
        "sw-exec-helper",
        "the drift helper",
    )
}

/// [`NET_PROBE_SOURCE`] compiled like [`exec_helper`].
pub fn net_probe() -> Result<&'static Path> {
    static BIN: Built = OnceLock::new();
    built_once(&BIN, NET_PROBE_SOURCE, "sw-net-probe", "the network probe")
}

/// [`OPEN_PROBE_SOURCE`] compiled like [`exec_helper`].
pub fn open_probe() -> Result<&'static Path> {
    static BIN: Built = OnceLock::new();
    built_once(&BIN, OPEN_PROBE_SOURCE, "sw-open-probe", "the open probe")
}

/// [`URING_PROBE_SOURCE`] compiled like [`exec_helper`].
pub fn uring_probe() -> Result<&'static Path> {
    static BIN: Built = OnceLock::new();
    built_once(
        &BIN,
        URING_PROBE_SOURCE,
        "sw-uring-probe",
        "the io_uring probe",
    )
}

/// `source` built into `cell` on first call; `what` names it in the error.
fn built_once(cell: &'static Built, source: &str, name: &str, what: &str) -> Result<&'static Path> {
    cell.get_or_init(|| build_static(source, name).map_err(|e| format!("{e:#}")))
        .as_deref()
        .map_err(|e| anyhow!("building {what}: {e}"))
}

fn build_static(source: &str, name: &str) -> Result<PathBuf> {
    let source = crate::repo_root().join(source);
    let out = crate::artifacts_dir()?.join(format!("{name}.{}", std::process::id()));
    let source = source.to_str().context("source path is not UTF-8")?;
    let out_str = out.to_str().context("artifact path is not UTF-8")?;
    cmd::ok(
        "gcc",
        &[
            "-static", "-O2", "-pthread", "-Wall", "-Wextra", "-o", out_str, source,
        ],
    )
    .with_context(|| format!("compiling {name} (needs gcc and the static libc, libc6-dev)"))?;
    Ok(out)
}

/// Copies the dynamically linked `program` and every file `ldd` says it loads (its dynamic
/// loader included) into `root` at the same paths, as regular files.
fn copy_dynamic(root: &Path, program: &str) -> Result<()> {
    let listing = cmd::ok("ldd", &[program]).with_context(|| format!("ldd {program}"))?;
    // Lines: `libc.so.6 => /lib/.../libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2 (0x...)`.
    let loaded = listing.lines().filter_map(|line| {
        let path = line.split("=>").last()?.split_whitespace().next()?;
        path.starts_with('/').then(|| path.to_owned())
    });
    for path in std::iter::once(program.to_owned()).chain(loaded) {
        let target = root.join(path.trim_start_matches('/'));
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::copy(&path, &target).with_context(|| format!("copying {path}"))?;
        set_mode(&target, 0o755)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}
