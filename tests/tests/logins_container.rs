//! Never log in, containers: entering a container (`podman exec -it` on a real pty, `docker exec`,
//! `nsenter`, an interactive entrypoint), sessions (start line, the id on every exec inside, end
//! line with duration and command count), the Kubernetes exec audit id, probes excepted by
//! policy, and what is not a login (entrypoints, non-interactive entrypoint shells, host
//! processes).
//!
//! Every test that starts the daemon ends with `Daemon::stop()`, which requires exit status 0 and
//! validates every line the daemon printed against `schema/sealwatch.event.v1.json`. The daemons
//! run without a metrics endpoint or tail socket, so a daemon running elsewhere on the machine
//! (a benchmark) does not collide with them; every assertion is scoped to the test's own
//! containers, markers or SSH connection, since such a daemon's workload may log in too.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::os::unix::process::CommandExt;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::daemon::EVENT_TIMEOUT;
use sealwatch_tests::events::{self, check_fields, container_id, is_exec_of, violation_rule};
use sealwatch_tests::pty::Pty;
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::sessions::*;
use sealwatch_tests::{cmd, unique_name};

/// `podman exec -it <c> sh` on a pseudo-terminal of the test: an interactive session in the
/// container, with the full container id and the terminal; commands typed in it (also a nested
/// shell, which opens no second session) carry its id; `exit` ends it.
#[test]
fn podman_exec_it_on_a_pty_is_an_interactive_session() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = rt.run_detached(&unique_name("sw-login"), &["sleep", "300"])?;
    let mut pty = Pty::spawn("podman", &["exec", "-it", &c.id, "sh"])?;
    pty.wait_for_output("# ", TERMINAL_TIMEOUT)
        .context("waiting for the shell prompt")?;
    let (echoed, typed) = split_marker("sw-pty-echo");
    type_and_wait(&mut pty, &format!("/bin/echo {typed}"), &echoed)?;
    let nested = unique_name("sw-pty-nested");
    let (done, typed_done) = split_marker("sw-pty-done");
    type_and_wait(
        &mut pty,
        &format!("/bin/sh -c '/bin/true {nested}'; /bin/echo {typed_done}"),
        &done,
    )?;
    pty.send("exit\n")?;
    let status = pty.wait(TERMINAL_TIMEOUT)?;
    ensure!(
        status.success(),
        "podman exec -it exited with {status}; the terminal showed:\n{}",
        pty.output()
    );
    let end = wait_session_end(&mut daemon, "the podman exec -it shell", |ev| {
        container_id(ev) == Some(c.id.as_str())
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "container-exec",
            rule: INTERACTIVE,
            severity: "critical",
            user: "0",
            tty: Tty::Pts,
            remote: None,
            container: Some(&c.id),
            k8s_audit_id: None,
        },
    )?;
    check_fields(
        &session.start,
        &[
            ("/process/args", json!(["sh"])),
            ("/process/exe", json!("/bin/busybox")),
            ("/container/runtime", json!("podman")),
            ("/container/name", json!(c.name)),
        ],
    )?;
    check_command_in_session(&session, &["/bin/echo", &echoed])?;
    check_command_in_session(&session, &["/bin/true", &nested])?;
    check_command_in_session(&session, &["/bin/sh", "-c", &format!("/bin/true {nested}")])?;
    check_command_in_session(&session, &["/bin/echo", &done])?;
    let commands = session.end["session"]["commands"].as_u64().unwrap_or(0);
    ensure!(commands >= 2, "commands {commands} in {}", session.end);

    // One session in this container, and only its opening exec is a login violation.
    let starts: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| is_session_line(ev, "start") && container_id(ev) == Some(c.id.as_str()))
        .collect();
    ensure!(
        starts.len() == 1,
        "{} sessions in the container, expected one: {starts:?}",
        starts.len()
    );
    let logins: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| login_rule(ev).is_some() && container_id(ev) == Some(c.id.as_str()))
        .collect();
    ensure!(
        logins.len() == 1,
        "{} login violations in the container, expected one: {logins:?}",
        logins.len()
    );
    Ok(())
}

