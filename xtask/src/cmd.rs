//! A tiny helper to run commands: each one is echoed as `==> cmd args` before it runs, and a
//! failure becomes an error naming the command and its exit code (or signal).

use std::io::Write as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{anyhow, bail, Context as _, Result};

/// Runs `cmd` with inherited stdio, echoing it first.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = echo(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    check(&shown, status)
}

/// Like [`run`], but keeps stderr so that a failure's error carries its last lines (for tools
/// such as apt-get whose reason for failing is an `E: ...` line). Stdout stays live; stderr is
/// replayed once the command has finished.
pub fn run_keeping_stderr(cmd: &mut Command) -> Result<()> {
    let shown = echo(cmd);
    let out = cmd
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    // Best effort: the error below carries the part that matters.
    let _ = std::io::stderr().write_all(&out.stderr);
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(8)..].join("\n  ");
    bail!("`{shown}` failed with {}:\n  {tail}", describe(out.status))
}

/// Runs `cmd` quietly and returns its stdout if it ran and succeeded: for probing the machine
/// ("is X installed?"), so it is not echoed.
pub fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `cmd` quietly and returns its stdout; a failure is an error carrying its stderr.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let shown = display(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        bail!(
            "`{shown}` failed with {}: {}",
            describe(out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces this process with `cmd` (so signals reach it directly). Returns only on failure.
pub fn exec(cmd: &mut Command) -> anyhow::Error {
    let shown = echo(cmd);
    let err = cmd.exec();
    anyhow!(err).context(format!("could not exec `{shown}`"))
}

fn echo(cmd: &Command) -> String {
    let shown = display(cmd);
    println!("==> {shown}");
    // Keep the echo ahead of the child's output when stdout is a pipe (CI logs).
    let _ = std::io::stdout().flush();
    shown
}

fn check(shown: &str, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("`{shown}` failed with {}", describe(status))
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => format!("status {status}"),
    }
}

/// `VAR=value program args`, quoted where a shell would need it.
fn display(cmd: &Command) -> String {
    let envs = cmd.get_envs().filter_map(|(k, v)| {
        v.map(|v| format!("{}={}", k.to_string_lossy(), quote(&v.to_string_lossy())))
    });
    let program = std::iter::once(quote(&cmd.get_program().to_string_lossy()));
    let args = cmd.get_args().map(|a| quote(&a.to_string_lossy()));
    envs.chain(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
