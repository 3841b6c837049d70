//! Flight recorder and replay: a live daemon records real podman and Docker containers with
//! `--capture`; replaying the capture with the recorded policy prints exactly the lines the daemon
//! printed; a new policy finds a violation in old events; damaged files fail clearly or replay up
//! to the damage; filters select exactly the lines they describe; rotation keeps the directory
//! within its size bound.
//!
//! One recording (the [`recorded`] fixture) serves most tests: starting the daemon and the
//! containers is the slow part.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use serde_json::Value;

use sealwatch_tests::capture::{
    capture_bytes, capture_files, first_difference, frames, fresh_dir, is_subsequence, replay,
    sealwatch, sealwatch_ok, write_file, FRAME_INPUTS,
};
use sealwatch_tests::daemon::{Daemon, EVENT_TIMEOUT};
use sealwatch_tests::events::{container_id, is_exec_of, violation_rule};
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

const ROOT_RULE: &str = "root-in-container";

/// The policy in force live: root-in-container on, except for containers named `sw-exempt-*`.
const LIVE_POLICY: &str = "version: 1
rules:
  root-in-container:
    exceptions:
      - container_name: \"sw-exempt-*\"
        reason: \"replay test: this container is judged only in replay\"
";
/// The policy given to replay afterwards: the exception is gone and the rule is critical.
const NEW_POLICY: &str = "version: 1
rules:
  root-in-container:
    severity: critical
";

fn argv(m: &[String]) -> Vec<&str> {
    m.iter().map(String::as_str).collect()
}

struct Recorded {
    dir: PathBuf,
    capture: PathBuf,
    live: Vec<String>,
    new_policy: PathBuf,
    podman_id: String,
    docker_name: String,
    exempt_id: String,
    /// argv of the execs the test made in the podman container, and on the host.
    podman_marker: Vec<String>,
    host_marker: Vec<String>,
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Records podman, Docker and host activity once per test process.
fn recorded() -> Result<&'static Recorded> {
    static FIXTURE: OnceLock<Result<Recorded, String>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| record().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("recording the fixture capture: {e}"))
}

fn record() -> Result<Recorded> {
    Runtime::Podman.ensure_ready()?;
    Runtime::Docker.ensure_ready()?;
    let dir = fresh_dir("sw-replay")?;
    let capture = dir.join("capture");
    let live_policy = write_file(&dir, "live.yaml", LIVE_POLICY)?;
    let new_policy = write_file(&dir, "new.yaml", NEW_POLICY)?;
    let mut daemon = Daemon::start(&[
        "--policy",
        live_policy.to_str().unwrap(),
        "--capture",
        capture.to_str().unwrap(),
        "--tail-socket",
        "none",
        // Other daemons on this machine may hold the default metrics port.
        "--metrics-addr",
        "none",
    ])?;
    let podman = Runtime::Podman.run_detached(&unique_name("sw-rep"), &["sleep", "300"])?;
    let exempt = Runtime::Podman.run_detached(&unique_name("sw-exempt"), &["sleep", "300"])?;
    let docker = Runtime::Docker.run_detached(&unique_name("sw-rep"), &["sleep", "300"])?;
    let podman_marker = vec!["/bin/echo".to_owned(), unique_name("sw-rep-podman")];
    let exempt_marker = vec!["/bin/echo".to_owned(), unique_name("sw-rep-exempt")];
    let docker_marker = vec!["/bin/echo".to_owned(), unique_name("sw-rep-docker")];
    let host_marker = vec!["/bin/echo".to_owned(), unique_name("sw-rep-host")];
    podman.exec(&argv(&podman_marker))?;
    exempt.exec(&argv(&exempt_marker))?;
    docker.exec(&argv(&docker_marker))?;
    // A pause so the time-range test has a gap between the container execs and the host one.
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new(&host_marker[0])
        .arg(&host_marker[1])
        .output()?;
    ensure!(status.status.success(), "host marker exec failed");
    for marker in [&podman_marker, &exempt_marker, &docker_marker, &host_marker] {
        daemon.wait_for(&format!("exec of {marker:?}"), EVENT_TIMEOUT, |ev| {
            is_exec_of(ev, &argv(marker))
        })?;
    }
    let docker_name = docker.name.clone();
    let (podman_id, exempt_id) = (podman.id.clone(), exempt.id.clone());
    for c in [podman, exempt, docker] {
        c.remove()?;
    }
    let stopped = daemon.stop()?;
    Ok(Recorded {
        dir,
        capture,
        live: stopped.lines,
        new_policy,
        podman_id,
        docker_name,
        exempt_id,
        podman_marker,
        host_marker,
    })
}

