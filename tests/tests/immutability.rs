//! Immutability and drift: changes to image files in running podman and Docker containers
//! (`image-file-modified`), executables created in a container (`new-executable`), programs run
//! that are not part of the image (`drift-exec`: copied binaries, new scripts through an image
//! interpreter, memfd and deleted binaries), what is not a violation (the container's own new
//! files, volumes, the host, running image binaries), and `host-file-modified` under a test policy.
//!
//! Image files come from the test image (`image::FIXTURE_FILES`, `/etc/passwd`); the memfd and
//! deleted-binary cases use the static helper `image::EXEC_HELPER`, itself a file of the image.
//! Every test that starts the daemon ends with `Daemon::stop()`, which requires exit status 0 and
//! validates every line the daemon printed against `schema/sealwatch.event.v1.json`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::daemon::{Daemon, EVENT_TIMEOUT};
use sealwatch_tests::events::{
    check_fields, container_id, is_exec_of, violation_rule, wait_in_container,
};
use sealwatch_tests::image::{EXEC_HELPER, FIXTURE_FILES, OPEN_PROBE};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::{require_root, unique_name};

const IMAGE_RULE: &str = "image-file-modified";
const NEW_EXE_RULE: &str = "new-executable";
const DRIFT_RULE: &str = "drift-exec";
const HOST_RULE: &str = "host-file-modified";
/// The rules of this feature; negative tests require none of them for the subject.
const RULES: &[&str] = &[IMAGE_RULE, NEW_EXE_RULE, DRIFT_RULE, HOST_RULE];
const BUSYBOX: &str = "/bin/busybox";
/// The daemon's repeat window for identical file violations (`violation.repeats`).
const REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// Starts the daemon without the metrics endpoint and the tail socket (other daemons on this
/// machine may hold their default addresses; neither is under test here).
fn start_daemon(extra: &[&str]) -> Result<Daemon> {
    let mut args = vec!["--metrics-addr", "none", "--tail-socket", "none"];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

/// A daemon and, after it, a long-running podman container of the test image.
fn podman_daemon_and_container() -> Result<(Daemon, Container)> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let daemon = start_daemon(&[])?;
    let c = start_container(rt, &RunOptions::default())?;
    Ok((daemon, c))
}

/// A long-running container of `rt` from the test image.
fn start_container(rt: Runtime, opts: &RunOptions) -> Result<Container> {
    rt.run_detached_with(&unique_name("sw-imm"), opts, &["sleep", "300"])
}

/// `sh -c <script>` inside `c` (exit 0 required); returns its stdout.
fn sh(c: &Container, script: &str) -> Result<String> {
    c.exec(&["sh", "-c", script])
}

/// A file event of `rule` in container `c` about `path`.
fn is_file_violation(ev: &Value, c: &Container, rule: &str, path: &str) -> bool {
    ev["kind"] == "file"
        && container_id(ev) == Some(c.id.as_str())
        && violation_rule(ev) == Some(rule)
        && ev["file"]["path"] == path
}

/// Every line among `events` of one of [`RULES`] whose container is `c`.
fn rule_hits<'a>(events: &'a [Value], c: &Container) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| container_id(e) == Some(c.id.as_str()))
        .filter(|e| violation_rule(e).is_some_and(|r| RULES.contains(&r)))
        .collect()
}

/// Checks the attribution and the `file` object of a file violation in `c`.
#[expect(
    clippy::too_many_arguments,
    reason = "one expected value per checked field"
)]
fn check_file_violation(
    ev: &Value,
    c: &Container,
    rule: &str,
    severity: &str,
    path: &str,
    op: &str,
    layer: &str,
    exe: &str,
) -> Result<()> {
    check_fields(
        ev,
        &[
            ("/kind", json!("file")),
            ("/container/id", json!(c.id)),
            ("/container/runtime", json!(c.runtime.as_str())),
            ("/container/name", json!(c.name)),
            ("/container/image", json!(c.runtime.image())),
            ("/process/exe", json!(exe)),
            ("/file/path", json!(path)),
            ("/file/op", json!(op)),
            ("/file/layer", json!(layer)),
            ("/violation/rule", json!(rule)),
            ("/violation/severity", json!(severity)),
        ],
    )?;
    let message = ev["violation"]["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains(path),
        "the message does not name {path}: {ev}"
    );
    Ok(())
}

