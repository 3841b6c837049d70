//! The attacker: root inside an ordinary podman or Docker container, with only the tools of the
//! busybox test image, who knows how sealwatch works and tries to change image files and run
//! code that is not in the image without a violation line. Each evasion is played for real next
//! to its control (the same change done plainly), and each test first checks that the attack
//! really happened (the file changed, the program ran) before it asks for the line.
//!
//! Covered here (issue "An attacker inside a container cannot switch sealwatch off"):
//! - a `chroot` to a directory that is not on overlayfs does not leave the container: writes to
//!   image files, removals by path, dropped programs run and connects made from there are
//!   judged like any other;
//! - the file the kernel touched is judged, not the text of its path: a directory the container
//!   made a symlink, `/proc/self/root/...`, `..` against the working directory, a symlink as
//!   the last component of a chmod;
//! - origins are never stale: a script that failed to run, then is written, made executable and
//!   run, is `new-executable` and `drift-exec`;
//! - nothing is absorbed silently: an identical violation held back in the repeat window is
//!   reported when the window closes, with its count.

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use sealwatch_tests::daemon::Daemon;
use sealwatch_tests::events::{check_fields, container_id, violation_rule, wait_in_container};
use sealwatch_tests::image::FIXTURE_FILES;
use sealwatch_tests::net_workload::{at, nc, net_for, run, strings, PEER_TIMEOUT, PORT_OK};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::unique_name;

const IMAGE_RULE: &str = "image-file-modified";
const NEW_EXE_RULE: &str = "new-executable";
const DRIFT_RULE: &str = "drift-exec";
const BUSYBOX: &str = "/bin/busybox";
/// The daemon's repeat window for identical file violations (`violation.repeats`).
const REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// The daemon and, after it, a long-running container of `rt` from the test image.
fn daemon_and_container(rt: Runtime) -> Result<(Daemon, Container)> {
    sealwatch_tests::attack::daemon_and_container(rt, "sw-attack", &RunOptions::default())
}

/// `sh -c <script>` inside `c` (exit 0 required); returns its stdout.
fn sh(c: &Container, script: &str) -> Result<String> {
    c.exec(&["sh", "-c", script])
}

/// Waits for a line of `c` breaking `rule` that also satisfies `matches`.
fn wait_violation(
    daemon: &mut Daemon,
    c: &Container,
    rule: &str,
    what: &str,
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in_container(
        daemon,
        c,
        &format!("{rule} for {what} in container {}", c.name),
        |_| true,
        |ev| violation_rule(ev) == Some(rule) && matches(ev),
    )
}

/// An `image-file-modified` line of `c` about an image (lower-layer) file.
fn check_image_violation(ev: &Value, c: &Container) -> Result<()> {
    check_fields(
        ev,
        &[
            ("/container/id", json!(c.id)),
            ("/file/layer", json!("lower")),
            ("/violation/severity", json!("critical")),
        ],
    )
}

fn is_file(ev: &Value, path: &str, op: &str) -> bool {
    ev["kind"] == "file" && ev["file"]["path"] == path && ev["file"]["op"] == op
}

// ---- 1. chroot does not leave the container -----------------------------------------------

