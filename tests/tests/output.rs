//! The daemon's stdout under the real daemon: a reader that stalls costs lines that are counted
//! (in `loss` lines, `output`), never the order of what does arrive, never the daemon itself; a
//! regular file and a pipe read continuously get every line, complete and in order.
//!
//! Each test runs its own `sh` loop of `/bin/true <tag>-<i>` execs and only counts lines carrying
//! its tag, so other daemons and other activity on the machine do not matter. The stalled-reader
//! and regular-file tests start `sealwatch run` themselves (the harness's `Daemon` reads stdout
//! continuously into memory) with `--tail-socket none`, stop it with SIGINT, and require exit
//! status 0 and no panic in its log; every test validates every line against the event schema.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use sealwatch_tests::daemon::{
    daemon_bin, Daemon, EVENT_TIMEOUT, READY_MARKER, READY_TIMEOUT, STOP_TIMEOUT,
};
use sealwatch_tests::events::{args, is_exec, run_tagged_execs, tagged_index};
use sealwatch_tests::prometheus::{free_port, http_get, sample};
use sealwatch_tests::{artifacts_dir, cmd, require_root, schema, unique_name};

/// `sealwatch run` started here, stdout wherever the test puts it, stderr in a log file.
struct RawDaemon {
    child: Child,
    log_path: PathBuf,
    line: String,
}

impl RawDaemon {
    /// Starts `sealwatch run --tail-socket none <extra...>` with `stdout`, and waits until it logs
    /// [`READY_MARKER`]. `extra` must say `--metrics-addr`.
    fn start(extra: &[&str], stdout: Stdio) -> Result<RawDaemon> {
        require_root()?;
        let bin = daemon_bin()?;
        let logs = artifacts_dir()?.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let log_path = logs.join(format!("{}.log", unique_name("output-daemon")));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(&bin);
        command
            .args(["run", "--tail-socket", "none"])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log);
        let line = cmd::describe(&command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start `{line}`"))?;
        let mut daemon = RawDaemon {
            child,
            log_path,
            line,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while !daemon.log().contains(READY_MARKER) {
            if let Some(status) = daemon.child.try_wait()? {
                bail!(
                    "`{}` exited with {status} before logging {READY_MARKER:?}\n{}",
                    daemon.line,
                    daemon.log_tail()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "`{}` did not log {READY_MARKER:?} within {READY_TIMEOUT:?}\n{}",
                daemon.line,
                daemon.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    fn log_tail(&self) -> String {
        format!(
            "--- daemon stderr (last 30 lines; full log {}):\n{}",
            self.log_path.display(),
            cmd::file_tail(&self.log_path, 30)
        )
    }

    /// Fails when the daemon is no longer running.
    fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the daemon exited with {status}\n{}", self.log_tail());
        }
        Ok(())
    }

    /// SIGINT; requires exit status 0 within [`STOP_TIMEOUT`] and no panic in the log.
    fn interrupt(&mut self) -> Result<()> {
        self.ensure_running()?;
        let pid = Pid::from_raw(i32::try_from(self.child.id())?);
        kill(pid, Signal::SIGINT).context("sending SIGINT to the daemon")?;
        let Some(status) = cmd::wait_timeout(&mut self.child, STOP_TIMEOUT)? else {
            bail!(
                "the daemon did not exit within {STOP_TIMEOUT:?} of SIGINT\n{}",
                self.log_tail()
            );
        };
        ensure!(
            status.code() == Some(0),
            "the daemon exited with {status} after SIGINT, expected exit status 0\n{}",
            self.log_tail()
        );
        let log = self.log();
        ensure!(
            !log.contains("panicked"),
            "the daemon's stderr reports a panic\n{}",
            self.log_tail()
        );
        Ok(())
    }
}

impl Drop for RawDaemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!(
                "daemon (pid {}) killed at the end of a failed test\n{}",
                self.child.id(),
                self.log_tail()
            );
        }
    }
}

/// The exec of `/bin/true <tag>-end`.
fn is_sentinel(event: &Value, tag: &str) -> bool {
    is_exec(event) && args(event) == ["/bin/true", &format!("{tag}-end")]
}

/// The tagged indices that arrived, in arrival order, and the byte length (with its newline)
/// of the shortest tagged line.
fn tagged(lines: &[String], events: &[Value], tag: &str) -> (Vec<u64>, usize) {
    let mut indices = Vec::new();
    let mut shortest = usize::MAX;
    for (line, event) in lines.iter().zip(events) {
        if let Some(i) = tagged_index(event, tag) {
            indices.push(i);
            shortest = shortest.min(line.len() + 1);
        }
    }
    (indices, shortest)
}