/// `docker exec` without a terminal: `container-exec` (high), no terminal, not interactive; the
/// session holds exactly the one program that ran.
#[test]
fn docker_exec_without_terminal_is_container_exec() -> Result<()> {
    let rt = Runtime::Docker;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = rt.run_detached(&unique_name("sw-login"), &["sleep", "300"])?;
    let marker = unique_name("sw-docker-exec");
    assert_eq!(c.exec(&["/bin/echo", &marker])?, marker);
    let end = wait_session_end(&mut daemon, "docker exec", |ev| {
        container_id(ev) == Some(c.id.as_str())
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "container-exec",
            rule: CONTAINER_EXEC,
            severity: "high",
            user: "0",
            tty: Tty::None,
            remote: None,
            container: Some(&c.id),
            k8s_audit_id: None,
        },
    )?;
    check_fields(
        &session.start,
        &[
            ("/process/args", json!(["/bin/echo", marker])),
            ("/container/runtime", json!("docker")),
        ],
    )?;
    check_fields(&session.end, &[("/session/commands", json!(1))])?;
    let interactive: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| {
            violation_rule(ev) == Some(INTERACTIVE) && container_id(ev) == Some(c.id.as_str())
        })
        .collect();
    ensure!(
        interactive.is_empty(),
        "docker exec without -t is interactive: {interactive:?}"
    );
    Ok(())
}

/// `nsenter -t <container init pid> -m -u -i -n -p sh -c ...` from the host, without a
/// controlling terminal: `container-exec` attributed to the container (full id) although the
/// process stays in the host's cgroup; what it runs carries the session id; `nsenter` itself is
/// a host process and no violation. (The script forks its echo: a leader that execs again is
/// [`exec_by_the_session_leader_stays_in_its_session`].)
#[test]
fn nsenter_into_a_container_is_container_exec() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = rt.run_detached(&unique_name("sw-login"), &["sleep", "300"])?;
    let pid = c.init_pid()?.to_string();
    let marker = unique_name("sw-nsenter");
    let script = format!("id >/dev/null; /bin/echo {marker}; true");
    let mut command = cmd::command(
        "nsenter",
        &[
            "-t", &pid, "-m", "-u", "-i", "-n", "-p", "sh", "-c", &script,
        ],
    );
    // No controlling terminal, whatever the test runner has: this is the non-interactive case.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    assert_eq!(cmd::run_ok(&mut command, cmd::DEFAULT_TIMEOUT)?, marker);
    let end = wait_session_end(&mut daemon, "the nsenter'd shell", |ev| {
        args_contain(ev, &marker)
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "container-exec",
            rule: CONTAINER_EXEC,
            severity: "high",
            user: "0",
            tty: Tty::None,
            remote: None,
            container: Some(&c.id),
            k8s_audit_id: None,
        },
    )?;
    check_fields(
        &session.start,
        &[
            ("/process/args", json!(["sh", "-c", script])),
            ("/container/name", json!(c.name)),
        ],
    )?;
    check_command_in_session(&session, &["/bin/echo", &marker])?;
    let nsenter: Vec<&Value> = execs_of(
        &stopped,
        &[
            "nsenter", "-t", &pid, "-m", "-u", "-i", "-n", "-p", "sh", "-c", &script,
        ],
    )?;
    for ev in nsenter {
        check_fields(ev, &[("/container", Value::Null)])?;
        ensure!(
            ev.get("violation").is_none() && ev.get("session").is_none(),
            "nsenter on the host is itself a login: {ev}"
        );
    }
    Ok(())
}

