//! Foundation: exec events from the host and from podman, Docker and containerd containers, full
//! container attribution (also for a container that lives a few milliseconds), lossless escaping of
//! hostile byte strings, argv truncation, no self-reporting, the root-in-container rule, and
//! start-up failures (bad policy, not root).
//!
//! Every test that starts the daemon ends with `Daemon::stop()`, which requires exit status 0 and
//! validates every line the daemon printed against `schema/sealwatch.event.v1.json`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::daemon::{daemon_bin, Daemon, EVENT_TIMEOUT};
use sealwatch_tests::escape::{escaped_pointers, field_bytes};
use sealwatch_tests::events::{self, check_fields, container_id, is_exec_of, is_exec_with_arg};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::{cmd, require_root, unique_name};

/// The documented argv capture limit, in bytes (each argument counts with its NUL).
const ARGV_LIMIT: usize = 4096;
/// `TASK_COMM_LEN - 1`: the kernel keeps the first 15 bytes of the exec'd file name as `comm`.
const COMM_MAX: usize = 15;
const ROOT_RULE: &str = "root-in-container";

/// Checks what every exec into a container from the test image must carry.
fn check_container_exec(
    ev: &Value,
    c: &Container,
    argv: &[&str],
    comm: &str,
    uid: u32,
) -> Result<()> {
    check_fields(
        ev,
        &[
            ("/kind", json!("exec")),
            ("/process/comm", json!(comm)),
            ("/process/exe", json!("/bin/busybox")),
            ("/process/args", json!(argv)),
            ("/process/args_truncated", json!(false)),
            ("/process/uid", json!(uid)),
            ("/container/id", json!(c.id)),
            ("/container/runtime", json!(c.runtime.as_str())),
            ("/container/image", json!(c.runtime.image())),
            ("/container/metadata", json!("complete")),
            ("/container/pod", Value::Null),
        ],
    )
}

/// An exec inside a long-running container is attributed to it with full metadata.
fn exec_in_container_is_attributed(rt: Runtime) -> Result<()> {
    rt.ensure_ready()?;
    let mut daemon = Daemon::start(&[])?;
    let c = rt.run_detached(&unique_name("sw-fnd"), &["sleep", "300"])?;
    assert_eq!(c.exec(&["/bin/id", "-u"])?, "0");
    let ev = daemon.wait_for(
        &format!(
            "exec event of `/bin/id -u` in {} container {}",
            rt.as_str(),
            c.name
        ),
        EVENT_TIMEOUT,
        |ev| is_exec_of(ev, &["/bin/id", "-u"]),
    )?;
    check_container_exec(&ev, &c, &["/bin/id", "-u"], "id", 0)?;
    check_fields(&ev, &[("/container/name", json!(c.name))])?;
    daemon.stop()?;
    Ok(())
}

#[test]
fn podman_exec_is_attributed() -> Result<()> {
    exec_in_container_is_attributed(Runtime::Podman)
}

#[test]
fn docker_exec_is_attributed() -> Result<()> {
    exec_in_container_is_attributed(Runtime::Docker)
}

/// containerd via `ctr`: the name is not checked (see `runtime::NAME_LABEL`; the contract does not
/// say what `container.name` is for a bare containerd container).
#[test]
fn containerd_exec_is_attributed() -> Result<()> {
    let rt = Runtime::Containerd;
    rt.ensure_ready()?;
    let mut daemon = Daemon::start(&[])?;
    let c = rt.run_detached(&unique_name("sw-fnd"), &["sleep", "300"])?;
    let marker = unique_name("sw-ctr-marker");
    assert_eq!(c.exec(&["/bin/echo", &marker])?, marker);
    let argv = ["/bin/echo", marker.as_str()];
    let ev = daemon.wait_for(
        "exec event of the marker echo in a ctr container",
        EVENT_TIMEOUT,
        |ev| is_exec_of(ev, &argv),
    )?;
    check_container_exec(&ev, &c, &argv, "echo", 0)?;
    daemon.stop()?;
    Ok(())
}

/// A container that already runs when the daemon starts is attributed too (start-up seeding).
#[test]
fn container_started_before_the_daemon_is_attributed() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let c = rt.run_detached(&unique_name("sw-fnd"), &["sleep", "300"])?;
    let mut daemon = Daemon::start(&[])?;
    let marker = unique_name("sw-pre-marker");
    c.exec(&["/bin/echo", &marker])?;
    let argv = ["/bin/echo", marker.as_str()];
    let ev = daemon.wait_for(
        "exec event in the pre-existing container",
        EVENT_TIMEOUT,
        |ev| is_exec_of(ev, &argv),
    )?;
    check_container_exec(&ev, &c, &argv, "echo", 0)?;
    check_fields(&ev, &[("/container/name", json!(c.name))])?;
    daemon.stop()?;
    Ok(())
}