/// Waits for a line of container `c` that satisfies `matches` (see [`wait_in_container`]).
fn wait_in(
    daemon: &mut Daemon,
    c: &Container,
    description: &str,
    matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in_container(daemon, c, description, |_| true, matches)
}

/// Waits for an exec event in `c` whose argv is exactly `argv` (any of its lines: an exec that
/// breaks several rules is printed once per violation).
fn wait_exec_in(daemon: &mut Daemon, c: &Container, argv: &[&str]) -> Result<Value> {
    wait_in(
        daemon,
        c,
        &format!("exec event of {argv:?} in container {}", c.name),
        |ev| is_exec_of(ev, argv),
    )
}

/// Waits for the `drift-exec` line of the exec of `argv` in `c` that also satisfies `matches`.
fn wait_drift_exec(
    daemon: &mut Daemon,
    c: &Container,
    argv: &[&str],
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in(
        daemon,
        c,
        &format!(
            "{DRIFT_RULE} for the exec of {argv:?} in container {}",
            c.name
        ),
        |ev| is_exec_of(ev, argv) && violation_rule(ev) == Some(DRIFT_RULE) && matches(ev),
    )
}

/// Waits for a file violation of `rule` about `path` in `c` that also satisfies `matches`.
fn wait_file_violation(
    daemon: &mut Daemon,
    c: &Container,
    rule: &str,
    path: &str,
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in(
        daemon,
        c,
        &format!("{rule} for {path} in container {}", c.name),
        |ev| is_file_violation(ev, c, rule, path) && matches(ev),
    )
}

// ---- image-file-modified ------------------------------------------------------------------

/// `echo <marker> >> /etc/passwd`: one `image-file-modified` naming the container, the file and
/// the writing shell.
fn append_to_image_file(rt: Runtime) -> Result<()> {
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = start_container(rt, &RunOptions::default())?;
    let marker = unique_name("sw-imm-append");
    let script = format!("echo {marker} >> /etc/passwd");
    sh(&c, &script)?;
    ensure!(
        c.exec(&["cat", "/etc/passwd"])?.contains(&marker),
        "the append did not happen"
    );
    let ev = wait_file_violation(&mut daemon, &c, IMAGE_RULE, "/etc/passwd", |_| true)?;
    check_file_violation(
        &ev,
        &c,
        IMAGE_RULE,
        "critical",
        "/etc/passwd",
        "open_write",
        "lower",
        BUSYBOX,
    )?;
    check_fields(&ev, &[("/process/args", json!(["sh", "-c", script]))])?;
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    ensure!(
        hits.len() == 1,
        "expected exactly the one {IMAGE_RULE} line in this container, got {hits:#?}"
    );
    Ok(())
}

#[test]
fn podman_append_to_image_file() -> Result<()> {
    append_to_image_file(Runtime::Podman)
}

#[test]
fn docker_append_to_image_file() -> Result<()> {
    append_to_image_file(Runtime::Docker)
}

/// `sed -i` (rename over the file), `rm` (unlink), `chmod 600` (chmod) and `: >` (truncate) of four
/// different image files: exactly one violation each, with its operation.
#[test]
fn each_change_of_an_image_file_is_one_violation() -> Result<()> {
    let (mut daemon, c) = podman_daemon_and_container()?;
    let [sed_file, rm_file, chmod_file, trunc_file] = [
        FIXTURE_FILES[0],
        FIXTURE_FILES[1],
        FIXTURE_FILES[2],
        FIXTURE_FILES[3],
    ];
    c.exec(&["sed", "-i", "s/fixture/changed/", sed_file])?;
    c.exec(&["rm", rm_file])?;
    c.exec(&["chmod", "600", chmod_file])?;
    sh(&c, &format!(": > {trunc_file}"))?;
    // The operations happened (a failed syscall is no change and must not be reported).
    let state = sh(
        &c,
        &format!(
            "cat {sed_file}; test -e {rm_file} || echo gone; stat -c %a {chmod_file}; \
             stat -c %s {trunc_file}"
        ),
    )?;
    assert_eq!(
        state.lines().collect::<Vec<_>>(),
        ["sealwatch image changed", "gone", "600", "0"],
        "state of the image files after the changes"
    );

    let cases = [
        (sed_file, "rename"),
        (rm_file, "unlink"),
        (chmod_file, "chmod"),
        (trunc_file, "truncate"),
    ];
    for (path, op) in cases {
        let ev = wait_file_violation(&mut daemon, &c, IMAGE_RULE, path, |_| true)?;
        check_file_violation(&ev, &c, IMAGE_RULE, "critical", path, op, "lower", BUSYBOX)?;
        if op == "chmod" {
            check_fields(&ev, &[("/file/mode", json!(0o600))])?;
        }
    }
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    for (path, op) in cases {
        let for_path: Vec<&&Value> = hits.iter().filter(|e| e["file"]["path"] == path).collect();
        ensure!(
            for_path.len() == 1,
            "{op} of {path}: expected exactly one violation, got {for_path:#?}"
        );
    }
    ensure!(
        hits.len() == cases.len(),
        "violations beyond the four changes: {hits:#?}"
    );
    Ok(())
}