/// `podman exec -e KUBERNETES_EXEC_AUDIT_ID=<uuid>` and `-e SPO_EXEC_REQUEST_UID=<uuid>` (behind
/// other variables): the id is reported on the session's start and end lines; an exec without
/// either has none.
#[test]
fn k8s_exec_audit_id_is_reported_on_the_session() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = rt.run_detached(&unique_name("sw-login"), &["sleep", "300"])?;
    // Some ordinary variables too (about 1 KiB: podman orders the environment at random, and a
    // larger one is [`k8s_exec_audit_id_behind_a_large_environment_is_reported`]).
    let padding: Vec<String> = (0..16)
        .map(|i| format!("SW_PAD_{i:02}={}", "p".repeat(48)))
        .collect();
    let mut cases = Vec::new();
    for (var, pad) in [
        (Some("KUBERNETES_EXEC_AUDIT_ID"), false),
        (Some("SPO_EXEC_REQUEST_UID"), true),
        (None, false),
    ] {
        let marker = unique_name("sw-audit");
        let uuid = random_uuid()?;
        let mut args: Vec<String> = vec!["exec".into()];
        if pad {
            for p in &padding {
                args.extend(["-e".to_owned(), p.clone()]);
            }
        }
        if let Some(var) = var {
            args.extend(["-e".to_owned(), format!("{var}={uuid}")]);
        }
        args.extend([c.id.clone(), "/bin/echo".into(), marker.clone()]);
        assert_eq!(cmd::ok("podman", &args)?, marker);
        cases.push((var, marker, var.map(|_| uuid)));
    }
    for (var, marker, _) in &cases {
        wait_session_end(&mut daemon, &format!("the exec with {var:?}"), |ev| {
            args_contain(ev, marker)
        })?;
    }
    let stopped = daemon.stop()?;

    for (var, marker, uuid) in &cases {
        let end = stopped
            .events
            .iter()
            .find(|ev| is_session_line(ev, "end") && args_contain(ev, marker))
            .context("the end line vanished")?;
        check_session(
            &stopped.events,
            &id_of(end)?,
            &Expected {
                kind: "container-exec",
                rule: CONTAINER_EXEC,
                severity: "high",
                user: "0",
                tty: Tty::None,
                remote: None,
                container: Some(&c.id),
                k8s_audit_id: uuid.as_deref(),
            },
        )
        .with_context(|| format!("the exec with {var:?}"))?;
    }
    Ok(())
}

/// A pod's environment is often large (Kubernetes adds seven service-link variables per Service
/// of the namespace) and the audit id may come anywhere in it. `docker exec` keeps the order of
/// its `-e` flags: 64 ordinary variables (about 4 KiB), then `KUBERNETES_EXEC_AUDIT_ID`. The id
/// is still reported on the session.
#[test]
fn k8s_exec_audit_id_behind_a_large_environment_is_reported() -> Result<()> {
    let rt = Runtime::Docker;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = rt.run_detached(&unique_name("sw-login"), &["sleep", "300"])?;
    let marker = unique_name("sw-audit-deep");
    let uuid = random_uuid()?;
    let mut args: Vec<String> = vec!["exec".into()];
    for i in 0..64 {
        args.extend([
            "-e".to_owned(),
            format!(
                "SW_SERVICE_{i:02}_PORT=tcp://10.96.{i}.1:443/{}",
                "s".repeat(32)
            ),
        ]);
    }
    args.extend([
        "-e".to_owned(),
        format!("KUBERNETES_EXEC_AUDIT_ID={uuid}"),
        c.id.clone(),
        "/bin/echo".into(),
        marker.clone(),
    ]);
    let environment: usize = args
        .iter()
        .filter(|a| a.contains('='))
        .map(|a| a.len() + 1)
        .sum();
    assert!(
        environment > 4000,
        "only {environment} bytes of environment"
    );
    assert_eq!(cmd::ok("docker", &args)?, marker);
    let end = wait_session_end(&mut daemon, "the exec with a large environment", |ev| {
        args_contain(ev, &marker)
    })?;
    let stopped = daemon.stop()?;

    check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "container-exec",
            rule: CONTAINER_EXEC,
            severity: "high",
            user: "0",
            tty: Tty::None,
            remote: None,
            container: Some(&c.id),
            k8s_audit_id: Some(&uuid),
        },
    )?;
    Ok(())
}

/// `podman run -it ... sh` on a pseudo-terminal of the test: the entrypoint is a shell attached
/// to a terminal, an `interactive-session-in-container`; what is typed carries the session id.
#[test]
fn podman_run_it_shell_on_a_pty_is_an_interactive_session() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let name = unique_name("sw-login-it");
    let _cleanup = RemoveOnDrop("podman", name.clone());
    let dir = tempfile::tempdir()?;
    let cidfile = dir.path().join("cid");
    let cidfile_arg = cidfile.to_str().context("tempdir is not UTF-8")?;
    let mut args = vec!["run", "-it", "--rm", "--cidfile", cidfile_arg];
    args.extend(sealwatch_tests::runtime::PODMAN_RUN_FLAGS);
    args.extend(["--name", &name, rt.image(), "sh"]);
    let mut pty = Pty::spawn("podman", &args)?;
    pty.wait_for_output("# ", TERMINAL_TIMEOUT)
        .context("waiting for the shell prompt")?;
    let (marker, typed) = split_marker("sw-run-it");
    type_and_wait(&mut pty, &format!("/bin/echo {typed}"), &marker)?;
    pty.send("exit\n")?;
    let status = pty.wait(TERMINAL_TIMEOUT)?;
    ensure!(
        status.success(),
        "podman run -it exited with {status}; the terminal showed:\n{}",
        pty.output()
    );
    let id = std::fs::read_to_string(&cidfile).context("reading the --cidfile")?;
    let id = id.trim();
    let end = wait_session_end(&mut daemon, "the podman run -it shell", |ev| {
        container_id(ev) == Some(id)
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "container-exec",
            rule: INTERACTIVE,
            severity: "critical",
            user: "0",
            tty: Tty::Pts,
            remote: None,
            container: Some(id),
            k8s_audit_id: None,
        },
    )?;
    check_fields(
        &session.start,
        &[
            ("/process/args", json!(["sh"])),
            ("/container/name", json!(name)),
        ],
    )?;
    check_command_in_session(&session, &["/bin/echo", &marker])?;
    Ok(())
}