/// `podman run --rm ... /bin/echo <marker>` lives a few milliseconds; its entrypoint exec already
/// carries the full id, runtime, name and image, and no event of it ever says `pending`.
#[test]
fn short_lived_container_first_exec_is_complete() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = Daemon::start(&[])?;
    let marker = unique_name("sw-short-marker");
    let finished = rt.run_rm(&unique_name("sw-fnd"), &["/bin/echo", &marker])?;
    assert_eq!(finished.stdout, marker);
    let argv = ["/bin/echo", marker.as_str()];
    let ev = daemon.wait_for(
        "exec event of the short-lived container's entrypoint",
        EVENT_TIMEOUT,
        |ev| is_exec_of(ev, &argv),
    )?;
    check_fields(
        &ev,
        &[
            ("/process/exe", json!("/bin/busybox")),
            ("/container/id", json!(finished.id)),
            ("/container/runtime", json!("podman")),
            ("/container/name", json!(finished.name)),
            ("/container/image", json!(rt.image())),
            ("/container/metadata", json!("complete")),
        ],
    )?;
    let stopped = daemon.stop()?;
    let incomplete: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| container_id(e) == Some(finished.id.as_str()))
        .filter(|e| e["container"]["metadata"] != "complete")
        .collect();
    ensure!(
        incomplete.is_empty(),
        "events of the short-lived container without complete metadata: {incomplete:?}"
    );
    Ok(())
}

/// A host exec: no container, and the real pid, ppid, uid, gid, argv, exe, cwd and parent exe.
#[test]
fn host_exec_has_process_details() -> Result<()> {
    require_root()?;
    let mut daemon = Daemon::start(&[])?;
    let marker = unique_name("sealwatch-host-marker");
    let mut child = Command::new("/bin/echo")
        .arg(&marker)
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id();
    ensure!(child.wait()?.success(), "/bin/echo failed");
    let ev = daemon.wait_for("exec event of the host marker echo", EVENT_TIMEOUT, |ev| {
        is_exec_with_arg(ev, &marker)
    })?;
    let exe = std::fs::canonicalize("/bin/echo")?;
    let cwd = std::env::current_dir()?.canonicalize()?;
    let parent_exe = std::env::current_exe()?.canonicalize()?;
    check_fields(
        &ev,
        &[
            ("/schema", json!("sealwatch.event/v1")),
            ("/node", json!(events::hostname()?)),
            ("/kind", json!("exec")),
            ("/container", Value::Null),
            ("/process/pid", json!(pid)),
            ("/process/ppid", json!(std::process::id())),
            ("/process/uid", json!(nix::unistd::getuid().as_raw())),
            ("/process/gid", json!(nix::unistd::getgid().as_raw())),
            ("/process/comm", json!("echo")),
            ("/process/exe", json!(exe.to_str().unwrap())),
            ("/process/args", json!(["/bin/echo", marker])),
            ("/process/args_truncated", json!(false)),
            ("/process/cwd", json!(cwd.to_str().unwrap())),
            ("/process/parent_exe", json!(parent_exe.to_str().unwrap())),
        ],
    )?;
    ensure!(
        ev.get("violation").is_none(),
        "a host exec is no violation: {ev}"
    );
    ensure!(
        escaped_pointers(&ev).is_empty(),
        "nothing here needs escaping: {ev}"
    );
    daemon.stop()?;
    Ok(())
}