/// `sw-open-probe ARGS` in `c`: one open through the named syscall, which must succeed.
fn open_through(c: &Container, args: &[&str]) -> Result<()> {
    let mut argv = vec![OPEN_PROBE];
    argv.extend_from_slice(args);
    let out = c.exec(&argv)?;
    ensure!(out.trim() == "ok", "{argv:?} in {}: {out}", c.name);
    Ok(())
}

/// The file sensor reads an open's flags and mode at its exit from the syscall's saved
/// registers, which differ from one open syscall to the next. Through each of open, openat,
/// openat2 and creat: an image file opened for writing is one `image-file-modified` (creat
/// truncates), a new file created with exec bits is one `new-executable`, and a read-only open
/// of an image file is nothing.
#[test]
fn every_open_syscall_is_judged() -> Result<()> {
    /// O_WRONLY | O_APPEND, O_WRONLY | O_CREAT (octal, as sw-open-probe takes them).
    const APPEND: &str = "2001";
    const CREATE: &str = "101";
    let (mut daemon, c) = podman_daemon_and_container()?;
    let read_only = FIXTURE_FILES[4];
    let calls = ["open", "openat", "openat2", "creat"];
    let mut expected = Vec::new();
    for (call, &image_file) in calls.into_iter().zip(FIXTURE_FILES) {
        let new_file = format!("/tmp/{}", unique_name(&format!("sw-open-{call}")));
        let image_op = if call == "creat" {
            open_through(&c, &[call, image_file, "644"])?;
            open_through(&c, &[call, &new_file, "755"])?;
            "truncate"
        } else {
            open_through(&c, &[call, read_only, "0", "0"])?;
            open_through(&c, &[call, image_file, APPEND, "0"])?;
            open_through(&c, &[call, &new_file, CREATE, "755"])?;
            "open_write"
        };
        let image_case = (
            IMAGE_RULE,
            "critical",
            image_file.to_owned(),
            image_op,
            "lower",
        );
        expected.push(image_case);
        expected.push((NEW_EXE_RULE, "high", new_file, "create", "upper"));
    }
    for (rule, severity, path, op, layer) in &expected {
        let ev = wait_file_violation(&mut daemon, &c, rule, path, |_| true)?;
        check_file_violation(&ev, &c, rule, severity, path, op, layer, OPEN_PROBE)?;
    }
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    ensure!(
        hits.len() == expected.len(),
        "expected {} violations (none for the read-only opens of {read_only}), got {hits:#?}",
        expected.len()
    );
    Ok(())
}

