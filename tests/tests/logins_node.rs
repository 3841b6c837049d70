//! Never log in, the node: SSH logins to a real sshd on a loopback port, with and without a
//! terminal, and a login shell that execs its command staying one session.
//!
//! Every test that starts the daemon ends with `Daemon::stop()`, which requires exit status 0 and
//! validates every line the daemon printed against `schema/sealwatch.event.v1.json`. The daemons
//! run without a metrics endpoint or tail socket, so a daemon running elsewhere on the machine
//! (a benchmark) does not collide with them; every assertion is scoped to the test's own
//! containers, markers or SSH connection, since such a daemon's workload may log in too.

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use sealwatch_tests::events::{self, check_fields, violation_rule};
use sealwatch_tests::sessions::*;
use sealwatch_tests::sshd::Sshd;
use sealwatch_tests::{require_root, unique_name};

/// `ssh -tt root@127.0.0.1 '<echo>; exit'` to a real sshd (started before the daemon, like a
/// node's): `node-interactive-login` (critical) on the host with a pts terminal and the client's
/// address and port; the command run in it carries the session id; logging out ends it.
#[test]
fn ssh_with_a_terminal_is_a_node_interactive_login() -> Result<()> {
    require_root()?;
    let sshd = Sshd::start()?;
    let mut daemon = start_daemon(&[])?;
    let (marker, typed) = split_marker("sw-ssh-tty");
    let remote_cmd = format!("/bin/echo {typed}; exit");
    let out = sshd.ssh(true, &remote_cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(stdout.contains(&marker), "ssh printed {stdout:?}");
    let remote = ssh_remote(&sshd)?;
    let end = wait_session_end(&mut daemon, "the ssh -tt login", |ev| {
        ev["session"]["remote"] == remote.as_str()
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "ssh",
            rule: NODE_LOGIN,
            severity: "critical",
            user: "0",
            tty: Tty::Pts,
            remote: Some(&remote),
            container: None,
            k8s_audit_id: None,
        },
    )?;
    check_fields(
        &session.start,
        &[("/process/parent_exe", json!("/usr/sbin/sshd"))],
    )?;
    ensure!(
        events::args(&session.start).last() == Some(&remote_cmd.as_str()),
        "the session's first process is not the login shell running {remote_cmd:?}: {}",
        session.start
    );
    check_command_in_session(&session, &["/bin/echo", &marker])?;
    check_sshd_itself_is_no_login(&stopped)?;
    Ok(())
}

/// `ssh root@127.0.0.1 true` without a terminal is a login too: `node-interactive-login`, tty
/// null, the client's address and port.
#[test]
fn ssh_command_without_a_terminal_is_a_node_interactive_login() -> Result<()> {
    require_root()?;
    let sshd = Sshd::start()?;
    let mut daemon = start_daemon(&[])?;
    sshd.ssh(false, "true")?;
    let remote = ssh_remote(&sshd)?;
    let end = wait_session_end(&mut daemon, "the ssh command login", |ev| {
        ev["session"]["remote"] == remote.as_str()
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&end)?,
        &Expected {
            kind: "ssh",
            rule: NODE_LOGIN,
            severity: "critical",
            user: "0",
            tty: Tty::None,
            remote: Some(&remote),
            container: None,
            k8s_audit_id: None,
        },
    )?;
    check_fields(
        &session.start,
        &[("/process/parent_exe", json!("/usr/sbin/sshd"))],
    )?;
    ensure!(
        events::args(&session.start).last() == Some(&"true"),
        "the session's first process is not the shell running `true`: {}",
        session.start
    );
    check_sshd_itself_is_no_login(&stopped)?;
    Ok(())
}

/// `ssh root@127.0.0.1 /bin/echo <marker>`: the login shell execs the command in its own process
/// (bash does for a single command). One login, one session that holds the echo and ends.
#[test]
fn ssh_command_run_by_exec_of_the_login_shell_is_one_session() -> Result<()> {
    require_root()?;
    let sshd = Sshd::start()?;
    let mut daemon = start_daemon(&[])?;
    let marker = unique_name("sw-ssh-reexec");
    let remote_cmd = format!("/bin/echo {marker}");
    let out = sshd.ssh(false, &remote_cmd)?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains(&marker),
        "ssh printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let remote = ssh_remote(&sshd)?;
    let start = wait_session_start(&mut daemon, "the ssh login", |ev| {
        ev["session"]["remote"] == remote.as_str()
    })?;
    wait_session_end(&mut daemon, "the ssh login", |ev| {
        ev["session"]["remote"] == remote.as_str()
    })?;
    let stopped = daemon.stop()?;

    let session = check_session(
        &stopped.events,
        &id_of(&start)?,
        &Expected {
            kind: "ssh",
            rule: NODE_LOGIN,
            severity: "critical",
            user: "0",
            tty: Tty::None,
            remote: Some(&remote),
            container: None,
            k8s_audit_id: None,
        },
    )?;
    ensure!(
        events::args(&session.start).last() == Some(&remote_cmd.as_str()),
        "the session's first process is not the login shell running {remote_cmd:?}: {}",
        session.start
    );
    check_command_in_session(&session, &["/bin/echo", &marker])?;
    let logins: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| violation_rule(ev) == Some(NODE_LOGIN) && args_contain(ev, &marker))
        .collect();
    ensure!(
        logins.len() == 1,
        "{} node-interactive-login lines for one ssh command: {logins:?}",
        logins.len()
    );
    Ok(())
}
