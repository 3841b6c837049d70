//! `sealwatch learn`: the real daemon in learning mode, which watches for `--duration` and then
//! writes one complete policy file per image into `--output DIR` and exits.
//!
//! [`Learn::start`] waits, like [`crate::daemon::Daemon::start`], for the log line
//! [`READY_MARKER`] (learn takes the flags of `run`, and starts the same way); [`Learn::finish`]
//! waits for the exit and requires exit status 0. Stderr is copied to
//! `<target>/sealwatch-tests/logs/learn-<pid>-<n>.log`, and its tail is part of every error. A
//! [`Learn`] dropped before it finished is killed.

use std::path::PathBuf;
use std::process::Child;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::cmd;
use crate::daemon::{lock, spawn, Lines, Spawned, READY_MARKER, READY_TIMEOUT};

/// A running `sealwatch learn`.
pub struct Learn {
    child: Child,
    line: String,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    log_path: PathBuf,
}

/// What a finished `sealwatch learn` printed.
#[derive(Debug)]
pub struct Learned {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Learn {
    /// Starts `sealwatch learn <extra...>` as root and waits until it logs [`READY_MARKER`].
    pub fn start(extra: &[&str]) -> Result<Learn> {
        let Spawned {
            child,
            line,
            stdout,
            stderr,
            readers,
            log_path,
        } = spawn("learn", extra, "learn")?;
        let mut learn = Learn {
            child,
            line,
            stdout,
            stderr,
            readers,
            log_path,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if lock(&learn.stderr).iter().any(|l| l.contains(READY_MARKER)) {
                return Ok(learn);
            }
            if let Some(status) = learn.child.try_wait().context("checking sealwatch learn")? {
                learn.join_readers();
                bail!(
                    "`{}` exited with {status} before logging {READY_MARKER:?}\n{}",
                    learn.line,
                    learn.tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "`{}` did not log {READY_MARKER:?} within {READY_TIMEOUT:?}\n{}",
                    learn.line,
                    learn.tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits at most `timeout` for the exit (after its `--duration`); requires exit status 0.
    pub fn finish(mut self, timeout: Duration) -> Result<Learned> {
        let Some(status) = cmd::wait_timeout(&mut self.child, timeout)? else {
            bail!(
                "`{}` did not exit within {timeout:?}\n{}",
                self.line,
                self.tail()
            );
        };
        self.join_readers();
        ensure!(
            status.code() == Some(0),
            "`{}` exited with {status}, expected exit status 0\n{}",
            self.line,
            self.tail()
        );
        Ok(Learned {
            stdout: lock(&self.stdout).clone(),
            stderr: lock(&self.stderr).clone(),
        })
    }

    /// After the exit: lets the readers take in the last lines (bounded: a grandchild may hold
    /// the pipes).
    fn join_readers(&mut self) {
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

    fn tail(&self) -> String {
        let tail = |lines: &Lines, n: usize| {
            let lines = lock(lines);
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        format!(
            "--- learn stderr (last 30 lines; full log {}):\n{}\n--- learn stdout (last 20 lines):\n{}",
            self.log_path.display(),
            tail(&self.stderr, 30),
            tail(&self.stdout, 20)
        )
    }
}

impl Drop for Learn {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!(
                "`{}` dropped before it finished:\n{}",
                self.line,
                self.tail()
            );
        }
    }
}