/// openat2's flags live in user memory, which another thread can rewrite after the kernel used
/// them; the sensor asks the opened file instead. Opens of an image file while a second thread
/// flips the flags between write and read-only: every open that got a writable descriptor is
/// counted exactly once (a first line, then `violation.repeats` on a write after the repeat
/// window), and none of the read-only ones.
#[test]
fn openat2_flags_rewritten_by_another_thread_are_not_believed() -> Result<()> {
    let (mut daemon, c) = podman_daemon_and_container()?;
    let path = FIXTURE_FILES[0];
    let out = c.exec(&[OPEN_PROBE, "openat2-race", path, "3000"])?;
    let writes: u64 = out
        .trim()
        .strip_prefix("writes ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("sw-open-probe openat2-race said {out:?}"))?;
    ensure!(
        writes > 0,
        "no open got a writable descriptor, so the race proves nothing"
    );
    std::thread::sleep(REPEAT_WINDOW + Duration::from_secs(1));
    open_through(&c, &["openat", path, "2001", "0"])?;
    wait_file_violation(&mut daemon, &c, IMAGE_RULE, path, |ev| {
        ev["process"]["args"][1] == "openat"
    })?;
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    let counted: u64 = hits
        .iter()
        .map(|ev| 1 + ev["violation"]["repeats"].as_u64().unwrap_or(0))
        .sum();
    ensure!(
        counted == writes + 1,
        "{writes} writable opens in the race and one after it, but {counted} counted: {hits:#?}"
    );
    Ok(())
}

/// The same image file changed again and again: a first append is printed; 500 more within the
/// repeat window are held back (most of them already folded by the kernel, which sends one record
/// per second for them) and printed with their count when the window closes; an append after the
/// window is printed; a chmod of the same file (another operation) is printed on its own. Every
/// append is counted exactly once across the lines (`1 + violation.repeats` each). The one slow
/// test (> 10 s).
#[test]
fn repeated_changes_of_an_image_file_are_counted() -> Result<()> {
    const APPENDS: u64 = 500;
    let (mut daemon, c) = podman_daemon_and_container()?;
    let path = FIXTURE_FILES[4];
    let marker = unique_name("sw-imm-repeat");
    let first = format!("echo {marker}-first >> {path}");
    sh(&c, &first)?;
    let ev = wait_file_violation(&mut daemon, &c, IMAGE_RULE, path, |_| true)?;
    check_file_violation(
        &ev,
        &c,
        IMAGE_RULE,
        "critical",
        path,
        "open_write",
        "lower",
        BUSYBOX,
    )?;
    check_fields(&ev, &[("/process/args/2", json!(first))])?;
    ensure!(
        ev["violation"].get("repeats").is_none(),
        "the first append has no repeats: {ev}"
    );
    let started = std::time::Instant::now();
    sh(
        &c,
        &format!(
            "i=0; while [ $i -lt {APPENDS} ]; do echo {marker}-$i >> {path}; i=$((i+1)); done"
        ),
    )?;
    // The chmod is another operation: not held back by the appends' window.
    c.exec(&["chmod", "600", path])?;
    let ev = wait_file_violation(&mut daemon, &c, IMAGE_RULE, path, |ev| {
        ev["file"]["op"] == "chmod"
    })?;
    check_file_violation(
        &ev, &c, IMAGE_RULE, "critical", path, "chmod", "lower", BUSYBOX,
    )?;

    std::thread::sleep((REPEAT_WINDOW + Duration::from_secs(1)).saturating_sub(started.elapsed()));
    let last = format!("echo {marker}-last >> {path}");
    sh(&c, &last)?;
    wait_file_violation(&mut daemon, &c, IMAGE_RULE, path, |ev| {
        ev["file"]["op"] == "open_write" && ev["process"]["args"][2] == last
    })?;
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    let appends: Vec<&&Value> = hits
        .iter()
        .filter(|e| e["file"]["op"] == "open_write")
        .collect();
    let counted: u64 = appends
        .iter()
        .map(|ev| 1 + ev["violation"]["repeats"].as_u64().unwrap_or(0))
        .sum();
    ensure!(
        counted == APPENDS + 2,
        "{} appends made, {counted} counted: {appends:#?}",
        APPENDS + 2
    );
    // The first, maybe the window's count (unless the kernel still held every fold), the last.
    ensure!(
        (2..=3).contains(&appends.len()) && hits.len() == appends.len() + 1,
        "expected the appends' lines and one chmod, got {hits:#?}"
    );
    Ok(())
}

// ---- new-executable and drift-exec --------------------------------------------------------

/// `cp /bin/busybox /tmp/x && /tmp/x echo <marker>`: `new-executable` (create) for the copy, and
/// `drift-exec` when it runs, with `exe_layer: upper`.
fn copied_binary_is_drift(rt: Runtime) -> Result<()> {
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = start_container(rt, &RunOptions::default())?;
    // busybox runs the applet named by argv[0], or by argv[1] when argv[0] starts with "busybox".
    let copy = format!("/tmp/{}", unique_name("busybox-sw-copy"));
    c.exec(&["cp", BUSYBOX, &copy])?;
    let marker = unique_name("sw-drift-marker");
    assert_eq!(c.exec(&[&copy, "echo", &marker])?, marker);

    let ev = wait_file_violation(&mut daemon, &c, NEW_EXE_RULE, &copy, |_| true)?;
    check_file_violation(
        &ev,
        &c,
        NEW_EXE_RULE,
        "high",
        &copy,
        "create",
        "upper",
        BUSYBOX,
    )?;
    let ev = wait_drift_exec(&mut daemon, &c, &[&copy, "echo", &marker], |_| true)?;
    check_fields(
        &ev,
        &[
            ("/process/exe", json!(copy)),
            ("/process/exe_layer", json!("upper")),
            ("/violation/rule", json!(DRIFT_RULE)),
            ("/violation/severity", json!("critical")),
        ],
    )?;
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    ensure!(
        hits.len() == 2,
        "expected exactly the {NEW_EXE_RULE} and the {DRIFT_RULE} lines, got {hits:#?}"
    );
    Ok(())
}

#[test]
fn podman_copied_binary_is_drift() -> Result<()> {
    copied_binary_is_drift(Runtime::Podman)
}

#[test]
fn docker_copied_binary_is_drift() -> Result<()> {
    copied_binary_is_drift(Runtime::Docker)
}

/// New scripts run by the image's `/bin/sh`: `/tmp/s.sh` (shebang, made executable: also
/// `new-executable` for the chmod), `sh /tmp/t.sh` and `cd /tmp && ./u.sh`. The exec of busybox
/// is not drift by itself; the shell's read of each script (a file of the container's own) is:
/// a `drift-exec` file line (`op: script_read`) with the script's path, by busybox run as the
/// shell, whose message names the script.
#[test]
fn new_script_through_image_interpreter_is_drift() -> Result<()> {
    let (mut daemon, c) = podman_daemon_and_container()?;
    let marker = unique_name("sw-script");
    let shebang = format!("/tmp/{marker}-s.sh");
    let plain = format!("/tmp/{marker}-t.sh");
    let relative = format!("{marker}-u.sh");
    let body = format!("#!/bin/sh\\necho {marker}\\n");
    sh(
        &c,
        &format!(
            "printf '{body}' > {shebang} && printf '{body}' > {plain} && \
             printf '{body}' > /tmp/{relative} && chmod +x {shebang} /tmp/{relative}"
        ),
    )?;
    assert_eq!(c.exec(&[&shebang])?, marker);
    assert_eq!(c.exec(&["sh", &plain])?, marker);
    let by_relative = format!("cd /tmp && ./{relative}");
    assert_eq!(sh(&c, &by_relative)?, marker);

    let ev = wait_file_violation(&mut daemon, &c, NEW_EXE_RULE, &shebang, |_| true)?;
    check_file_violation(
        &ev,
        &c,
        NEW_EXE_RULE,
        "high",
        &shebang,
        "chmod",
        "upper",
        BUSYBOX,
    )?;

    let relative_abs = format!("/tmp/{relative}");
    for script in [&shebang, &plain, &relative_abs] {
        let ev = wait_file_violation(&mut daemon, &c, DRIFT_RULE, script, |ev| {
            ev["file"]["op"] == "script_read"
        })?;
        check_fields(
            &ev,
            &[
                ("/process/exe", json!(BUSYBOX)),
                ("/file/layer", json!("upper")),
                ("/violation/rule", json!(DRIFT_RULE)),
                ("/violation/severity", json!("critical")),
            ],
        )?;
        let message = ev["violation"]["message"].as_str().unwrap_or_default();
        ensure!(
            message.contains(script.as_str()),
            "the {DRIFT_RULE} message does not name the script {script}: {ev}"
        );
    }
    let stopped = daemon.stop()?;
    let hits = rule_hits(&stopped.events, &c);
    let drift = hits
        .iter()
        .filter(|e| violation_rule(e) == Some(DRIFT_RULE))
        .count();
    ensure!(drift == 3, "expected 3 {DRIFT_RULE} lines, got {hits:#?}");
    let new_exe: Vec<&&Value> = hits
        .iter()
        .filter(|e| violation_rule(e) == Some(NEW_EXE_RULE))
        .collect();
    ensure!(
        new_exe.len() == 2 && !new_exe.iter().any(|e| e["file"]["path"] == plain),
        "expected {NEW_EXE_RULE} for the two scripts made executable, not for {plain}: {new_exe:#?}"
    );
    Ok(())
}

/// The image's helper runs busybox from a memfd, then from a deleted file: each exec is
/// `drift-exec` with `exe_layer` `memfd` / `deleted`; the helper itself (an image file) is not.
#[test]
fn memfd_and_deleted_binary_are_drift() -> Result<()> {
    let (mut daemon, c) = podman_daemon_and_container()?;
    c.exec(&[EXEC_HELPER, "memfd"])?;
    let helper = wait_exec_in(&mut daemon, &c, &[EXEC_HELPER, "memfd"])?;
    check_fields(
        &helper,
        &[
            ("/process/exe", json!(EXEC_HELPER)),
            ("/process/exe_layer", json!("lower")),
        ],
    )?;
    let ev = wait_drift_exec(&mut daemon, &c, &["true"], |_| true)?;
    check_fields(
        &ev,
        &[
            ("/process/pid", helper["process"]["pid"].clone()),
            ("/process/exe_layer", json!("memfd")),
            ("/violation/rule", json!(DRIFT_RULE)),
            ("/violation/severity", json!("critical")),
        ],
    )?;
    // The kernel names a memfd's file `memfd:<name>`; the helper calls it `sw-drift`.
    let exe = ev["process"]["exe"].as_str().unwrap_or_default();
    ensure!(
        exe.starts_with("/memfd:sw-drift"),
        "exe {exe:?} does not name the memfd: {ev}"
    );
    let memfd_pid = ev["process"]["pid"].clone();

    let deleted = format!("/tmp/{}", unique_name("sw-deleted"));
    c.exec(&[EXEC_HELPER, "deleted", &deleted])?;
    let ev = wait_drift_exec(&mut daemon, &c, &["true"], |ev| {
        ev["process"]["pid"] != memfd_pid
    })?;
    check_fields(
        &ev,
        &[
            ("/process/exe_layer", json!("deleted")),
            ("/violation/rule", json!(DRIFT_RULE)),
            ("/violation/severity", json!("critical")),
        ],
    )?;
    let exe = ev["process"]["exe"].as_str().unwrap_or_default();
    ensure!(
        exe.starts_with(&deleted),
        "exe {exe:?} is not the deleted file {deleted}: {ev}"
    );
    // Writing the copy with exec bits is itself a new executable.
    let ev = wait_file_violation(&mut daemon, &c, NEW_EXE_RULE, &deleted, |_| true)?;
    check_file_violation(
        &ev,
        &c,
        NEW_EXE_RULE,
        "high",
        &deleted,
        "create",
        "upper",
        EXEC_HELPER,
    )?;
    let stopped = daemon.stop()?;
    // The helper is a file of the image: its own execs are no drift.
    let drift: Vec<&Value> = rule_hits(&stopped.events, &c)
        .into_iter()
        .filter(|e| violation_rule(e) == Some(DRIFT_RULE))
        .collect();
    ensure!(
        drift.len() == 2 && drift.iter().all(|e| is_exec_of(e, &["true"])),
        "expected the 2 {DRIFT_RULE} lines of `true`, got {drift:#?}"
    );
    Ok(())
}

// ---- what is not a violation --------------------------------------------------------------

/// A tempdir under the host's /tmp, mode 0777 so a container's root can write to it whatever
/// the user namespace setup.
fn host_volume_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("sw-vol-").tempdir()?;
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )?;
    Ok(dir)
}