/// Requires strictly increasing indices: in the order they ran, none twice.
fn ensure_in_order(indices: &[u64]) -> Result<()> {
    if let Some(w) = indices.windows(2).find(|w| w[0] >= w[1]) {
        bail!(
            "tagged exec lines out of order or repeated: {} came after {} ({} tagged lines)",
            w[1],
            w[0],
            indices.len()
        );
    }
    Ok(())
}

/// The sum of one field of every `loss` line.
fn loss_sum(events: &[Value], field: &str) -> u64 {
    events
        .iter()
        .filter(|e| e["kind"] == "loss")
        .map(|e| e["loss"][field].as_u64().unwrap_or(0))
        .sum()
}

/// Splits stdout into lines; fails on a last line without its newline (a line written in part).
fn complete_lines(bytes: &[u8]) -> Result<Vec<String>> {
    ensure!(!bytes.is_empty(), "the daemon printed nothing on stdout");
    ensure!(
        bytes.last() == Some(&b'\n'),
        "stdout ends in the middle of a line: {:?}",
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(300)..])
    );
    let text = std::str::from_utf8(bytes).context("stdout is not UTF-8")?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// A metric sample of the daemon at `addr`.
fn metric(addr: SocketAddr, series: &str) -> Result<f64> {
    let r = http_get(addr, "/metrics")?;
    ensure!(r.status == 200, "GET /metrics answered {}", r.status);
    sample(&r.body, series).with_context(|| format!("no {series} in\n{}", r.body))
}

