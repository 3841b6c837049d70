//! The bench container: one long-lived podman container from the integration tests' busybox
//! image, with the static load generator bind-mounted in; workloads run in it with `podman exec`
//! (their loops time themselves, so exec start-up is not measured).
//!
//! The image is the one `tests/src/image.rs` builds and imports (`localhost/sealwatch-test:1`).
//! If it is missing, it is built the same way here: a rootfs of Debian's busybox-static with an
//! applet symlink per `busybox --list`, `/etc/passwd` and `/etc/group` with root and nobody, empty
//! `/tmp` (1777), `/root`, `/proc`, `/sys`, `/dev`; tarred and `podman import`ed. Keep the two in
//! step (bump the tag in both when the contents change).

use std::os::unix::fs::{symlink, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use crate::cmd;

pub const IMAGE: &str = "localhost/sealwatch-test:1";
/// Where the generator appears inside the container (a read-only bind mount).
const LOADGEN_IN_CONTAINER: &str = "/sealwatch-bench/loadgen";
const BUSYBOX: &str = "/bin/busybox";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// A running container, removed when dropped.
pub struct BenchContainer {
    name: String,
}

impl BenchContainer {
    /// Imports the image if needed and starts `sleep` in a container (runc, pinned rlimits, no
    /// network: the flags the integration tests use here).
    pub fn start(loadgen: &Path, work_dir: &Path) -> Result<Self> {
        ensure_image(work_dir)?;
        remove_leftovers();
        let name = format!("sealwatch-bench-{}", std::process::id());
        let mount = format!("{}:{LOADGEN_IN_CONTAINER}:ro", loadgen.display());
        cmd::capture(Command::new("podman").args([
            "run",
            "-d",
            "--rm",
            "--runtime",
            "runc",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--network=none",
            "--name",
            &name,
            "-v",
            &mount,
            IMAGE,
            "sleep",
            "86400",
        ]))
        .context("starting the bench container")?;
        Ok(BenchContainer { name })
    }

    /// `podman exec NAME loadgen ARGS...`.
    pub fn loadgen(&self, args: &[String]) -> Command {
        let mut c = Command::new("podman");
        c.args(["exec", &self.name, LOADGEN_IN_CONTAINER])
            .args(args);
        c
    }
}

impl Drop for BenchContainer {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes bench containers of earlier runs that were interrupted (their xtask is gone).
fn remove_leftovers() {
    let names = cmd::probe(Command::new("podman").args([
        "ps",
        "-a",
        "--filter",
        "name=^sealwatch-bench-",
        "--format",
        "{{.Names}}",
    ]))
    .unwrap_or_default();
    for name in names.lines().map(str::trim) {
        let owner = name.strip_prefix("sealwatch-bench-").unwrap_or_default();
        if !owner.is_empty() && !Path::new("/proc").join(owner).exists() {
            println!("[bench] removing {name}, left over by an interrupted run");
            drop(BenchContainer {
                name: name.to_owned(),
            });
        }
    }
}

fn ensure_image(work_dir: &Path) -> Result<()> {
    if cmd::probe(Command::new("podman").args(["image", "exists", IMAGE])).is_some() {
        return Ok(());
    }
    println!("[bench] image {IMAGE} is missing: building it like tests/src/image.rs does");
    let tar = build_rootfs_tar(work_dir)?;
    cmd::capture(Command::new("podman").arg("import").arg(&tar).arg(IMAGE))
        .context("importing the test image into podman")?;
    Ok(())
}

fn build_rootfs_tar(work_dir: &Path) -> Result<PathBuf> {
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static (`cargo xtask setup`)");
    }
    let root = work_dir.join("rootfs");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    for sub in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(sub)).with_context(|| format!("creating /{sub}"))?;
    }
    set_mode(&root.join("tmp"), 0o1777)?;
    set_mode(&root.join("root"), 0o700)?;
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).context("copying busybox")?;
    set_mode(&root.join("bin/busybox"), 0o755)?;
    let applets = cmd::capture(Command::new(BUSYBOX).arg("--list"))?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", root.join("bin").join(applet))
            .with_context(|| format!("linking /bin/{applet}"))?;
    }
    std::fs::write(root.join("etc/passwd"), PASSWD).context("writing /etc/passwd")?;
    std::fs::write(root.join("etc/group"), GROUP).context("writing /etc/group")?;
    let tar = work_dir.join("rootfs.tar");
    cmd::capture(
        Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )
    .context("writing the rootfs tar")?;
    Ok(tar)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}