/// A new log file in the container's writable layer, a write to a bind-mounted volume, a host
/// write (default policy), and running and reading image binaries and files: none of the rules
/// fires. A final image-file append is the positive control: once its violation is printed, the
/// daemon has judged everything the container did before it.
#[test]
fn own_files_volumes_host_and_image_binaries_are_no_violation() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let volume = host_volume_dir()?;
    let mut daemon = start_daemon(&[])?;
    let opts = RunOptions {
        volumes: vec![format!("{}:/vol", volume.path().display())],
        ..RunOptions::default()
    };
    let c = start_container(rt, &opts)?;
    let marker = unique_name("sw-neg");
    sh(&c, &format!("echo {marker} > /tmp/{marker}.log"))?;
    sh(&c, &format!("echo {marker} >> /tmp/{marker}.log"))?;
    sh(&c, &format!("echo {marker} > /vol/{marker}.txt"))?;
    c.exec(&["chmod", "755", &format!("/vol/{marker}.txt")])?;
    let on_host = std::fs::read_to_string(volume.path().join(format!("{marker}.txt")))?;
    assert_eq!(
        on_host.trim(),
        marker,
        "the volume write did not reach the host"
    );
    c.exec(&["ls", "/"])?;
    assert!(c.exec(&["cat", "/etc/passwd"])?.starts_with("root:"));
    c.exec(&["cat", FIXTURE_FILES[0]])?;
    let host_file = std::env::temp_dir().join(format!("{marker}.host"));
    std::fs::write(&host_file, "host write\n")?;
    std::fs::remove_file(&host_file)?;

    let control = FIXTURE_FILES[0];
    sh(&c, &format!("echo {marker} >> {control}"))?;
    wait_file_violation(&mut daemon, &c, IMAGE_RULE, control, |_| true)?;
    let stopped = daemon.stop()?;
    let hits: Vec<&Value> = rule_hits(&stopped.events, &c)
        .into_iter()
        .filter(|e| e["file"]["path"] != control)
        .collect();
    ensure!(hits.is_empty(), "violations of no change: {hits:#?}");
    let host_path = host_file.to_str().unwrap();
    let host_hits: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| {
            e["kind"] == "file" && (e["file"]["path"] == host_path || e["container"].is_null())
        })
        .collect();
    ensure!(
        host_hits.is_empty(),
        "host file events with the default policy: {host_hits:#?}"
    );
    Ok(())
}

