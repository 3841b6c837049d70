//! The real daemon: `$SEALWATCH_BIN run ...` with its JSON event stream on stdout and its
//! `tracing` logs on stderr.
//!
//! [`Daemon::start`] waits for the log line `sealwatch ready` (printed once every program is
//! attached). Stdout lines are collected on a thread; [`Daemon::wait_for`] polls them. Stderr is
//! copied to `<target>/sealwatch-tests/logs/daemon-<pid>-<n>.log` and its tail is part of every
//! error. [`Daemon::stop`] sends SIGTERM, requires exit status 0 and validates EVERY stdout line
//! against the event schema. A daemon dropped without `stop` (the test failed) is killed and its
//! stderr tail is printed.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cmd;

/// The log line that says every program is attached.
pub const READY_MARKER: &str = "sealwatch ready";
/// How long the daemon may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the daemon may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// A generous default for [`Daemon::wait_for`]: events normally arrive within milliseconds.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) type Lines = Arc<Mutex<Vec<String>>>;

/// A running daemon.
pub struct Daemon {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    log_path: PathBuf,
    stopped: bool,
    tail_reported: Cell<bool>,
}

/// What a stopped daemon printed.
#[derive(Debug)]
pub struct Stopped {
    /// Every stdout line, in order.
    pub lines: Vec<String>,
    /// The same lines parsed (every one validated against the schema).
    pub events: Vec<Value>,
    /// Every stderr line.
    pub stderr: Vec<String>,
}

/// The daemon binary: `$SEALWATCH_BIN`, else `<target>/release/sealwatch`; fails when missing.
pub fn daemon_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("SEALWATCH_BIN") {
        Some(path) => PathBuf::from(path),
        None => crate::target_dir().join("release/sealwatch"),
    };
    ensure!(
        path.is_file(),
        "daemon binary {} not found: build it with `cargo build --release -p sealwatch` \
         (or `cargo xtask test`), or point $SEALWATCH_BIN at it",
        path.display()
    );
    Ok(path)
}

/// A started `sealwatch <subcommand>`: its stdout and stderr are collected line by line by
/// reader threads, and stderr is also copied to `log_path`.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    /// The command line, for messages.
    pub(crate) line: String,
    pub(crate) stdout: Lines,
    pub(crate) stderr: Lines,
    pub(crate) readers: Vec<JoinHandle<()>>,
    pub(crate) log_path: PathBuf,
}

/// Starts `sealwatch <subcommand> <extra...>` as root, its stderr copied to
/// `<artifacts>/logs/<log_name>-<pid>-<n>.log`.
pub(crate) fn spawn(subcommand: &str, extra: &[&str], log_name: &str) -> Result<Spawned> {
    crate::require_root()?;
    let mut command = Command::new(daemon_bin()?);
    command.arg(subcommand).args(extra).env("NO_COLOR", "1");
    spawn_command(command, log_name)
}

