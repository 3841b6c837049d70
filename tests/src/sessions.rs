//! Shared pieces of the never-log-in tests (`tests/logins_*.rs`): the daemon they start, waiting
//! for session lines, and [`check_session`], which checks everything a session must satisfy (one
//! start and one end line agreeing on type, user, tty, remote, container and audit id; the start
//! before every exec carrying its id; exactly one login violation; `commands` equal to the execs
//! carrying the id).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::daemon::{Daemon, Stopped, EVENT_TIMEOUT};
use crate::events::{self, check_fields, is_exec_of, violation_rule};
use crate::pty::Pty;
use crate::runtime::{self, Runtime};
use crate::sshd::Sshd;
use crate::unique_name;

pub const CONTAINER_EXEC: &str = "container-exec";
pub const INTERACTIVE: &str = "interactive-session-in-container";
pub const NODE_LOGIN: &str = "node-interactive-login";
pub const LOGIN_RULES: [&str; 3] = [CONTAINER_EXEC, INTERACTIVE, NODE_LOGIN];
/// The daemon's extra flags in every test here: nothing that another daemon could hold.
pub const DAEMON_FLAGS: [&str; 4] = ["--metrics-addr", "none", "--tail-socket", "none"];
/// What a terminal session may take (a shell prompt, a typed command).
pub const TERMINAL_TIMEOUT: Duration = Duration::from_secs(60);