/// A file name and argv with a newline, a backslash and an invalid UTF-8 byte: the event is one
/// valid JSON line, `escaped` lists exactly the invalid strings, and decoding gives the exact bytes.
#[test]
fn hostile_names_are_escaped_losslessly() -> Result<()> {
    require_root()?;
    let mut daemon = Daemon::start(&[])?;
    let marker = unique_name("sw-hostile-marker");
    let mut name = b"sw-\n\xff-hostile-".to_vec();
    name.extend_from_slice(unique_name("x").as_bytes());
    let dir = Path::new("/tmp").canonicalize()?;
    let path = dir.join(OsStr::from_bytes(&name));
    // exe is the file that is executed, so this must be a real binary, not a symlink or a script.
    std::fs::copy("/bin/true", &path).context("copying /bin/true")?;
    let path = tempfile::TempPath::try_from_path(path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;

    let argv: Vec<&[u8]> = vec![
        path.as_os_str().as_bytes(),
        b"two\nlines",
        b"bad\xff\\byte",
        b"valid\\backslash",
        marker.as_bytes(),
    ];
    let status = Command::new(&*path)
        .args(argv[1..].iter().map(|a| OsStr::from_bytes(a)))
        .status()
        .context("running the hostile file")?;
    ensure!(status.success(), "the copy of /bin/true failed: {status}");

    let ev = daemon.wait_for("exec event of the hostile file", EVENT_TIMEOUT, |ev| {
        is_exec_with_arg(ev, &marker)
    })?;
    let mut escaped = escaped_pointers(&ev);
    escaped.sort_unstable();
    assert_eq!(
        escaped,
        [
            "/process/args/0",
            "/process/args/2",
            "/process/comm",
            "/process/exe"
        ],
        "escaped pointers in {ev}"
    );
    assert_eq!(
        field_bytes(&ev, "/process/exe")?,
        path.as_os_str().as_bytes(),
        "exe in {ev}"
    );
    assert_eq!(
        field_bytes(&ev, "/process/comm")?,
        &name[..COMM_MAX],
        "comm in {ev}"
    );
    let got_argc = ev["process"]["args"].as_array().map_or(0, Vec::len);
    assert_eq!(got_argc, argv.len(), "argc in {ev}");
    for (i, want) in argv.iter().enumerate() {
        assert_eq!(
            field_bytes(&ev, &format!("/process/args/{i}"))?,
            *want,
            "args[{i}] in {ev}"
        );
    }
    let stopped = daemon.stop()?;
    let execs = stopped
        .events
        .iter()
        .filter(|e| is_exec_with_arg(e, &marker))
        .count();
    assert_eq!(execs, 1, "the hostile exec must be exactly one exec event");
    Ok(())
}

/// More than 8 KiB of argv: `args_truncated` is true and the captured args are a prefix of the
/// real ones, within the documented limit.
#[test]
fn long_argv_is_truncated_to_a_prefix() -> Result<()> {
    require_root()?;
    let mut daemon = Daemon::start(&[])?;
    let marker = unique_name("sw-long-marker");
    let mut real: Vec<String> = vec!["/bin/true".to_owned(), marker.clone()];
    real.extend((0..250).map(|i| format!("arg{i:04}-{}", "x".repeat(40))));
    let real_bytes: usize = real.iter().map(|a| a.len() + 1).sum();
    assert!(real_bytes > 8 * 1024);
    let status = Command::new(&real[0]).args(&real[1..]).status()?;
    ensure!(status.success(), "/bin/true failed: {status}");

    let ev = daemon.wait_for("exec event with the long argv", EVENT_TIMEOUT, |ev| {
        events::is_exec(ev) && events::args(ev).get(1) == Some(&marker.as_str())
    })?;
    check_fields(&ev, &[("/process/args_truncated", json!(true))])?;
    let got = events::args(&ev);
    // Arguments are NUL-separated; a final argument cut at the limit has no NUL of its own.
    let got_bytes: usize = got.iter().map(|a| a.len()).sum::<usize>() + got.len().saturating_sub(1);
    assert!(
        got_bytes <= ARGV_LIMIT,
        "captured {got_bytes} bytes of argv, limit {ARGV_LIMIT}"
    );
    assert!(
        got.len() <= real.len() && got_bytes < real_bytes,
        "nothing was cut: {ev}"
    );
    let (last, whole) = got.split_last().context("no args captured")?;
    for (i, arg) in whole.iter().enumerate() {
        assert_eq!(*arg, real[i], "captured args[{i}] differs");
    }
    let i = whole.len();
    assert!(
        real[i].starts_with(last),
        "captured args[{i}] {last:?} is no prefix of {:?}",
        real[i]
    );
    daemon.stop()?;
    Ok(())
}

/// The daemon does not report its own activity, even while it looks up container metadata.
#[test]
fn daemon_does_not_report_itself() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    Runtime::Docker.ensure_ready()?;
    let mut daemon = Daemon::start(&[])?;
    for rt in [Runtime::Podman, Runtime::Docker] {
        let marker = unique_name("sw-self-marker");
        rt.run_rm(&unique_name("sw-fnd"), &["/bin/echo", &marker])?;
        daemon.wait_for(
            &format!("exec event of the {} marker", rt.as_str()),
            EVENT_TIMEOUT,
            |ev| is_exec_of(ev, &["/bin/echo", &marker]),
        )?;
    }
    let pid = daemon.pid();
    let stopped = daemon.stop()?;
    ensure!(
        !stopped.events.is_empty(),
        "the daemon reported nothing at all"
    );
    let own: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| e["process"]["pid"] == json!(pid))
        .collect();
    ensure!(
        own.is_empty(),
        "the daemon (pid {pid}) reported itself: {own:?}"
    );
    Ok(())
}