/// Reads `pipe` to its end into memory, on a thread.
fn read_in_thread(mut pipe: ChildStdout) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<Result<()>>) {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&bytes);
    let reader = thread::spawn(move || -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = pipe.read(&mut buf).context("reading the daemon's stdout")?;
            if n == 0 {
                return Ok(());
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (bytes, reader)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const EXEC_SERIES: &str = "sealwatch_events_total{kind=\"exec\"}";
const OUTPUT_DROPS_SERIES: &str = "sealwatch_output_drops_total{sink=\"stdout\"}";

#[test]
fn a_stalled_stdout_reader_costs_counted_lines_never_order_or_the_daemon() -> Result<()> {
    stalled_reader(64, 8 << 20)
}

/// The same with the queue bounded by bytes: 64 KiB of lines wait, whatever their number.
#[test]
fn a_stalled_stdout_reader_holds_at_most_output_queue_bytes() -> Result<()> {
    stalled_reader(100_000, 65_536)
}

/// Stalls stdout with `--output-queue QUEUE --output-queue-bytes QUEUE_BYTES`, runs more tagged
/// execs than pipe and queue can hold, then reads: what arrived is in order, the rest counted.
fn stalled_reader(queue: u64, queue_bytes: u64) -> Result<()> {
    const RUNS: u64 = 3000;
    let tag = unique_name("sw-out");
    // Metrics on a port of our own: only to learn when the daemon has taken in every exec
    // without reading its stdout.
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut daemon = RawDaemon::start(
        &[
            "--output-queue",
            &queue.to_string(),
            "--output-queue-bytes",
            &queue_bytes.to_string(),
            "--metrics-addr",
            &addr.to_string(),
        ],
        Stdio::piped(),
    )?;
    let stdout = daemon.child.stdout.take().context("no stdout pipe")?;
    // SAFETY: F_GETPIPE_SZ only reads the pipe's capacity of a descriptor we own.
    let pipe_bytes = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_GETPIPE_SZ) };
    ensure!(pipe_bytes > 0, "F_GETPIPE_SZ failed on the stdout pipe");
    let pipe_bytes = u64::try_from(pipe_bytes)?;
    // The daemon grows its stdout pipe (output/writer.rs) so a busy turn fits in one write.
    ensure!(
        pipe_bytes >= 256 << 10,
        "the daemon left its stdout pipe at {pipe_bytes} bytes, expected at least 256 KiB"
    );

    // Nobody reads stdout: the pipe fills, then queued lines wait for the writer thread, then
    // lines are dropped.
    let before = metric(addr, EXEC_SERIES)?;
    run_tagged_execs(&tag, RUNS)?;
    let processed = cmd::poll_until(Duration::from_secs(120), || {
        metric(addr, EXEC_SERIES).is_ok_and(|now| now >= before + RUNS as f64)
    });
    daemon.ensure_running()?;
    ensure!(
        processed,
        "the daemon did not take in {RUNS} execs within 120 s ({EXEC_SERIES} {before} -> {})\n{}",
        metric(addr, EXEC_SERIES)?,
        daemon.log_tail()
    );

    // Now read, and check the daemon still prints new lines after the stall. The sentinel exec
    // is repeated each second: one made while the writer is still handing the queued lines to
    // the reader finds the queue full and is dropped (and counted), as it should be.
    let (bytes, reader) = read_in_thread(stdout);
    let sentinel = format!("\"{tag}-end\"");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let mut arrived = false;
    while !arrived && Instant::now() < deadline {
        cmd::run_ok(
            &mut cmd::command("/bin/true", &[format!("{tag}-end")]),
            cmd::DEFAULT_TIMEOUT,
        )?;
        arrived = cmd::poll_until(Duration::from_secs(1), || {
            contains(&bytes.lock().unwrap(), sentinel.as_bytes())
        });
    }
    daemon.ensure_running()?;
    ensure!(
        arrived,
        "the exec of `/bin/true {tag}-end` after the stall was not printed within \
         {EVENT_TIMEOUT:?}\n{}",
        daemon.log_tail()
    );
    let drops_metric = metric(addr, OUTPUT_DROPS_SERIES)?;
    daemon.interrupt()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() {
        ensure!(
            Instant::now() < deadline,
            "stdout not closed 10 s after the daemon exited"
        );
        thread::sleep(Duration::from_millis(10));
    }
    reader.join().unwrap()?;

    let lines = complete_lines(&bytes.lock().unwrap())?;
    let events = schema::check_lines(&lines)
        .with_context(|| format!("daemon log: {}", daemon.log_path.display()))?;
    ensure!(
        events.iter().any(|e| is_sentinel(e, &tag)),
        "the sentinel line is gone after the daemon exited"
    );
    let (indices, shortest) = tagged(&lines, &events, &tag);
    ensure_in_order(&indices)?;
    let got = indices.len() as u64;
    let missing = RUNS - got;
    let output = loss_sum(&events, "output");
    let report = format!(
        "{RUNS} tagged execs, {got} tagged lines arrived, {missing} missing; loss lines: output \
         {output} in {} loss lines (kernel_critical {}, decode {}); \
         {OUTPUT_DROPS_SERIES} {drops_metric} before SIGINT; {} lines in all; pipe {pipe_bytes} \
         bytes, shortest tagged line {shortest} bytes, --output-queue {queue} \
         --output-queue-bytes {queue_bytes}",
        events.iter().filter(|e| e["kind"] == "loss").count(),
        loss_sum(&events, "kernel_critical"),
        loss_sum(&events, "decode"),
        lines.len(),
    );
    eprintln!("{report}");
    ensure!(got > 0, "no tagged line arrived at all: {report}");
    // While nobody read, at most a full pipe of lines plus the queue's lines could wait (a line
    // never shorter than the shortest tagged one): most of the RUNS lines had to be dropped.
    let could_hold = pipe_bytes / shortest as u64 + queue.min(queue_bytes / shortest as u64);
    ensure!(
        RUNS > 2 * could_hold,
        "test premise: {RUNS} execs must be far more than the {could_hold} lines a stalled \
         stdout can hold"
    );
    ensure!(
        got < RUNS,
        "every tagged line arrived: the stalled reader cost nothing, so nothing was tested: \
         {report}"
    );
    // Every exec line, tagged or not, was printed or counted as an output drop.
    ensure!(
        output >= missing,
        "the loss lines count fewer output drops than tagged lines went missing: {report}"
    );
    // And the loss lines add up to at least the drops the daemon had already counted.
    ensure!(
        output as f64 >= drops_metric,
        "the loss lines count fewer output drops than {OUTPUT_DROPS_SERIES} said: {report}"
    );
    Ok(())
}

