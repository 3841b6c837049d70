//! Run external commands (podman, docker, ctr, tar, the daemon) with a timeout and an error message
//! that shows the command line, its exit status and its stderr.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The default timeout for one runtime command (`podman run`, `docker exec`, ...).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// `program args...` as a [`Command`] with stdin closed.
pub fn command<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// The command line of `cmd`, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` to completion, capturing stdout and stderr. Kills it and fails after `timeout`.
/// A non-zero exit status is NOT an error here: see [`run_ok`].
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let line = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}` (is it installed and on PATH?)"))?;
    let stdout = read_all_in_thread(child.stdout.take());
    let stderr = read_all_in_thread(child.stderr.take());
    let status = match wait_timeout(&mut child, timeout)? {
        Some(status) => status,
        None => {
            // Best effort: the error below is what matters.
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            bail!(
                "`{line}` did not finish within {timeout:?} and was killed; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs `cmd` and requires exit status 0; returns its stdout with surrounding whitespace trimmed.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<String> {
    let line = describe(cmd);
    let out = run(cmd, timeout)?;
    if !out.status.success() {
        bail!(
            "`{line}` failed with {}:\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Shorthand for [`run_ok`] of `program args...` with [`DEFAULT_TIMEOUT`].
pub fn ok<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> Result<String> {
    run_ok(&mut command(program, args), DEFAULT_TIMEOUT)
}

/// True when `program args...` exits 0 within `timeout` (errors and timeouts count as false).
pub fn succeeds<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S], timeout: Duration) -> bool {
    run(&mut command(program, args), timeout).is_ok_and(|out| out.status.success())
}

/// Waits for `child` for at most `timeout`; `None` when it is still running then.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for a child process")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `probe` every 200 ms until it returns true or `timeout` passes; returns whether it did.
pub fn poll_until(timeout: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if probe() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The last `n` lines of a text file, for error messages ("" when it cannot be read).
pub fn file_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads a pipe to its end on a thread. The result is taken with a timeout: a grandchild that
/// inherited the pipe (a daemonising runtime helper) must not hang the test.
struct PipeReader(mpsc::Receiver<Vec<u8>>);

impl PipeReader {
    fn join(self) -> Option<Vec<u8>> {
        self.0.recv_timeout(Duration::from_secs(10)).ok()
    }
}

fn read_all_in_thread<R: Read + Send + 'static>(pipe: Option<R>) -> PipeReader {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error only truncates what the error message can show.
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    PipeReader(rx)
}