/// Starts `command` (the daemon, or something that runs it: `podman run`) with its stdout and
/// stderr collected, stderr also copied to `<artifacts>/logs/<log_name>-<pid>-<n>.log`.
fn spawn_command(mut command: Command, log_name: &str) -> Result<Spawned> {
    let logs = crate::artifacts_dir()?.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log_path = logs.join(format!("{}.log", crate::unique_name(log_name)));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let line = cmd::describe(&command);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{line}`"))?;
    let (stdout, stderr): (Lines, Lines) = (Arc::default(), Arc::default());
    let mut readers = Vec::new();
    if let Some(pipe) = child.stdout.take() {
        readers.push(collect_lines(pipe, Arc::clone(&stdout), None));
    }
    if let Some(pipe) = child.stderr.take() {
        readers.push(collect_lines(pipe, Arc::clone(&stderr), Some(log)));
    }
    Ok(Spawned {
        child,
        line,
        stdout,
        stderr,
        readers,
        log_path,
    })
}

impl Daemon {
    /// Starts `sealwatch run <extra...>` as root and waits until it logs [`READY_MARKER`].
    pub fn start(extra: &[&str]) -> Result<Daemon> {
        Daemon::ready(spawn("run", extra, "daemon")?)
    }

    /// Runs the daemon through `command` (say, `podman run` of the shipped image, attached so
    /// that its stdout and stderr are the daemon's and SIGTERM reaches it) and waits until it
    /// logs [`READY_MARKER`].
    pub fn start_command(command: Command) -> Result<Daemon> {
        crate::require_root()?;
        Daemon::ready(spawn_command(command, "daemon")?)
    }

    fn ready(spawned: Spawned) -> Result<Daemon> {
        let Spawned {
            child,
            line,
            stdout,
            stderr,
            readers,
            log_path,
        } = spawned;
        let mut daemon = Daemon {
            child,
            stdout,
            stderr,
            readers,
            log_path,
            stopped: false,
            tail_reported: Cell::new(false),
        };
        daemon.wait_ready(&line)?;
        Ok(daemon)
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr (log) line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.stdout).clone()
    }

    /// Every stdout line so far that parses as JSON (validation happens at [`Daemon::stop`]).
    pub fn events(&self) -> Vec<Value> {
        lock(&self.stdout)
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until a stdout event (since the start) satisfies `matches`, and returns it. Fails after
    /// `timeout`, or when the daemon exits, with `description` and the last lines seen.
    pub fn wait_for(
        &mut self,
        description: &str,
        timeout: Duration,
        mut matches: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut next = 0;
        loop {
            let new: Vec<String> = lock(&self.stdout)[next..].to_vec();
            next += new.len();
            for line in &new {
                if let Ok(event) = serde_json::from_str::<Value>(line) {
                    if matches(&event) {
                        return Ok(event);
                    }
                }
            }
            if let Some(status) = self.child.try_wait().context("checking the daemon")? {
                self.settle_readers();
                bail!(
                    "daemon exited with {status} while waiting for {description}\n{}",
                    self.context_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "no {description} within {timeout:?}\n{}",
                    self.context_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM, requires exit status 0 within [`STOP_TIMEOUT`], and validates every stdout
    /// line against the event schema.
    pub fn stop(mut self) -> Result<Stopped> {
        self.stopped = true;
        let pid = Pid::from_raw(i32::try_from(self.pid()).context("pid out of range")?);
        if self
            .child
            .try_wait()
            .context("checking the daemon")?
            .is_none()
        {
            kill(pid, Signal::SIGTERM).context("sending SIGTERM to the daemon")?;
        }
        let Some(status) = cmd::wait_timeout(&mut self.child, STOP_TIMEOUT)? else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!(
                "daemon did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                self.context_tail()
            );
        };
        self.settle_readers();
        ensure!(
            status.code() == Some(0),
            "daemon exited with {status} after SIGTERM, expected exit status 0\n{}",
            self.context_tail()
        );
        let lines = lock(&self.stdout).clone();
        let events = crate::schema::check_lines(&lines)
            .with_context(|| format!("daemon log: {}", self.log_path.display()))?;
        Ok(Stopped {
            lines,
            events,
            stderr: lock(&self.stderr).clone(),
        })
    }

    fn wait_ready(&mut self, line: &str) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if lock(&self.stderr).iter().any(|l| l.contains(READY_MARKER)) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().context("checking the daemon")? {
                self.settle_readers();
                bail!(
                    "`{line}` exited with {status} before logging {READY_MARKER:?}\n{}",
                    self.context_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "`{line}` did not log {READY_MARKER:?} within {READY_TIMEOUT:?}\n{}",
                    self.context_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// After the daemon exited: lets the reader threads take in the last lines (the pipes close
    /// at exit; bounded in case some other process inherited them) and joins them.
    fn settle_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for reader in std::mem::take(&mut self.readers) {
            if reader.is_finished() {
                // A reader panic only loses log lines.
                let _ = reader.join();
            }
        }
    }

    /// The last stderr and stdout lines, for error messages (the Drop then does not repeat them).
    fn context_tail(&self) -> String {
        self.tail_reported.set(true);
        format!(
            "--- daemon stderr (last 30 lines; full log {}):\n{}\n--- daemon stdout (last 20 lines):\n{}",
            self.log_path.display(),
            tail(&lock(&self.stderr), 30),
            tail(&lock(&self.stdout), 20)
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !self.stopped && !self.tail_reported.get() {
            eprintln!(
                "daemon (pid {}) dropped without stop():\n{}",
                self.child.id(),
                self.context_tail()
            );
        }
    }
}

pub(crate) fn collect_lines<R: std::io::Read + Send + 'static>(
    pipe: R,
    into: Lines,
    mut copy: Option<File>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if let Some(file) = copy.as_mut() {
                // The copy is for humans; losing it must not stop the collection.
                let _ = file.write_all(&buf).and_then(|()| file.write_all(b"\n"));
            }
            // Invalid UTF-8 is kept visible (and fails schema validation) instead of dropped.
            let line = String::from_utf8(buf.clone())
                .unwrap_or_else(|e| format!("<not UTF-8: {:?}>", e.as_bytes()));
            lock(&into).push(line);
        }
    })
}

pub(crate) fn lock(lines: &Lines) -> std::sync::MutexGuard<'_, Vec<String>> {
    // A poisoned lock only means a reader thread panicked; the lines are still there.
    lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}