#[test]
fn replay_with_the_recorded_policy_prints_exactly_the_live_lines() -> Result<()> {
    let r = recorded()?;
    let events = parse(&r.live);
    ensure!(
        events
            .iter()
            .any(|e| violation_rule(e) == Some(ROOT_RULE) && container_id(e) == Some(&r.podman_id)),
        "the live run must flag the podman container as root"
    );
    let replayed = replay(&r.capture, &[])?;
    if let Some(diff) = first_difference(&r.live, &replayed.lines) {
        panic!("replay differs from the live output: {diff}");
    }
    // The schema holds for replay output as for live output (same lines, but checked anyway).
    sealwatch_tests::schema::check_lines(&replayed.lines)?;
    Ok(())
}

#[test]
fn replay_with_a_new_policy_finds_a_violation_the_live_run_did_not_report() -> Result<()> {
    let r = recorded()?;
    let is_exempt_violation =
        |e: &Value| violation_rule(e) == Some(ROOT_RULE) && container_id(e) == Some(&r.exempt_id);
    ensure!(
        !parse(&r.live).iter().any(is_exempt_violation),
        "live, the exception kept the sw-exempt container quiet"
    );
    let replayed = replay(&r.capture, &["--policy", r.new_policy.to_str().unwrap()])?;
    let events = parse(&replayed.lines);
    let found: Vec<&Value> = events.iter().filter(|e| is_exempt_violation(e)).collect();
    ensure!(
        found.len() == 1,
        "expected one root-in-container violation for the exempt container in replay, got {found:?}"
    );
    ensure!(
        found[0]["violation"]["severity"] == "critical",
        "{}",
        found[0]
    );
    // Every other root-in-container violation is now critical too.
    ensure!(events
        .iter()
        .filter(|e| violation_rule(e) == Some(ROOT_RULE))
        .all(|e| e["violation"]["severity"] == "critical"));
    Ok(())
}

#[test]
fn a_capture_cut_inside_a_frame_replays_up_to_the_cut_with_a_warning() -> Result<()> {
    let r = recorded()?;
    let full = replay(&r.capture, &[])?.lines;
    let files = capture_files(&r.capture)?;
    let first = files.first().context("no capture file")?;
    let spans: Vec<_> = frames(first)?
        .into_iter()
        .filter(|f| f.kind == FRAME_INPUTS)
        .collect();
    ensure!(
        spans.len() >= 2,
        "the fixture file has {} input frames",
        spans.len()
    );
    let cut_frame = spans[spans.len() / 2];
    let cut = cut_frame.start + (cut_frame.end - cut_frame.start) / 2;
    let cut_path = r.dir.join(format!("cut-{}.swc", unique_name("f")));
    let bytes = std::fs::read(first)?;
    std::fs::write(&cut_path, &bytes[..cut as usize])?;

    let out = replay(&cut_path, &[])?; // exit 0 is required
    ensure!(
        out.stderr.contains("capture truncated") && out.stderr.contains("torn tail"),
        "expected a clear warning about the cut; stderr:\n{}",
        out.stderr
    );
    ensure!(!out.lines.is_empty(), "nothing replayed before the cut");
    ensure!(out.lines.len() < full.len(), "the cut lost nothing?");
    ensure!(
        is_subsequence(&out.lines, &full),
        "lines before the cut must be the full replay's lines, in order"
    );
    Ok(())
}

#[test]
fn a_corrupt_header_or_a_foreign_file_fails_clearly() -> Result<()> {
    let r = recorded()?;
    let foreign = write_file(
        &r.dir,
        "notes.txt",
        "these are not the events you are looking for\n",
    )?;
    let first = capture_files(&r.capture)?
        .into_iter()
        .next()
        .context("no file")?;
    let mut bytes = std::fs::read(&first)?;
    bytes[8 + 12 + 20] ^= 0x5a; // inside the header frame's JSON: its CRC no longer matches
    let corrupt = r.dir.join("corrupt-header.swc");
    std::fs::write(&corrupt, &bytes)?;
    for (path, expected) in [
        (&foreign, "is not a sealwatch capture"),
        (&corrupt, "its header is damaged"),
    ] {
        for command in [&["replay"][..], &["capture", "info"][..]] {
            let mut args: Vec<String> = command.iter().map(|s| (*s).to_owned()).collect();
            args.push(path.display().to_string());
            let out = sealwatch(&args)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(
                out.status.code() == Some(65),
                "{args:?}: expected exit 65, got {}; stderr:\n{stderr}",
                out.status
            );
            ensure!(
                stderr.contains(expected),
                "{args:?}: stderr lacks {expected:?}:\n{stderr}"
            );
            ensure!(
                out.stdout.is_empty(),
                "{args:?} printed output for a bad file"
            );
        }
    }
    Ok(())
}

