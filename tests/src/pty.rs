//! A real pseudo-terminal driven by the test: the child runs with the pty's slave as its stdin,
//! stdout, stderr and controlling terminal (new session, `TIOCSCTTY`), exactly like a program
//! started from a terminal emulator or an SSH client. The test types into the master
//! ([`Pty::send`]) and reads what the terminal shows ([`Pty::wait_for_output`]).
//!
//! The terminal echoes what is typed, so to wait for the result of a command rather than its echo,
//! type the expected text split by quotes (`/bin/echo 'ab''cd'` prints `abcd`, echoes `'ab''cd'`).
//!
//! A [`Pty`] dropped while its child runs kills the child.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd;

type Buffer = Arc<Mutex<Vec<u8>>>;

/// A child process on a pseudo-terminal.
pub struct Pty {
    child: Child,
    line: String,
    writer: File,
    output: Buffer,
    reader: Option<JoinHandle<()>>,
}

impl Pty {
    /// Opens a pty (80x24) and starts `program args...` on it as a session leader with the pty as
    /// its controlling terminal.
    pub fn spawn(program: &str, args: &[&str]) -> Result<Pty> {
        let (master, slave) = open_pty()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::from(
                slave.try_clone().context("duplicating the pty slave")?,
            ))
            .stdout(Stdio::from(
                slave.try_clone().context("duplicating the pty slave")?,
            ))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let line = cmd::describe(&command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start `{line}` on a pty"))?;
        // The slave copies went to the child (and are closed here with `command`): when the child
        // and everything it started close the terminal, reads of the master end.
        drop(command);
        let master = File::from(master);
        let writer = master.try_clone().context("duplicating the pty master")?;
        let output: Buffer = Arc::default();
        let reader = Some(read_all(master, Arc::clone(&output)));
        Ok(Pty {
            child,
            line,
            writer,
            output,
            reader,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `text` into the terminal (add `\n` to press return).
    pub fn send(&mut self, text: &str) -> Result<()> {
        self.writer
            .write_all(text.as_bytes())
            .and_then(|()| self.writer.flush())
            .with_context(|| format!("typing {text:?} into `{}`", self.line))
    }

    /// Everything the terminal showed so far (lossy UTF-8).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&lock(&self.output)).into_owned()
    }

    /// Waits until the terminal shows `needle`; fails after `timeout` or when the child exits
    /// first, with what the terminal showed.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().context("checking the pty child")? {
                // The last output may still be in flight.
                thread::sleep(Duration::from_millis(200));
                if self.output().contains(needle) {
                    return Ok(());
                }
                bail!(
                    "`{}` exited with {status} before the terminal showed {needle:?}; it showed:\n{}",
                    self.line,
                    self.output()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the terminal of `{}` did not show {needle:?} within {timeout:?}; it showed:\n{}",
                    self.line,
                    self.output()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the child to exit; fails after `timeout` (the child is then killed on drop).
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match cmd::wait_timeout(&mut self.child, timeout)? {
            Some(status) => Ok(status),
            None => bail!(
                "`{}` did not exit within {timeout:?}; the terminal showed:\n{}",
                self.line,
                self.output()
            ),
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader ends when the last holder of the slave closes it; do not wait for that
        // (a grandchild may hold it).
        if let Some(reader) = self.reader.take() {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

/// `openpty(3)` with both ends close-on-exec (the child gets the slave through its stdio only).
fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid out-pointers; a null name and termios are allowed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("openpty");
    }
    // SAFETY: openpty succeeded, so both are open descriptors that nothing else owns.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [&master, &slave] {
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            return Err(std::io::Error::last_os_error()).context("setting FD_CLOEXEC on the pty");
        }
    }
    Ok((master, slave))
}

/// Copies the master's output into `into` until the terminal is closed (EIO) or fails.
fn read_all(mut master: File, into: Buffer) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => lock(&into).extend_from_slice(&buf[..n]),
            }
        }
    })
}

fn lock(buffer: &Buffer) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buffer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