/// Not logins: a container's entrypoint and what it starts, a non-interactive entrypoint shell
/// (`sh -c 'while true; do ...; done'`), and host processes (a shell job, a job in its own
/// session like cron's, a daemonised one). None of them opens a session or carries a session id.
#[test]
fn entrypoints_and_host_processes_are_not_logins() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let looping = rt.run_detached(
        &unique_name("sw-login-loop"),
        &["sh", "-c", "while true; do /bin/sleep 1; done"],
    )?;
    let marker = unique_name("sw-entry");
    let entry_script = format!("/bin/echo {marker}; /bin/ls / >/dev/null");
    let finished = rt.run_rm(&unique_name("sw-login-entry"), &["sh", "-c", &entry_script])?;
    assert_eq!(finished.stdout.lines().next(), Some(marker.as_str()));

    let host_markers: Vec<String> = (0..3).map(|_| unique_name("sw-host-job")).collect();
    let job = format!("sleep 0.1; /bin/echo {}", host_markers[0]);
    cmd::ok("sh", &["-c", &job])?;
    let cron_like = format!("/bin/echo {}", host_markers[1]);
    cmd::ok("setsid", &["-w", "sh", "-c", &cron_like])?;
    // Its own session, reparented when `setsid -f` returns; output discarded (it outlives us).
    let daemonised = format!("(sleep 0.1; /bin/echo {}) >/dev/null &", host_markers[2]);
    cmd::ok("setsid", &["-f", "sh", "-c", &daemonised])?;

    let looping_id = looping.id.clone();
    daemon.wait_for("two loop iterations", EVENT_TIMEOUT, {
        let mut seen = 0;
        move |ev| {
            if is_exec_of(ev, &["/bin/sleep", "1"]) && container_id(ev) == Some(&looping_id) {
                seen += 1;
            }
            seen >= 2
        }
    })?;
    daemon.wait_for("the entrypoint's child", EVENT_TIMEOUT, |ev| {
        is_exec_of(ev, &["/bin/echo", &marker])
    })?;
    for m in &host_markers {
        daemon.wait_for(&format!("host job {m}"), EVENT_TIMEOUT, |ev| {
            is_exec_of(ev, &["/bin/echo", m])
        })?;
    }
    let stopped = daemon.stop()?;

    let ours = |ev: &Value| -> bool {
        let in_container = container_id(ev) == Some(looping.id.as_str())
            || container_id(ev) == Some(finished.id.as_str());
        in_container || host_markers.iter().any(|m| args_contain(ev, m))
    };
    let seen: Vec<&Value> = stopped.events.iter().filter(|ev| ours(ev)).collect();
    for argv in [
        vec!["sh", "-c", "while true; do /bin/sleep 1; done"],
        vec!["sh", "-c", entry_script.as_str()],
        vec!["/bin/ls", "/"],
        vec!["sh", "-c", job.as_str()],
        vec!["sh", "-c", daemonised.as_str()],
    ] {
        ensure!(
            seen.iter().any(|ev| is_exec_of(ev, &argv)),
            "no exec line of {argv:?}: the check below would prove nothing"
        );
    }
    let logins: Vec<&&Value> = seen
        .iter()
        .filter(|ev| {
            login_rule(ev).is_some() || ev["kind"] == "session" || ev.get("session").is_some()
        })
        .collect();
    ensure!(
        logins.is_empty(),
        "entrypoints or host jobs reported as logins or sessions: {logins:?}"
    );
    Ok(())
}