/// Runs replay with `flags` and compares with the full replay filtered by `keep`.
fn check_filter(
    r: &Recorded,
    full: &[String],
    flags: &[&str],
    keep: impl Fn(&Value) -> bool,
) -> Result<usize> {
    let expected: Vec<String> = full
        .iter()
        .filter(|l| keep(&serde_json::from_str(l).unwrap()))
        .cloned()
        .collect();
    let got = replay(&r.capture, flags)?.lines;
    if let Some(diff) = first_difference(&expected, &got) {
        return Err(anyhow!("replay {flags:?}: {diff}"));
    }
    Ok(expected.len())
}

#[test]
fn filters_and_time_ranges_select_exactly_the_matching_lines() -> Result<()> {
    let r = recorded()?;
    let full = replay(&r.capture, &[])?.lines;
    let events = parse(&full);
    let s = |e: &Value, p: &str| e.pointer(p).and_then(Value::as_str).map(str::to_owned);

    let prefix = &r.podman_id[..12];
    let n = check_filter(r, &full, &["--container", prefix], |e| {
        container_id(e) == Some(&r.podman_id)
    })?;
    ensure!(n >= 2, "the podman container's init and marker exec: {n}");
    let n = check_filter(r, &full, &["--container", &r.docker_name], |e| {
        s(e, "/container/name").as_deref() == Some(r.docker_name.as_str())
    })?;
    ensure!(n >= 2);
    let image = Runtime::Podman.image();
    let n = check_filter(r, &full, &["--image", "localhost/sealwatch-*"], |e| {
        s(e, "/container/image").as_deref() == Some(image)
    })?;
    ensure!(n >= 4, "two podman containers");
    let n = check_filter(r, &full, &["--rule", ROOT_RULE], |e| {
        violation_rule(e) == Some(ROOT_RULE)
    })?;
    ensure!(n >= 2);
    check_filter(r, &full, &["--namespace", "kube-system"], |_| false)?;

    let marker = events
        .iter()
        .find(|e| {
            is_exec_of(
                e,
                &r.podman_marker
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
        })
        .context("podman marker exec")?;
    let pid = marker["process"]["pid"].as_u64().unwrap().to_string();
    let n = check_filter(r, &full, &["--kind", "exec", "--pid", &pid], |e| {
        e["kind"] == "exec"
            && e["process"]["pid"].as_u64().map(|p| p.to_string()) == Some(pid.clone())
    })?;
    ensure!(n >= 1);

    // From the podman marker (inclusive) to the host marker (exclusive): fixed-width UTC times
    // compare as text.
    let host = events
        .iter()
        .find(|e| {
            is_exec_of(
                e,
                &r.host_marker.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        })
        .context("host marker exec")?;
    let (from, to) = (s(marker, "/time").unwrap(), s(host, "/time").unwrap());
    let n = check_filter(r, &full, &["--from", &from, "--to", &to], |e| {
        let t = s(e, "/time").unwrap_or_default();
        t >= from && t < to
    })?;
    ensure!(
        n >= 3,
        "podman, exempt and docker markers lie in the range: {n}"
    );

    // Session: `session.id` when present, else the audit session id.
    let session_of = |e: &Value| match e.get("session") {
        Some(x) if x.is_object() => x
            .get("id")
            .map(|v| v.to_string().trim_matches('"').to_owned()),
        _ => e
            .pointer("/process/sessionid")
            .filter(|v| !v.is_null())
            .map(Value::to_string),
    };
    if let Some(session) = events.iter().find_map(&session_of) {
        check_filter(r, &full, &["--session", &session], |e| {
            session_of(e).as_deref() == Some(session.as_str())
        })?;
    }
    Ok(())
}

#[test]
fn capture_info_and_tree_describe_the_recording() -> Result<()> {
    let r = recorded()?;
    let live = parse(&r.live);
    let info = sealwatch_ok(&["capture", "info", r.capture.to_str().unwrap(), "--json"])?;
    let info: Value = serde_json::from_str(&info.lines.join("\n"))?;
    let count = |kind: &str| live.iter().filter(|e| e["kind"] == kind).count() as u64;
    ensure!(
        info["lines"]["exec"].as_u64() == Some(count("exec")),
        "{}",
        info["lines"]
    );
    let violations = live
        .iter()
        .filter(|e| violation_rule(e) == Some(ROOT_RULE))
        .count() as u64;
    ensure!(
        info["violations"][ROOT_RULE].as_u64() == Some(violations),
        "{}",
        info["violations"]
    );
    ensure!(
        info["inputs"]["kernel exec"].as_u64() >= Some(count("exec")),
        "{}",
        info["inputs"]
    );
    let podman = &info["containers"][&r.podman_id];
    ensure!(
        podman["runtime"] == "podman" && podman["image"] == Runtime::Podman.image(),
        "{podman}"
    );
    ensure!(info["containers"]
        .as_object()
        .unwrap()
        .values()
        .any(|c| c["name"] == r.docker_name.as_str()));
    ensure!(info["from"].is_string() && info["to"].is_string());

    let text = sealwatch_ok(&["capture", "info", r.capture.to_str().unwrap()])?
        .lines
        .join("\n");
    ensure!(
        text.contains(&r.podman_id) && text.contains("losses:"),
        "{text}"
    );

    let tree = sealwatch_ok(&[
        "capture",
        "tree",
        r.capture.to_str().unwrap(),
        "--container",
        &r.podman_id[..12],
    ])?;
    let tree = tree.lines.join("\n");
    ensure!(
        tree.lines().next().unwrap_or("").contains(&r.podman_id),
        "title names the container:\n{tree}"
    );
    ensure!(
        tree.contains("sleep") && tree.contains(&r.podman_marker[1]),
        "{tree}"
    );
    ensure!(
        tree.contains(&format!("!! {ROOT_RULE}")),
        "the root exec is marked:\n{tree}"
    );
    ensure!(
        !tree.contains(&r.host_marker[1]),
        "host execs are not in a container's tree"
    );
    Ok(())
}

#[test]
fn rotation_keeps_the_directory_within_its_size_bound() -> Result<()> {
    const MAX: u64 = 256 * 1024;
    const FILE: u64 = 64 * 1024;
    let dir = fresh_dir("sw-rotate")?;
    let capture = dir.join("capture");
    let mut daemon = Daemon::start(&[
        "--capture",
        capture.to_str().unwrap(),
        "--capture-max-bytes",
        &MAX.to_string(),
        "--capture-file-bytes",
        &FILE.to_string(),
        "--tail-socket",
        "none",
        // Other daemons on this machine may hold the default metrics port.
        "--metrics-addr",
        "none",
    ])?;
    let marker = unique_name("sw-rot");
    // Bursts of execs (distinct argv, so they compress like real traffic) until rotation has
    // deleted the oldest file. Sampled meanwhile: the bound holds, give or take the one frame
    // being written when the sample is taken (retention runs right after each frame).
    let script =
        format!("i=0; while [ $i -lt 1000 ]; do /bin/true {marker}-$1-$i; i=$((i+1)); done");
    let mut peak = 0;
    let started = Instant::now();
    let mut bursts = 0;
    loop {
        let mut burst = Command::new("/bin/sh")
            .args(["-c", &script, "sh", &bursts.to_string()])
            .spawn()?;
        while burst.try_wait()?.is_none() {
            peak = peak.max(capture_bytes(&capture)?);
            std::thread::sleep(Duration::from_millis(50));
        }
        ensure!(burst.wait()?.success());
        bursts += 1;
        let files = capture_files(&capture)?;
        let first_gone = files.first().is_some_and(|f| {
            !f.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("capture-00000001-")
        });
        if first_gone && files.len() >= 3 {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "no rotation and deletion after {bursts} bursts: {files:?}"
        );
    }
    let done = ["/bin/echo".to_owned(), unique_name("sw-rot-done")];
    Command::new(&done[0]).arg(&done[1]).output()?;
    daemon.wait_for("the exec after the burst", EVENT_TIMEOUT, |ev| {
        is_exec_of(ev, &[done[0].as_str(), done[1].as_str()])
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    peak = peak.max(capture_bytes(&capture)?);
    let stopped = daemon.stop()?;
    let execs = stopped
        .events
        .iter()
        .filter(|e| e["kind"] == "exec")
        .count();
    ensure!(execs >= 3000, "the burst's execs reached stdout: {execs}");

    let files = capture_files(&capture)?;
    let total = capture_bytes(&capture)?;
    ensure!(
        total <= MAX,
        "{total} bytes in {} files after stop, bound {MAX}",
        files.len()
    );
    ensure!(
        peak <= MAX + 64 * 1024,
        "peak {peak} bytes while recording, bound {MAX}"
    );
    ensure!(files.len() >= 2, "rotated into several files: {files:?}");
    let first = files[0].file_name().unwrap().to_str().unwrap();
    ensure!(
        !first.starts_with("capture-00000001-"),
        "the oldest files were deleted: {files:?}"
    );
    // Every file that is left replays on its own (it starts with a snapshot).
    for file in &files {
        let out = replay(file, &[])?;
        ensure!(
            !out.stderr.contains("damaged"),
            "{}: {}",
            file.display(),
            out.stderr
        );
    }
    Ok(())
}