/// From a `chroot` to the container's `/proc` (procfs, not overlayfs), the container's root is
/// still reachable as `/1/root` (its pid 1's root). An append to an image file and a dropped
/// copy of busybox run from there are judged like the plain ones (the control, first).
fn chroot_to_proc_is_still_the_container(rt: Runtime) -> Result<()> {
    let (mut daemon, c) = daemon_and_container(rt)?;
    let [plain_file, chrooted_file] = [FIXTURE_FILES[0], FIXTURE_FILES[1]];
    let marker = unique_name("sw-attack-chroot");

    // Control: the plain append.
    sh(&c, &format!("echo {marker} >> {plain_file}"))?;
    wait_violation(&mut daemon, &c, IMAGE_RULE, plain_file, |ev| {
        is_file(ev, plain_file, "open_write")
    })?;

    // The attack: the same through a chroot whose root is procfs.
    let script = format!("echo {marker} >> /1/root{chrooted_file}");
    c.exec(&[
        "chroot",
        "/proc",
        "/1/root/bin/busybox",
        "sh",
        "-c",
        &script,
    ])?;
    ensure!(
        c.exec(&["cat", chrooted_file])?.contains(&marker),
        "the chrooted append did not happen"
    );
    let ev = wait_violation(&mut daemon, &c, IMAGE_RULE, chrooted_file, |ev| {
        ev["kind"] == "file"
            && ev["file"]["op"] == "open_write"
            && ev["file"]["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(chrooted_file))
    })?;
    check_image_violation(&ev, &c)?;

    // A path-based change from inside the chroot: its absolute name starts at the chroot.
    let removed = FIXTURE_FILES[2];
    c.exec(&[
        "chroot",
        "/proc",
        "/1/root/bin/busybox",
        "rm",
        &format!("/1/root{removed}"),
    ])?;
    ensure!(
        sh(&c, &format!("test -e {removed} || echo gone"))?.trim() == "gone",
        "the chrooted rm did not happen"
    );
    let ev = wait_violation(&mut daemon, &c, IMAGE_RULE, removed, |ev| {
        is_file(ev, removed, "unlink")
    })?;
    check_image_violation(&ev, &c)?;

    // A dropped binary run from inside the chroot.
    // busybox runs the applet named by argv[0], or by argv[1] when argv[0] starts with "busybox".
    let copy = format!("/tmp/{}", unique_name("busybox-sw-attack"));
    c.exec(&["cp", BUSYBOX, &copy])?;
    let ran = c.exec(&[
        "chroot",
        "/proc",
        &format!("/1/root{copy}"),
        "echo",
        &marker,
    ])?;
    ensure!(
        ran.trim() == marker,
        "the dropped binary did not run: {ran}"
    );
    let ev = wait_violation(&mut daemon, &c, DRIFT_RULE, &copy, |ev| {
        ev["kind"] == "exec"
            && ev["process"]["args"][1] == "echo"
            && ev["process"]["args"][2] == marker
    })?;
    check_fields(
        &ev,
        &[
            ("/container/id", json!(c.id)),
            ("/process/exe_layer", json!("upper")),
        ],
    )?;
    daemon.stop()?;
    Ok(())
}

#[test]
fn podman_chroot_to_proc_is_still_the_container() -> Result<()> {
    chroot_to_proc_is_still_the_container(Runtime::Podman)
}

#[test]
fn docker_chroot_to_proc_is_still_the_container() -> Result<()> {
    chroot_to_proc_is_still_the_container(Runtime::Docker)
}

/// A connect made from inside a chroot to the container's `/proc` is the container's `connect`
/// line, like the plain `nc` before it (the control): the kernel knows the container by its
/// cgroup, wherever the process's root is.
#[test]
fn podman_a_connect_from_a_chroot_is_the_containers() -> Result<()> {
    let net = net_for(Runtime::Podman)?;
    let server = net.tcp_server(PORT_OK)?;
    let options = RunOptions {
        host_network: true,
        ..RunOptions::default()
    };
    let (mut daemon, c) =
        sealwatch_tests::attack::daemon_and_container(Runtime::Podman, "sw-attack", &options)?;
    let to = at(net.peer_v4(), PORT_OK);
    // Each connect is told apart by its source port, as the server saw it; the executable is
    // the image's busybox either way (named from the container's root).
    let mut connect_by = |argv: Vec<String>| -> Result<()> {
        run(&c, &argv)?.succeeded()?;
        let seen = server.wait_for(&format!("a connection to {to}"), PEER_TIMEOUT, |a| {
            a.local == to
        })?;
        let ev = wait_in_container(
            &mut daemon,
            &c,
            &format!("the connect to {to} by {argv:?}"),
            |_| true,
            |ev| {
                ev["kind"] == "connect"
                    && ev["network"]["dst"] == to.ip().to_string()
                    && ev["network"]["sport"] == seen.peer.port()
            },
        )?;
        check_fields(&ev, &[("/process/exe", json!(BUSYBOX))])
    };
    // Control: the plain nc.
    connect_by(nc(to))?;
    // The attack: the same from a chroot whose root is procfs.
    let mut chrooted = strings(&["chroot", "/proc", &format!("/1/root{BUSYBOX}")]);
    chrooted.extend(nc(to));
    connect_by(chrooted)?;
    daemon.stop()?;
    Ok(())
}

// ---- 2. the file, not the text of its path ----------------------------------------------

/// Five spellings of image files, each removed, changed or replaced through a path that does not
/// say `/etc/sw-image/...` (the last: `mv /tmp/evil e.conf` from `/etc/sw-image`, a relative
/// rename target after an absolute source): every one is the `image-file-modified` of the file it names, shown by
/// that file's own path. The control is `each_change_of_an_image_file_is_one_violation` in
/// `immutability.rs` (the plain spellings).
#[test]
fn other_spellings_of_an_image_file_are_the_same_file() -> Result<()> {
    let (mut daemon, c) = daemon_and_container(Runtime::Podman)?;
    let [through_link, through_proc, through_dots, chmod_target, replaced] = [
        FIXTURE_FILES[0],
        FIXTURE_FILES[1],
        FIXTURE_FILES[2],
        FIXTURE_FILES[3],
        FIXTURE_FILES[4],
    ];
    let name = |path: &str| path.rsplit('/').next().unwrap_or(path).to_owned();
    // A directory the container made a symlink to the image's directory.
    sh(&c, "ln -s /etc/sw-image /tmp/e")?;
    c.exec(&["rm", &format!("/tmp/e/{}", name(through_link))])?;
    // The process's own root through /proc.
    c.exec(&["rm", &format!("/proc/self/root{through_proc}")])?;
    // `..` from the working directory.
    sh(
        &c,
        &format!("cd /tmp && rm ../etc/sw-image/{}", name(through_dots)),
    )?;
    // chmod follows a symlink given as the last component.
    sh(
        &c,
        &format!("ln -s {chmod_target} /tmp/l && chmod 600 /tmp/l"),
    )?;
    // A rename whose target is relative to the cwd while its source is absolute.
    sh(
        &c,
        &format!(
            "echo evil > /tmp/evil && cd /etc/sw-image && mv /tmp/evil {}",
            name(replaced)
        ),
    )?;
    let state = sh(
        &c,
        &format!(
            "for f in {through_link} {through_proc} {through_dots}; do test -e $f || echo gone; done; \
             stat -c %a {chmod_target}; cat {replaced}"
        ),
    )?;
    ensure!(
        state.lines().collect::<Vec<_>>() == ["gone", "gone", "gone", "600", "evil"],
        "the changes did not all happen: {state}"
    );
    for (path, op) in [
        (through_link, "unlink"),
        (through_proc, "unlink"),
        (through_dots, "unlink"),
        (chmod_target, "chmod"),
        (replaced, "rename"),
    ] {
        let ev = wait_violation(&mut daemon, &c, IMAGE_RULE, path, |ev| {
            is_file(ev, path, op)
        })?;
        check_image_violation(&ev, &c)?;
    }
    daemon.stop()?;
    Ok(())
}

/// `rm` of an image file through a name longer than the kernel's record keeps (3840 bytes:
/// `/./././…/etc/sw-image/e.conf`, legal up to PATH_MAX): the cut text would name another file
/// (or none), so the line reports the change with `path_truncated` instead of judging the cut
/// text. The control: the plain spellings in `other_spellings_of_an_image_file_are_the_same_file`.
#[test]
fn a_name_cut_at_the_path_limit_is_reported_not_judged_as_another_file() -> Result<()> {
    let (mut daemon, c) = daemon_and_container(Runtime::Podman)?;
    let target = FIXTURE_FILES[4];
    let long = format!("/{}{}", "./".repeat(1960), target.trim_start_matches('/'));
    ensure!(
        long.len() > 3840 && long.len() < 4096,
        "{} bytes",
        long.len()
    );
    c.exec(&["rm", &long])?;
    ensure!(
        sh(&c, &format!("test -e {target} || echo gone"))?.trim() == "gone",
        "{target} was not removed"
    );
    let ev = wait_violation(&mut daemon, &c, IMAGE_RULE, "the cut name", |ev| {
        ev["file"]["op"] == "unlink" && ev["file"]["path_truncated"] == true
    })?;
    let message = ev["violation"]["message"].as_str().unwrap_or_default();
    ensure!(message.contains("cannot be checked"), "{ev}");
    daemon.stop()?;
    Ok(())
}

// ---- 3. origins are never stale -----------------------------------------------------------

/// `sh /tmp/x.sh` fails (no such file), then the script is written, made executable and run:
/// the second look at the path must not reuse the first answer ("absent"). Control: a second
/// script written and run without the failed attempt before it.
#[test]
fn a_script_that_failed_to_run_is_judged_when_it_exists() -> Result<()> {
    let (mut daemon, c) = daemon_and_container(Runtime::Podman)?;
    for failed_first in [false, true] {
        let script = format!("/tmp/{}.sh", unique_name("sw-attack-late"));
        let marker = unique_name("sw-attack-late-ran");
        if failed_first {
            let out = c.exec_output(&["sh", &script])?;
            ensure!(!out.status.success(), "{script} ran before it existed");
            // Give the daemon time to look the path up and answer "absent".
            std::thread::sleep(Duration::from_millis(500));
        }
        sh(
            &c,
            &format!("printf '#!/bin/sh\\necho {marker}\\n' > {script} && chmod 755 {script}"),
        )?;
        ensure!(
            c.exec(&[&script])?.trim() == marker,
            "the script did not run"
        );
        wait_violation(&mut daemon, &c, NEW_EXE_RULE, &script, |ev| {
            is_file(ev, &script, "chmod")
        })?;
        // The image's shell runs it: judged when the shell reads it.
        wait_violation(&mut daemon, &c, DRIFT_RULE, &script, |ev| {
            is_file(ev, &script, "script_read")
        })?;
    }
    daemon.stop()?;
    Ok(())
}

// ---- 8. nothing is absorbed silently ------------------------------------------------------

/// Two appends to one image file within the repeat window (1.5 s apart): the first is printed at
/// once, the second is held back and reported when the window closes (`violation.repeats: 1`),
/// without a third change to carry it.
#[test]
fn a_held_back_repeat_is_reported_when_the_window_closes() -> Result<()> {
    let (mut daemon, c) = daemon_and_container(Runtime::Podman)?;
    let path = FIXTURE_FILES[2];
    let marker = unique_name("sw-attack-repeat");
    sh(&c, &format!("echo {marker}-1 >> {path}"))?;
    let first = wait_violation(&mut daemon, &c, IMAGE_RULE, path, |ev| {
        is_file(ev, path, "open_write")
    })?;
    ensure!(
        first["violation"].get("repeats").is_none(),
        "the first append has no repeats: {first}"
    );
    // The kernel itself folds identical changes within a second into its next record (and
    // holds the count until one comes): the second append comes later than that, so its record
    // reaches the daemon, which holds it back for its repeat window.
    std::thread::sleep(Duration::from_millis(1500));
    sh(&c, &format!("echo {marker}-2 >> {path}"))?;
    ensure!(
        c.exec(&["cat", path])?.contains(&format!("{marker}-2")),
        "the second append did not happen"
    );
    std::thread::sleep(REPEAT_WINDOW);
    let flushed = wait_violation(&mut daemon, &c, IMAGE_RULE, path, |ev| {
        is_file(ev, path, "open_write") && ev["violation"]["repeats"].as_u64().is_some()
    })?;
    check_fields(&flushed, &[("/violation/repeats", json!(1))])?;
    let stopped = daemon.stop()?;
    let lines: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| container_id(e) == Some(c.id.as_str()))
        .filter(|e| violation_rule(e) == Some(IMAGE_RULE) && is_file(e, path, "open_write"))
        .collect();
    ensure!(
        lines.len() == 2,
        "expected the first append and the flushed repeat, got {lines:#?}"
    );
    Ok(())
}