pub fn start_daemon(extra: &[&str]) -> Result<Daemon> {
    let mut args: Vec<&str> = DAEMON_FLAGS.to_vec();
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

/// A marker and how to type it so that the terminal's echo of the typed line does not contain
/// it: `'sw-x''-123-4'` (the shell joins the quoted halves).
pub fn split_marker(prefix: &str) -> (String, String) {
    let marker = unique_name(prefix);
    let half = prefix.len() / 2;
    let typed = format!("'{}''{}'", &marker[..half], &marker[half..]);
    (marker, typed)
}

pub fn is_session_line(ev: &Value, state: &str) -> bool {
    ev["kind"] == "session" && ev["session"]["state"] == state
}

pub fn session_of(ev: &Value) -> Option<&str> {
    ev["session"]["id"].as_str()
}

pub fn login_rule(ev: &Value) -> Option<&str> {
    violation_rule(ev).filter(|rule| LOGIN_RULES.contains(rule))
}

pub fn args_contain(ev: &Value, needle: &str) -> bool {
    events::args(ev).iter().any(|arg| arg.contains(needle))
}

/// A controlling terminal as the daemon names a pseudo-terminal: `pts/<n>`.
pub fn is_pts(value: &Value) -> bool {
    value
        .as_str()
        .and_then(|tty| tty.strip_prefix("pts/"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Waits for the end line of a session whose line satisfies `matches`.
pub fn wait_session_end(
    daemon: &mut Daemon,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Result<Value> {
    daemon.wait_for(
        &format!("session end line of {what}"),
        EVENT_TIMEOUT,
        |ev| is_session_line(ev, "end") && matches(ev),
    )
}

/// The terminal a session must have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tty {
    /// `null`.
    None,
    /// `pts/<n>`.
    Pts,
}

/// What one session must look like.
pub struct Expected<'a> {
    pub kind: &'a str,
    pub rule: &'a str,
    pub severity: &'a str,
    pub user: &'a str,
    pub tty: Tty,
    pub remote: Option<&'a str>,
    pub container: Option<&'a str>,
    pub k8s_audit_id: Option<&'a str>,
}

/// A session as checked by [`check_session`].
pub struct Session {
    pub id: String,
    /// The start line.
    pub start: Value,
    /// The end line.
    pub end: Value,
    /// Every exec line that carries the id (violation lines of one exec counted once).
    pub execs: Vec<Value>,
}

impl Session {
    /// The exec lines inside the session with exactly this argv.
    pub fn execs_of(&self, argv: &[&str]) -> Vec<&Value> {
        self.execs
            .iter()
            .filter(|ev| is_exec_of(ev, argv))
            .collect()
    }
}

/// Checks session `id` in the whole stream: exactly one start line, then the exec line that
/// opened it (the only login violation of the session, `want.rule`), exactly one end line after
/// it with the same facts, a duration, and a command count equal to the execs carrying the id.
pub fn check_session(events: &[Value], id: &str, want: &Expected<'_>) -> Result<Session> {
    let positions = |state: &str| -> Vec<usize> {
        events
            .iter()
            .enumerate()
            .filter(|(_, ev)| is_session_line(ev, state) && session_of(ev) == Some(id))
            .map(|(i, _)| i)
            .collect()
    };
    let (starts, ends) = (positions("start"), positions("end"));
    if starts.len() != 1 || ends.len() != 1 {
        // Show every session line of the same leader process: what the daemon made of it.
        let leader = starts
            .iter()
            .chain(&ends)
            .map(|&i| events[i]["process"]["pid"].clone())
            .next();
        let related: Vec<String> = events
            .iter()
            .filter(|ev| {
                ev["kind"] == "session"
                    && (session_of(ev) == Some(id)
                        || leader
                            .as_ref()
                            .is_some_and(|pid| ev["process"]["pid"] == *pid))
            })
            .map(Value::to_string)
            .collect();
        bail!(
            "session {id}: {} start lines and {} end lines, expected one of each; session lines \
             of this id or its leader's pid:\n{}",
            starts.len(),
            ends.len(),
            related.join("\n")
        );
    }
    let (start_at, end_at) = (starts[0], ends[0]);
    let (start, end) = (&events[start_at], &events[end_at]);

    let tty = start["session"]["tty"].clone();
    match want.tty {
        Tty::None => ensure!(tty.is_null(), "session {id} has a terminal: {start}"),
        Tty::Pts => ensure!(is_pts(&tty), "session {id} has no pts terminal: {start}"),
    }
    let container = match want.container {
        Some(cid) => ("/container/id", json!(cid)),
        None => ("/container", Value::Null),
    };
    let common = [
        ("/session/type", json!(want.kind)),
        ("/session/user", json!(want.user)),
        ("/session/tty", tty.clone()),
        ("/session/remote", json!(want.remote)),
        container.clone(),
    ];
    for (line, state) in [(start, "start"), (end, "end")] {
        check_fields(line, &common)
            .and_then(|()| check_fields(line, &[("/session/state", json!(state))]))
            .with_context(|| format!("session {id}, {state} line"))?;
        ensure!(
            line.get("violation").is_none(),
            "a session line carries a violation: {line}"
        );
        match want.k8s_audit_id {
            Some(audit) => check_fields(line, &[("/session/k8s_audit_id", json!(audit))])?,
            None => ensure!(
                line["session"].get("k8s_audit_id").is_none(),
                "session {id} has a k8s_audit_id nobody set: {line}"
            ),
        }
    }
    ensure!(
        start["session"].get("duration_seconds").is_none()
            && start["session"].get("commands").is_none(),
        "the start line already has a duration or command count: {start}"
    );

    // The exec lines carrying the id, in order; the opening one is the only login violation.
    let lines: Vec<(usize, &Value)> = events
        .iter()
        .enumerate()
        .filter(|(_, ev)| events::is_exec(ev) && session_of(ev) == Some(id))
        .collect();
    let logins: Vec<&(usize, &Value)> = lines
        .iter()
        .filter(|(_, ev)| login_rule(ev).is_some())
        .collect();
    ensure!(
        logins.len() == 1,
        "session {id}: {} exec lines with a login rule, expected exactly the opening one: {logins:?}",
        logins.len()
    );
    let (open_at, open) = *logins[0];
    check_fields(
        open,
        &[
            ("/violation/rule", json!(want.rule)),
            ("/violation/severity", json!(want.severity)),
            ("/process/pid", start["process"]["pid"].clone()),
            ("/process/args", start["process"]["args"].clone()),
            ("/process/tty", tty.clone()),
            ("/process/uid", json!(want.user.parse::<u32>()?)),
            container,
        ],
    )
    .with_context(|| format!("the exec line that opened session {id}"))?;
    ensure!(
        lines.iter().all(|(at, _)| *at > start_at),
        "an exec line of session {id} comes before its start line (line {start_at})"
    );
    ensure!(
        end_at > open_at,
        "session {id} ends (line {end_at}) before the exec that opened it (line {open_at})"
    );

    // One exec may be printed once per violation: count each exec once.
    let mut seen = BTreeSet::new();
    let execs: Vec<Value> = lines
        .iter()
        .filter(|(_, ev)| {
            seen.insert((
                ev["process"]["pid"].to_string(),
                ev["time"].to_string(),
                ev["process"]["args"].to_string(),
            ))
        })
        .map(|(_, ev)| (*ev).clone())
        .collect();
    let duration = end["session"]["duration_seconds"].as_f64();
    ensure!(
        duration.is_some_and(|d| d.is_finite() && d >= 0.0),
        "session {id} end has no valid duration_seconds: {end}"
    );
    check_fields(end, &[("/session/commands", json!(execs.len()))]).with_context(|| {
        format!(
            "session {id}: commands must count the {} execs that carry its id: {:?}",
            execs.len(),
            execs.iter().map(events::args).collect::<Vec<_>>()
        )
    })?;
    Ok(Session {
        id: id.to_owned(),
        start: start.clone(),
        end: end.clone(),
        execs,
    })
}

/// Checks that `argv` was executed exactly once in `session`, on its terminal, without a
/// violation of its own.
pub fn check_command_in_session(session: &Session, argv: &[&str]) -> Result<()> {
    let found = session.execs_of(argv);
    ensure!(
        found.len() == 1,
        "{argv:?} should run once in session {}, found {} exec lines with its id",
        session.id,
        found.len()
    );
    check_fields(
        found[0],
        &[
            ("/process/tty", session.start["session"]["tty"].clone()),
            ("/container", session.start["container"].clone()),
        ],
    )?;
    ensure!(
        login_rule(found[0]).is_none(),
        "a command inside session {} is a login of its own: {}",
        session.id,
        found[0]
    );
    Ok(())
}

/// The exec lines of `argv` anywhere in the stream, requiring at least one.
pub fn execs_of<'a>(stopped: &'a Stopped, argv: &[&str]) -> Result<Vec<&'a Value>> {
    let found: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| is_exec_of(ev, argv))
        .collect();
    ensure!(!found.is_empty(), "no exec line of {argv:?}");
    Ok(found)
}

