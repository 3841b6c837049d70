//! Live tail: the daemon's tail socket is root-only, `sealwatch tail` filters on the daemon's
//! side, and a client that stops reading never slows the daemon: its lines are skipped and it is
//! told how many once it reads again.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use sealwatch_tests::capture::fresh_dir;
use sealwatch_tests::daemon::{daemon_bin, Daemon, EVENT_TIMEOUT};
use sealwatch_tests::events::is_exec_of;
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

/// `sealwatch tail` as a child whose stdout lines are collected.
struct TailClient {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl TailClient {
    fn start(socket: &Path, filter: &[&str]) -> Result<TailClient> {
        let mut child = Command::new(daemon_bin()?)
            .arg("tail")
            .arg("--tail-socket")
            .arg(socket)
            .args(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting sealwatch tail")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().context("tail stdout")?;
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Ok(TailClient { child, lines })
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a line satisfies `pred`.
    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<()> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while Instant::now() < deadline {
            let found = self
                .lines()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|v| pred(&v));
            if found {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "tail client never printed {what}; it printed:\n{}",
            self.lines().join("\n")
        )
    }
}

impl Drop for TailClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_socket_is_root_only_and_tail_filters_on_the_daemon_side() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let dir = fresh_dir("sw-tail")?;
    let socket = dir.join("run/sealwatch/tail.sock");
    let mut daemon = Daemon::start(&[
        "--tail-socket",
        socket.to_str().unwrap(),
        "--metrics-addr",
        "none",
    ])?;

    let meta = std::fs::metadata(&socket)?;
    ensure!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        socket.display()
    );
    ensure!(
        meta.permissions().mode() & 0o777 == 0o600,
        "socket mode {:o}",
        meta.permissions().mode()
    );
    ensure!(meta.uid() == 0, "socket owner {}", meta.uid());
    let parent = std::fs::metadata(socket.parent().unwrap())?;
    ensure!(
        parent.permissions().mode() & 0o777 == 0o700,
        "dir mode {:o}",
        parent.permissions().mode()
    );

    let c = rt.run_detached(&unique_name("sw-tail"), &["sleep", "300"])?;
    let client = TailClient::start(&socket, &["--container", &c.name, "--kind", "exec"])?;
    // The client subscribes asynchronously: probe until its first line arrives.
    let probe = unique_name("sw-tail-probe");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        c.exec(&["/bin/echo", &probe])?;
        if client.lines().iter().any(|l| l.contains(&probe)) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the tail client never saw the probe"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let inside = unique_name("sw-tail-in");
    let outside = unique_name("sw-tail-out");
    c.exec(&["/bin/echo", &inside])?;
    Command::new("/bin/echo").arg(&outside).output()?;
    client.wait_for("the container's marker exec", |v| {
        is_exec_of(v, &["/bin/echo", &inside])
    })?;
    daemon.wait_for("the host marker exec", EVENT_TIMEOUT, |v| {
        is_exec_of(v, &["/bin/echo", &outside])
    })?;
    std::thread::sleep(Duration::from_millis(500));
    drop(c);
    let tailed = client.lines();
    drop(client);
    let stopped = daemon.stop()?;

    ensure!(
        !tailed.iter().any(|l| l.contains(&outside)),
        "a host exec passed the container filter"
    );
    for line in &tailed {
        let v: Value = serde_json::from_str(line)?;
        ensure!(v["kind"] == "exec", "{line}");
        ensure!(v["container"]["id"].as_str().is_some(), "{line}");
        // Tail lines are the daemon's own lines, byte for byte.
        ensure!(
            stopped.lines.contains(line),
            "tail printed a line stdout did not: {line}"
        );
    }
    sealwatch_tests::schema::check_lines(&tailed)?;
    Ok(())
}

#[test]
fn a_stalled_client_never_stalls_the_daemon_and_learns_what_it_missed() -> Result<()> {
    let dir = fresh_dir("sw-tail-stall")?;
    let socket = dir.join("tail.sock");
    let mut daemon = Daemon::start(&[
        "--tail-socket",
        socket.to_str().unwrap(),
        "--tail-queue",
        "64",
        "--metrics-addr",
        "none",
    ])?;
    // A client that subscribes to everything and then does not read.
    let mut stalled = UnixStream::connect(&socket)?;
    stalled.write_all(b"{}\n")?;
    let mut reader = BufReader::new(stalled.try_clone()?);
    let mut hello = String::new();
    reader.read_line(&mut hello)?;
    ensure!(hello.contains("\"tail-subscribed\""), "{hello}");

    // Far more than the socket buffer plus the queue of 64 lines.
    let marker = unique_name("sw-stall");
    let script = format!("i=0; while [ $i -lt 3000 ]; do /bin/true {marker}; i=$((i+1)); done");
    let status = Command::new("/bin/sh").args(["-c", &script]).status()?;
    ensure!(status.success());
    // The daemon is not held up: a fresh exec reaches stdout promptly.
    let after = unique_name("sw-stall-after");
    let started = Instant::now();
    Command::new("/bin/echo").arg(&after).output()?;
    daemon.wait_for("an exec after the burst", Duration::from_secs(5), |v| {
        is_exec_of(v, &["/bin/echo", &after])
    })?;
    let latency = started.elapsed();
    let burst = daemon
        .events()
        .iter()
        .filter(|v| is_exec_of(v, &["/bin/true", &marker]))
        .count();
    ensure!(
        burst == 3000,
        "stdout got {burst} of the burst's 3000 execs"
    );

    // Now read: somewhere in the stream there is a notice with the number of skipped lines.
    stalled.set_read_timeout(Some(Duration::from_secs(20)))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut skipped, mut received) = (0u64, 0u64);
    let mut line = String::new();
    while skipped == 0 && Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("the daemon closed the stalled client");
        }
        let v: Value = serde_json::from_str(line.trim())?;
        match v["kind"].as_str() {
            Some("tail-skipped") => skipped = v["count"].as_u64().unwrap_or(0),
            _ => received += 1,
        }
    }
    ensure!(skipped > 0, "no tail-skipped notice after {received} lines");
    ensure!(
        received < 3000,
        "the stalled client got {received} lines: nothing was skipped?"
    );
    drop(reader);
    drop(stalled);
    daemon.stop()?;
    eprintln!(
        "stalled client: {received} lines then {skipped} skipped; stdout latency {latency:?}"
    );
    Ok(())
}