/// A policy exception for a liveness probe (`container-exec`, by container name, exe and args):
/// the probe gives no violation and no session; another exec in the same container still does.
#[test]
fn probe_excepted_by_policy_is_no_login() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let name = unique_name("sw-login-probe");
    let mut policy = tempfile::Builder::new()
        .prefix("sw-login-policy-")
        .suffix(".yaml")
        .tempfile()?;
    std::io::Write::write_all(
        &mut policy,
        format!(
            "version: 1\n\
             rules:\n  \
               container-exec:\n    \
                 exceptions:\n      \
                   - container_name: \"{name}\"\n        \
                     exe: \"/bin/busybox\"\n        \
                     args: [\"*liveness*\"]\n        \
                     reason: \"kubelet probe\"\n"
        )
        .as_bytes(),
    )?;
    let policy_path = policy.path().to_str().context("temp path is not UTF-8")?;
    let mut daemon = start_daemon(&["--policy", policy_path])?;
    let c = rt.run_detached(&name, &["sleep", "300"])?;
    daemon.wait_for("the entrypoint's exec", EVENT_TIMEOUT, |ev| {
        is_exec_of(ev, &["sleep", "300"]) && container_id(ev) == Some(c.id.as_str())
    })?;
    let probe_marker = unique_name("liveness");
    let probe_script = format!("echo liveness; /bin/echo {probe_marker}");
    assert_eq!(
        c.exec(&["sh", "-c", &probe_script])?,
        format!("liveness\n{probe_marker}")
    );
    let other = unique_name("sw-not-a-probe");
    assert_eq!(c.exec(&["/bin/echo", &other])?, other);
    let end = wait_session_end(&mut daemon, "the exec that is no probe", |ev| {
        args_contain(ev, &other)
    })?;
    let stopped = daemon.stop()?;

    check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "container-exec",
            rule: CONTAINER_EXEC,
            severity: "high",
            user: "0",
            tty: Tty::None,
            remote: None,
            container: Some(&c.id),
            k8s_audit_id: None,
        },
    )?;
    let probe = execs_of(&stopped, &["sh", "-c", &probe_script])?;
    let probe_child = execs_of(&stopped, &["/bin/echo", &probe_marker])?;
    for ev in probe.iter().chain(&probe_child) {
        check_fields(ev, &[("/container/id", json!(c.id))])?;
        ensure!(
            login_rule(ev).is_none() && ev.get("session").is_none(),
            "the excepted probe is a login or in a session: {ev}"
        );
    }
    let sessions: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| ev["kind"] == "session" && args_contain(ev, &probe_marker))
        .collect();
    ensure!(
        sessions.is_empty(),
        "the excepted probe opened a session: {sessions:?}"
    );
    Ok(())
}

/// `podman exec <c> sh -c 'id >/dev/null; exec /bin/echo <marker>'`: the process that entered
/// execs again (as `kubectl exec -- sh -c '...; exec app'` does). That is one session: the echo
/// carries the session's id, it is no second login, and the session ends when the process exits.
#[test]
fn exec_by_the_session_leader_stays_in_its_session() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let mut daemon = start_daemon(&[])?;
    let c = rt.run_detached(&unique_name("sw-login"), &["sleep", "300"])?;
    let marker = unique_name("sw-reexec");
    let script = format!("id >/dev/null; exec /bin/echo {marker}");
    assert_eq!(c.exec(&["sh", "-c", &script])?, marker);
    let start = wait_session_start(&mut daemon, "the entering shell", |ev| {
        events::args(ev) == ["sh", "-c", script.as_str()]
    })?;
    // The end line shows the leader as it is at its exit: the echo.
    wait_session_end(&mut daemon, "the re-executed leader", |ev| {
        args_contain(ev, &marker)
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&start)?,
        &Expected {
            kind: "container-exec",
            rule: CONTAINER_EXEC,
            severity: "high",
            user: "0",
            tty: Tty::None,
            remote: None,
            container: Some(&c.id),
            k8s_audit_id: None,
        },
    )?;
    check_command_in_session(&session, &["/bin/echo", &marker])?;
    check_fields(&session.end, &[("/session/commands", json!(2))])?;
    let starts = stopped
        .events
        .iter()
        .filter(|ev| is_session_line(ev, "start") && container_id(ev) == Some(c.id.as_str()))
        .count();
    ensure!(starts == 1, "{starts} sessions for one podman exec");
    Ok(())
}