/// The session id of a (start or end) line.
pub fn id_of(line: &Value) -> Result<String> {
    session_of(line)
        .map(str::to_owned)
        .with_context(|| format!("no session.id in {line}"))
}

pub fn random_uuid() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading a random uuid")?
        .trim()
        .to_owned())
}

/// Removes a podman container by name when dropped (containers started outside `runtime`).
pub struct RemoveOnDrop(pub &'static str, pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0 == "podman" {
            runtime::remove_quietly(Runtime::Podman, &self.1);
        }
    }
}

/// Types a command line into the shell on `pty` and waits until it printed `marker`.
pub fn type_and_wait(pty: &mut Pty, line: &str, marker: &str) -> Result<()> {
    pty.send(&format!("{line}\n"))?;
    pty.wait_for_output(marker, TERMINAL_TIMEOUT)
}

/// The client port of the one connection `sshd` accepted, as `127.0.0.1:<port>`.
pub fn ssh_remote(sshd: &Sshd) -> Result<String> {
    let ports = sshd.accepted_ports();
    ensure!(
        ports.len() == 1,
        "sshd accepted {} connections, expected one; its log:\n{}",
        ports.len(),
        sshd.log()
    );
    Ok(format!("127.0.0.1:{}", ports[0]))
}

/// sshd's own processes (the listener, its per-connection re-exec) are not logins.
pub fn check_sshd_itself_is_no_login(stopped: &Stopped) -> Result<()> {
    let own: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| ev["process"]["exe"] == "/usr/sbin/sshd" && login_rule(ev).is_some())
        .collect();
    ensure!(own.is_empty(), "sshd itself reported as a login: {own:?}");
    Ok(())
}

/// The first line of the session whose start line satisfies `matches`, once it is printed.
pub fn wait_session_start(
    daemon: &mut Daemon,
    what: &str,
    matches: impl Fn(&Value) -> bool,
) -> Result<Value> {
    daemon.wait_for(
        &format!("session start line of {what}"),
        EVENT_TIMEOUT,
        |ev| is_session_line(ev, "start") && matches(ev),
    )
}
