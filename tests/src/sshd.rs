//! A real OpenSSH server on a loopback port, with key authentication set up by the test.
//!
//! [`Sshd::start`] generates an ed25519 host key and client key in a temporary directory, writes
//! an `sshd_config` (`ListenAddress 127.0.0.1`, root login with the client key only, no PAM, no
//! strict modes), picks a free port and runs `/usr/sbin/sshd -D -e` with its log on a file of that
//! directory. [`Sshd::ssh`] runs the OpenSSH client against it (`BatchMode`, no known-hosts file,
//! no user config). The server is stopped (SIGTERM, then SIGKILL) when the [`Sshd`] is dropped.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cmd;

/// The OpenSSH server binary (Debian's `openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";
/// sshd's privilege-separation directory; it refuses to start without it.
pub const PRIVSEP_DIR: &str = "/run/sshd";
/// How long sshd may take to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one `ssh` command may take.
pub const SSH_TIMEOUT: Duration = Duration::from_secs(60);

/// A running sshd on `127.0.0.1:<port>`.
pub struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
    client_key: PathBuf,
}

impl Sshd {
    /// Generates keys and a config, starts sshd on a free loopback port and waits until it
    /// accepts connections.
    pub fn start() -> Result<Sshd> {
        crate::require_root()?;
        ensure!(
            Path::new(SSHD).is_file(),
            "{SSHD} not found: install openssh-server (and openssh-client) to run the SSH tests"
        );
        std::fs::create_dir_all(PRIVSEP_DIR).with_context(|| format!("creating {PRIVSEP_DIR}"))?;
        std::fs::set_permissions(PRIVSEP_DIR, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {PRIVSEP_DIR}"))?;
        let dir = tempfile::Builder::new()
            .prefix("sw-sshd-")
            .tempdir()
            .context("creating the sshd tempdir")?;
        let host_key = dir.path().join("host_key");
        let client_key = dir.path().join("client_key");
        for key in [&host_key, &client_key] {
            cmd::ok(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "sealwatch-test",
                    "-f",
                    path_str(key)?,
                ],
            )?;
        }
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized)
            .context("writing authorized_keys")?;
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 HostKey {host}\n\
                 PermitRootLogin yes\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 AuthorizedKeysFile {authorized}\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PidFile {pid}\n",
                host = host_key.display(),
                authorized = authorized.display(),
                pid = dir.path().join("sshd.pid").display(),
            ),
        )
        .context("writing sshd_config")?;
        let port = free_port()?;
        let log = dir.path().join("sshd.log");
        let log_file = File::create(&log).context("creating the sshd log")?;
        let port_arg = port.to_string();
        let mut command = Command::new(SSHD);
        command
            .args(["-D", "-e", "-f", path_str(&config)?, "-p", &port_arg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let line = cmd::describe(&command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start `{line}`"))?;
        let mut sshd = Sshd {
            child,
            port,
            dir,
            log,
            client_key,
        };
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let mut exited = None;
        let up = cmd::poll_until(START_TIMEOUT, || {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                exited = Some(status);
                return true;
            }
            TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)).is_ok()
        });
        if let Some(status) = exited {
            bail!("`{line}` exited with {status}; its log:\n{}", sshd.log());
        }
        ensure!(
            up,
            "`{line}` did not accept connections on {addr} within {START_TIMEOUT:?}; its log:\n{}",
            sshd.log()
        );
        Ok(sshd)
    }

    /// The loopback port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// sshd's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding keys, config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd's log (stderr) so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The client ports of the connections sshd accepted so far, in order (from its log lines
    /// `Accepted publickey for root from 127.0.0.1 port <port> ssh2: ...`).
    pub fn accepted_ports(&self) -> Vec<u16> {
        self.log()
            .lines()
            .filter_map(|line| {
                let rest = line.split("Accepted publickey for ").nth(1)?;
                let rest = rest.split(" port ").nth(1)?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    /// `ssh [-tt] root@127.0.0.1 <remote>` as a command (stdin closed), with the test's key.
    pub fn ssh_command(&self, tty: bool, remote: &str) -> Result<Command> {
        let port = self.port.to_string();
        let mut args = vec![
            "-F",
            "/dev/null",
            "-i",
            path_str(&self.client_key)?,
            "-p",
            &port,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ];
        if tty {
            args.push("-tt");
        } else {
            args.push("-T");
        }
        args.extend(["root@127.0.0.1", remote]);
        Ok(cmd::command("ssh", &args))
    }

    /// Runs [`Sshd::ssh_command`] to completion and requires exit status 0; returns its output.
    pub fn ssh(&self, tty: bool, remote: &str) -> Result<Output> {
        let mut command = self.ssh_command(tty, remote)?;
        let line = cmd::describe(&command);
        let out = cmd::run(&mut command, SSH_TIMEOUT)?;
        ensure!(
            out.status.success(),
            "`{line}` failed with {}:\nstdout: {}\nstderr: {}\nsshd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim(),
            self.log()
        );
        Ok(out)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            if !matches!(
                cmd::wait_timeout(&mut self.child, Duration::from_secs(5)),
                Ok(Some(_))
            ) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr().context("reading the port")?.port())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path {} is not UTF-8", path.display()))
}