#[test]
fn lines_reach_a_regular_file_complete_and_in_order() -> Result<()> {
    const RUNS: u64 = 1000;
    let tag = unique_name("sw-file");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("stdout.jsonl");
    let file = File::create(&path)?;
    let mut daemon = RawDaemon::start(&["--metrics-addr", "none"], Stdio::from(file))?;
    run_tagged_execs(&tag, RUNS)?;
    let last = format!("\"{tag}-{}\"", RUNS - 1);
    let arrived = cmd::poll_until(EVENT_TIMEOUT, || {
        contains(&std::fs::read(&path).unwrap_or_default(), last.as_bytes())
    });
    daemon.ensure_running()?;
    ensure!(
        arrived,
        "the last tagged exec was not written to {} within {EVENT_TIMEOUT:?}\n{}",
        path.display(),
        daemon.log_tail()
    );
    daemon.interrupt()?;

    let lines = complete_lines(&std::fs::read(&path)?)?;
    let events = schema::check_lines(&lines)
        .with_context(|| format!("daemon log: {}", daemon.log_path.display()))?;
    let (indices, _) = tagged(&lines, &events, &tag);
    ensure_in_order(&indices)?;
    ensure!(
        indices == (0..RUNS).collect::<Vec<_>>(),
        "{} of {RUNS} tagged exec lines in the file",
        indices.len()
    );
    let output = loss_sum(&events, "output");
    ensure!(output == 0, "loss lines report {output} output drops");
    Ok(())
}

#[test]
fn lines_reach_a_pipe_read_continuously_complete_and_in_order() -> Result<()> {
    const RUNS: u64 = 1000;
    let tag = unique_name("sw-pipe");
    let mut daemon = Daemon::start(&["--metrics-addr", "none", "--tail-socket", "none"])?;
    run_tagged_execs(&tag, RUNS)?;
    daemon.wait_for("the last tagged exec", EVENT_TIMEOUT, |e| {
        tagged_index(e, &tag) == Some(RUNS - 1)
    })?;
    // Stop validates every line against the schema (and fails on lines that are not JSON).
    let stopped = daemon.stop()?;
    let (indices, _) = tagged(&stopped.lines, &stopped.events, &tag);
    ensure_in_order(&indices)?;
    ensure!(
        indices == (0..RUNS).collect::<Vec<_>>(),
        "{} of {RUNS} tagged exec lines arrived",
        indices.len()
    );
    let output = loss_sum(&stopped.events, "output");
    ensure!(output == 0, "loss lines report {output} output drops");
    Ok(())
}

/// A reader that never reads cannot keep the daemon from stopping: after SIGINT it gives up the
/// lines stdout would not take, says how many, exits non-zero, and its programs are gone.
#[test]
fn a_reader_that_never_reads_does_not_hold_the_daemon_exit_hostage() -> Result<()> {
    const RUNS: u64 = 1000;
    let tag = unique_name("sw-out-hostage");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut daemon = RawDaemon::start(
        &["--output-queue", "64", "--metrics-addr", &addr.to_string()],
        Stdio::piped(),
    )?;
    // Held open and never read.
    let stdout = daemon.child.stdout.take().context("no stdout pipe")?;
    let before = metric(addr, EXEC_SERIES)?;
    run_tagged_execs(&tag, RUNS)?;
    let processed = cmd::poll_until(Duration::from_secs(120), || {
        metric(addr, EXEC_SERIES).is_ok_and(|now| now >= before + RUNS as f64)
    });
    ensure!(
        processed,
        "the daemon did not take in {RUNS} execs\n{}",
        daemon.log_tail()
    );
    let pid = Pid::from_raw(i32::try_from(daemon.child.id())?);
    kill(pid, Signal::SIGINT).context("sending SIGINT to the daemon")?;
    let Some(status) = cmd::wait_timeout(&mut daemon.child, STOP_TIMEOUT)? else {
        bail!(
            "the daemon did not exit within {STOP_TIMEOUT:?} of SIGINT while stdout was never read\n{}",
            daemon.log_tail()
        );
    };
    drop(stdout);
    let log = daemon.log();
    ensure!(
        status.code() == Some(1),
        "exit status {status} with lines left unwritten, expected 1\n{}",
        daemon.log_tail()
    );
    ensure!(
        log.contains("stdout took nothing for") && log.contains("lines are lost"),
        "the daemon's error does not say that lines were given up\n{}",
        daemon.log_tail()
    );
    ensure!(
        log.contains("stopped; programs detached"),
        "the daemon did not detach its programs before giving up stdout\n{}",
        daemon.log_tail()
    );
    ensure!(
        !log.contains("panicked"),
        "panic in the daemon's log\n{}",
        daemon.log_tail()
    );
    Ok(())
}