/// `root-in-container` fires once per container running as root, never for a non-root one.
#[test]
fn root_in_container_fires_once_per_container() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = Daemon::start(&[])?;
    let root = rt.run_detached(&unique_name("sw-root"), &["sleep", "300"])?;
    let nobody_opts = RunOptions {
        user: Some(65534),
        ..RunOptions::default()
    };
    let nobody =
        rt.run_detached_with(&unique_name("sw-nobody"), &nobody_opts, &["sleep", "300"])?;
    for (c, uid) in [(&root, 0u32), (&nobody, 65534)] {
        for n in 0..2 {
            let marker = unique_name("sw-root-marker");
            c.exec(&["/bin/echo", &marker])?;
            let ev = daemon.wait_for(&format!("exec #{n} in {}", c.name), EVENT_TIMEOUT, |ev| {
                is_exec_of(ev, &["/bin/echo", &marker])
            })?;
            check_fields(
                &ev,
                &[("/container/id", json!(c.id)), ("/process/uid", json!(uid))],
            )?;
        }
    }
    let stopped = daemon.stop()?;
    let violations = |id: &str| -> Vec<&Value> {
        stopped
            .events
            .iter()
            .filter(|e| events::violation_rule(e) == Some(ROOT_RULE) && container_id(e) == Some(id))
            .collect()
    };
    let root_hits = violations(&root.id);
    assert_eq!(
        root_hits.len(),
        1,
        "{ROOT_RULE} for the root container: {root_hits:?}"
    );
    check_fields(
        root_hits[0],
        &[
            ("/kind", json!("exec")),
            ("/process/uid", json!(0)),
            ("/violation/severity", json!("medium")),
        ],
    )?;
    let nobody_hits = violations(&nobody.id);
    assert!(
        nobody_hits.is_empty(),
        "{ROOT_RULE} for a uid 65534 container: {nobody_hits:?}"
    );
    Ok(())
}

/// A policy file that is not valid YAML: exit status 64, and stderr names the file and the line.
#[test]
fn invalid_policy_exits_64_naming_file_and_line() -> Result<()> {
    let bin = daemon_bin()?;
    let mut policy = tempfile::Builder::new()
        .prefix("sw-bad-policy-")
        .suffix(".yaml")
        .tempfile()?;
    std::io::Write::write_all(
        &mut policy,
        b"# sealwatch foundation test: the YAML error is on line 3\nversion: 1\nrules: bad: value\n",
    )?;
    let path = policy.path().to_str().context("temp path is not UTF-8")?;
    let out = cmd::run(
        &mut cmd::command(
            bin.to_str().context("binary path is not UTF-8")?,
            &["run", "--policy", path],
        ),
        Duration::from_secs(60),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(64),
        "exit status {}; stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(path),
        "stderr does not name {path}:\n{stderr}"
    );
    assert!(
        stderr.contains("line 3") || stderr.contains(&format!("{path}:3")),
        "stderr does not name line 3:\n{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout must stay empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// Started without privileges, the daemon refuses to run and says why (instead of running blind).
#[test]
fn unprivileged_start_fails_and_says_why() -> Result<()> {
    require_root()?;
    let bin = daemon_bin()?;
    let mut command = cmd::command(bin.to_str().context("binary path is not UTF-8")?, &["run"]);
    command.uid(65534).gid(65534);
    let out = cmd::run(&mut command, Duration::from_secs(60))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the daemon ran as uid 65534; stderr:\n{stderr}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        ["root", "cap_", "privilege", "permission"]
            .iter()
            .any(|w| lower.contains(w)),
        "stderr does not say that privileges are missing:\n{stderr}"
    );
    assert!(
        !stderr.contains(sealwatch_tests::daemon::READY_MARKER),
        "it claimed to be ready:\n{stderr}"
    );
    Ok(())
}