// ---- host-file-modified -------------------------------------------------------------------

/// Removes a host file when dropped (the test writes under /etc).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("warning: could not remove {}: {e}", self.0.display());
            }
        }
    }
}

/// Appends a line to `path` (`O_WRONLY|O_CREAT|O_APPEND`: an `open_write`).
fn append_host(path: &Path, line: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))
}

/// With a policy that enables `host-file-modified`: a host write under `/etc` is reported with
/// `container: null` and the writing process, and so is its removal; a write under `/tmp` is not.
#[test]
fn host_file_modified_when_enabled() -> Result<()> {
    require_root()?;
    let mut policy = tempfile::Builder::new()
        .prefix("sw-host-policy-")
        .suffix(".yaml")
        .tempfile()?;
    policy.write_all(
        b"# sealwatch immutability test: watch the host's immutable paths\n\
          version: 1\nrules:\n  host-file-modified:\n    enabled: true\n",
    )?;
    let policy_path = policy.path().to_str().context("temp path is not UTF-8")?;
    let mut daemon = start_daemon(&["--policy", policy_path])?;

    let marker = unique_name("sealwatch-test");
    let outside = tempfile::Builder::new().prefix(&marker).tempdir()?;
    let outside_file = outside.path().join("outside.txt");
    append_host(&outside_file, &marker)?;
    let watched = PathBuf::from(format!("/etc/{marker}"));
    let guard = RemoveOnDrop(watched.clone());
    append_host(&watched, &marker)?;
    let watched_str = watched.to_str().unwrap();
    let ev = daemon.wait_for(
        &format!("{HOST_RULE} for {watched_str}"),
        EVENT_TIMEOUT,
        |ev| {
            ev["kind"] == "file"
                && violation_rule(ev) == Some(HOST_RULE)
                && ev["file"]["path"] == watched_str
        },
    )?;
    let exe = std::env::current_exe()?.canonicalize()?;
    check_fields(
        &ev,
        &[
            ("/container", Value::Null),
            ("/process/pid", json!(std::process::id())),
            ("/process/exe", json!(exe.to_str().unwrap())),
            ("/file/op", json!("open_write")),
            ("/file/layer", json!("none")),
            ("/violation/severity", json!("high")),
        ],
    )?;
    std::fs::remove_file(&watched)?;
    drop(guard);
    let ev = daemon.wait_for(
        &format!("{HOST_RULE} for the removal of {watched_str}"),
        EVENT_TIMEOUT,
        |ev| {
            violation_rule(ev) == Some(HOST_RULE)
                && ev["file"]["path"] == watched_str
                && ev["file"]["op"] == "unlink"
        },
    )?;
    check_fields(&ev, &[("/container", Value::Null)])?;
    let stopped = daemon.stop()?;
    let outside_str = outside.path().to_str().unwrap();
    let wrong: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| {
            e["file"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(outside_str))
        })
        .collect();
    ensure!(
        wrong.is_empty(),
        "host writes outside the watched paths reported: {wrong:#?}"
    );
    Ok(())
}
