//! The sinks under the real daemon: the JSON-lines file rotated under load with nothing lost
//! between files, each output's own selection of lines, and the OTLP exporter against a real
//! OTLP/HTTP receiver that decodes with the official OpenTelemetry definitions
//! (`tests/otlp/receiver.py`): what a record carries, a token required, the collector down, its
//! 503 and 429, a queue that overflows (the drop count says exactly what did not arrive), TLS.
//!
//! Tagged lines (`/bin/true <tag>-<i>` run on the host) make each test's lines its own, whatever
//! else runs on the machine.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use sealwatch_tests::daemon::{Daemon, Stopped, EVENT_TIMEOUT};
use sealwatch_tests::events::{
    is_exec_of, run_tagged_execs, tagged_index, violation_rule, TAGGED_LOOP_TIMEOUT,
};
use sealwatch_tests::otlp::{body_json, test_certs, OtlpReceiver, ReceiverOptions};
use sealwatch_tests::prometheus::{free_port, http_get, sample};
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::{cmd, schema, unique_name};

/// Long enough for the exporter's backoff (at most 30 s between tries) to try again.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

/// The tagged indices among `events`, in their order.
fn tagged(events: &[Value], tag: &str) -> Vec<u64> {
    events.iter().filter_map(|e| tagged_index(e, tag)).collect()
}

/// The sum of `loss.output_by_sink.<sink>` over every `loss` line.
fn sink_loss(events: &[Value], sink: &str) -> u64 {
    events
        .iter()
        .filter(|e| e["kind"] == "loss")
        .map(|e| e["loss"]["output_by_sink"][sink].as_u64().unwrap_or(0))
        .sum()
}

fn start_daemon(extra: &[&str]) -> Result<Daemon> {
    let mut args = vec!["--tail-socket", "none"];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

/// A daemon exporting every line to `receiver`, with `extra` flags.
fn start_exporting(receiver: &OtlpReceiver, extra: &[&str]) -> Result<Daemon> {
    let endpoint = receiver.endpoint();
    let mut args = vec!["--otlp-events", "all", "--otlp-endpoint", &endpoint];
    args.extend_from_slice(extra);
    start_daemon(&args)
}

/// A metric sample of the daemon at `addr`.
fn metric(addr: SocketAddr, series: &str) -> Result<f64> {
    let r = http_get(addr, "/metrics")?;
    ensure!(r.status == 200, "GET /metrics answered {}", r.status);
    sample(&r.body, series).with_context(|| format!("no {series} in\n{}", r.body))
}

/// The records whose body is a tagged exec line, by index.
fn tagged_records(records: &[Value], tag: &str) -> Result<HashMap<u64, Vec<Value>>> {
    let mut by_index: HashMap<u64, Vec<Value>> = HashMap::new();
    for record in records {
        let body = body_json(record)?;
        if let Some(i) = tagged_index(&body, tag) {
            by_index.entry(i).or_default().push(record.clone());
        }
    }
    Ok(by_index)
}

/// Requires exactly the indices `0..n`, each once.
fn ensure_each_once(by_index: &HashMap<u64, Vec<Value>>, n: u64, what: &str) -> Result<()> {
    let missing: Vec<u64> = (0..n).filter(|i| !by_index.contains_key(i)).collect();
    let repeated: Vec<u64> = by_index
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(i, _)| *i)
        .collect();
    ensure!(
        missing.is_empty() && repeated.is_empty() && by_index.len() as u64 == n,
        "{what}: {} of {n} tagged lines arrived; missing {missing:?}, repeated {repeated:?}",
        by_index.len()
    );
    Ok(())
}

// ---- the file sink ---------------------------------------------------------------------------

/// The file and its rotated predecessors, oldest first: `PATH.N` .. `PATH.1`, `PATH`.
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let entry_name = entry.file_name().to_string_lossy().to_string();
        if let Some(n) = entry_name
            .strip_prefix(&format!("{name}."))
            .and_then(|n| n.parse::<u64>().ok())
        {
            files.push((n, entry.path()));
        }
    }
    files.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut ordered: Vec<PathBuf> = files.into_iter().map(|(_, p)| p).collect();
    ordered.push(path.to_path_buf());
    ordered
}

#[test]
fn the_file_sink_rotates_under_load_and_loses_nothing_between_files() -> Result<()> {
    const RUNS: u64 = 3000;
    const MAX: u64 = 64 * 1024;
    let tag = unique_name("sw-rotate");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let daemon = start_daemon(&[
        "--metrics-addr",
        "none",
        "--file",
        path.to_str().unwrap(),
        "--file-max-size",
        "64KiB",
        "--file-keep",
        "1000",
    ])?;
    run_tagged_execs(&tag, RUNS)?;
    let last = format!("{tag}-{}", RUNS - 1);
    let mut daemon = daemon;
    daemon.wait_for("the last tagged exec on stdout", EVENT_TIMEOUT, |e| {
        is_exec_of(e, &["/bin/true", &last])
    })?;
    let stopped = daemon.stop()?;

    let files = rotated_files(&path);
    ensure!(
        files.len() >= 10,
        "3000 exec lines in 64 KiB files make more than 10 files, found {files:?}"
    );
    let mut lines = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file)?;
        ensure!(
            bytes.len() as u64 <= MAX,
            "{} holds {} bytes, more than --file-max-size",
            file.display(),
            bytes.len()
        );
        ensure!(
            bytes.is_empty() || bytes.last() == Some(&b'\n'),
            "{} ends in the middle of a line",
            file.display()
        );
        lines.extend(String::from_utf8(bytes)?.lines().map(str::to_owned));
    }
    let events = schema::check_lines(&lines)?;
    ensure!(
        sink_loss(&stopped.events, "file") == 0 && sink_loss(&stopped.events, "stdout") == 0,
        "the file sink or stdout reported drops: the comparison below needs every line"
    );
    // Every tagged exec once, in order, across the files; and the files hold exactly what
    // stdout printed (both take every line).
    let indices = tagged(&events, &tag);
    ensure!(
        indices == (0..RUNS).collect::<Vec<_>>(),
        "tagged lines across the files: {} of {RUNS}, in order: {}",
        indices.len(),
        indices.windows(2).all(|w| w[0] < w[1])
    );
    ensure!(
        lines == stopped.lines,
        "the files ({} lines) differ from stdout ({} lines)",
        lines.len(),
        stopped.lines.len()
    );
    Ok(())
}

#[test]
fn each_output_gets_the_lines_it_selects() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    let tag = unique_name("sw-select");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("exec.jsonl");
    let mut daemon = start_daemon(&[
        "--metrics-addr",
        "none",
        "--stdout-events",
        "violations",
        "--file",
        path.to_str().unwrap(),
        "--file-events",
        "exec",
    ])?;
    let c = Runtime::Podman.run_detached(&unique_name("sw-select"), &["sleep", "300"])?;
    let copy = format!("/tmp/{}", unique_name("busybox-copy"));
    c.exec(&["cp", "/bin/busybox", &copy])?;
    c.exec(&[&copy, "true"])?;
    run_tagged_execs(&tag, 5)?;
    daemon.wait_for("the drift-exec violation on stdout", EVENT_TIMEOUT, |e| {
        violation_rule(e) == Some("drift-exec")
    })?;
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let file_events = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if tagged(&events, &tag).len() == 5 {
            break events;
        }
        ensure!(
            Instant::now() < deadline,
            "the 5 tagged execs did not reach the file"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    c.remove()?;
    let stopped = daemon.stop()?;
    // stdout: violations (and loss lines) only; the container's `cp` made a violation too.
    let plain: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| e["violation"].is_null() && e["kind"] != "loss")
        .collect();
    ensure!(
        plain.is_empty(),
        "stdout (violations) printed lines without a violation: {plain:#?}"
    );
    ensure!(
        tagged(&stopped.events, &tag).is_empty(),
        "the tagged host execs reached stdout"
    );
    // The file: exec lines (with or without a violation) and loss lines only.
    let others: Vec<&Value> = file_events
        .iter()
        .filter(|e| e["kind"] != "exec" && e["kind"] != "loss")
        .collect();
    ensure!(others.is_empty(), "the file (exec) got {others:#?}");
    ensure!(
        file_events
            .iter()
            .any(|e| violation_rule(e) == Some("drift-exec")),
        "the drift-exec line (an exec) is missing from the file"
    );
    Ok(())
}

// ---- the OTLP sink ---------------------------------------------------------------------------

/// `date -u -d <rfc3339> +%s`: the line's whole seconds, by a parser that is not ours.
fn unix_seconds(rfc3339: &str) -> Result<u64> {
    let out = cmd::run_ok(
        &mut cmd::command("date", &["-u", "-d", rfc3339, "+%s"]),
        Duration::from_secs(10),
    )?;
    Ok(out.trim().parse()?)
}

fn attribute<'r>(record: &'r Value, key: &str) -> &'r Value {
    &record["attributes"][key]
}

#[test]
fn otlp_records_carry_the_event_and_its_semantic_attributes() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    let token = unique_name("token");
    let receiver = OtlpReceiver::start(ReceiverOptions {
        token: Some(token.clone()),
        ..ReceiverOptions::default()
    })?;
    let node = unique_name("node-otlp");
    let header = format!("Authorization=Bearer {token}");
    let mut daemon = start_daemon(&[
        "--metrics-addr",
        "none",
        "--node",
        &node,
        "--otlp-events",
        "all",
        "--otlp-endpoint",
        &receiver.endpoint(),
        "--otlp-header",
        &header,
    ])?;
    let tag = unique_name("sw-otlp");
    run_tagged_execs(&tag, 3)?;
    let c = Runtime::Podman.run_detached(&unique_name("sw-otlp"), &["sleep", "300"])?;
    let copy = format!("/tmp/{}", unique_name("busybox-copy"));
    c.exec(&["cp", "/bin/busybox", &copy])?;
    c.exec(&[&copy, "true"])?;
    let drift_line = daemon.wait_for("drift-exec", EVENT_TIMEOUT, |e| {
        violation_rule(e) == Some("drift-exec") && e["container"]["id"] == c.id.as_str()
    })?;
    let records = receiver.wait_for_records("the drift-exec record", DELIVERY_TIMEOUT, |rs| {
        rs.iter().any(|r| {
            attribute(r, "sealwatch.rule") == "drift-exec"
                && attribute(r, "container.id") == c.id.as_str()
        })
    })?;
    let container_id = c.id.clone();
    c.remove()?;
    let stopped = daemon.stop()?;

    // Every request: protobuf, gzip, the token.
    let requests = receiver.requests()?;
    ensure!(!requests.is_empty());
    for request in &requests {
        ensure!(
            request["status"] == 200 && request["gzip"] == true,
            "request {request}"
        );
        ensure!(
            request["content_type"] == "application/x-protobuf",
            "request {request}"
        );
    }
    // The tagged host execs: body is the stdout line byte for byte, time from the line.
    let by_index = tagged_records(&records, &tag)?;
    ensure_each_once(&by_index, 3, "tagged host execs")?;
    let record = &by_index[&0][0];
    let line = stopped
        .lines
        .iter()
        .find(|l| serde_json::from_str::<Value>(l).is_ok_and(|e| tagged_index(&e, &tag) == Some(0)))
        .context("the tagged line on stdout")?;
    ensure!(
        record["body"] == line.as_str(),
        "body {} vs line {line}",
        record["body"]
    );
    let event: Value = serde_json::from_str(line)?;
    let time = event["time"].as_str().unwrap();
    let nanos: u64 = time.split('.').nth(1).map_or(Ok(0), |f| {
        format!("{:0<9}", f.trim_end_matches('Z')).parse()
    })?;
    let expected = unix_seconds(time)? * 1_000_000_000 + nanos;
    ensure!(
        record["time_unix_nano"].as_u64() == Some(expected),
        "time_unix_nano {} for time {time}",
        record["time_unix_nano"]
    );
    ensure!(record["severity_number"] == 9 && record["severity_text"] == "info");
    ensure!(*attribute(record, "process.pid") == event["process"]["pid"]);
    ensure!(*attribute(record, "process.executable.path") == event["process"]["exe"]);
    ensure!(
        attribute(record, "process.command_args") == &event["process"]["args"],
        "command args {}",
        attribute(record, "process.command_args")
    );
    ensure!(attribute(record, "sealwatch.kind") == "exec");
    ensure!(record["resource"]["host.name"] == node.as_str());
    ensure!(record["resource"]["service.name"] == "sealwatch");
    ensure!(record["resource"]["service.version"].is_string());
    // The violation: severity on OTel's scale, container attributes by semantic conventions.
    let drift = records
        .iter()
        .find(|r| {
            attribute(r, "sealwatch.rule") == "drift-exec"
                && attribute(r, "container.id") == container_id.as_str()
        })
        .unwrap();
    ensure!(
        drift["severity_number"] == 21 && drift["severity_text"] == "critical",
        "drift severity {} {}",
        drift["severity_number"],
        drift["severity_text"]
    );
    ensure!(attribute(drift, "container.runtime") == "podman");
    ensure!(*attribute(drift, "container.name") == drift_line["container"]["name"]);
    ensure!(*attribute(drift, "container.image.name") == drift_line["container"]["image"]);
    ensure!(attribute(drift, "process.executable.path") == copy.as_str());
    ensure!(body_json(drift)? == drift_line);
    Ok(())
}

#[test]
fn a_collector_that_refuses_the_token_is_logged_once_and_every_line_is_counted() -> Result<()> {
    let receiver = OtlpReceiver::start(ReceiverOptions {
        token: Some(unique_name("right")),
        ..ReceiverOptions::default()
    })?;
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let metrics_addr = addr.to_string();
    let mut daemon = start_daemon(&[
        "--metrics-addr",
        &metrics_addr,
        "--otlp-events",
        "all",
        "--otlp-endpoint",
        &receiver.endpoint(),
        "--otlp-header",
        "Authorization=Bearer wrong",
    ])?;
    let tag = unique_name("sw-401");
    for round in 0..5 {
        run_tagged_execs(&format!("{tag}{round}"), 20)?;
        std::thread::sleep(Duration::from_millis(700));
    }
    // Every line the OTLP sink took was refused: its drops reach the lines handed to it.
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let lines = metric(addr, "sealwatch_output_lines_total")?;
        let dropped = metric(addr, "sealwatch_output_drops_total{sink=\"otlp\"}")?;
        let queued = metric(addr, "sealwatch_sink_queue_bytes{sink=\"otlp\"}")?;
        if queued == 0.0 && dropped >= 100.0 && dropped <= lines {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "otlp drops {dropped}, lines {lines}, queued bytes {queued}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ensure!(metric(addr, "sealwatch_sink_exported_total{sink=\"otlp\"}")? == 0.0);
    daemon.wait_for("a loss line with otlp drops", EVENT_TIMEOUT, |e| {
        e["loss"]["output_by_sink"]["otlp"].as_u64().unwrap_or(0) > 0
    })?;
    let stopped = daemon.stop()?;
    let refusals: Vec<&String> = stopped
        .stderr
        .iter()
        .filter(|l| l.contains("sink refuses lines"))
        .collect();
    ensure!(
        refusals.len() == 1 && refusals[0].contains("HTTP 401"),
        "the refusal must be logged once, with its status: {refusals:#?}"
    );
    let requests = receiver.requests()?;
    ensure!(requests.iter().all(|r| r["status"] == 401));
    ensure!(
        requests.len() < 40,
        "{} requests for 5 rounds of lines: refused batches must not be retried",
        requests.len()
    );
    ensure!(receiver.records()?.is_empty());
    Ok(())
}

#[test]
fn lines_wait_while_the_collector_is_down_and_arrive_once_it_is_back() -> Result<()> {
    const RUNS: u64 = 300;
    let mut receiver = OtlpReceiver::start(ReceiverOptions::default())?;
    receiver.stop()?;
    let mut daemon = start_exporting(&receiver, &["--metrics-addr", "none"])?;
    let tag = unique_name("sw-down");
    run_tagged_execs(&tag, RUNS)?;
    let last = format!("{tag}-{}", RUNS - 1);
    daemon.wait_for("the last tagged exec", EVENT_TIMEOUT, |e| {
        is_exec_of(e, &["/bin/true", &last])
    })?;
    // Down for a while: the exporter retries, and queues.
    std::thread::sleep(Duration::from_secs(4));
    ensure!(receiver.requests()?.is_empty());
    receiver.restart()?;
    let records = receiver.wait_for_records("every tagged line", DELIVERY_TIMEOUT, |rs| {
        tagged_records(rs, &tag).is_ok_and(|t| t.len() as u64 == RUNS)
    })?;
    let stopped = daemon.stop()?;
    ensure_each_once(&tagged_records(&records, &tag)?, RUNS, "after the outage")?;
    ensure!(sink_loss(&stopped.events, "otlp") == 0);
    let warnings = stopped
        .stderr
        .iter()
        .filter(|l| l.contains("sink cannot deliver"))
        .count();
    ensure!(
        warnings == 1,
        "the outage must be logged once, not per try: {warnings} warnings"
    );
    ensure!(
        stopped
            .stderr
            .iter()
            .any(|l| l.contains("sink delivers again")),
        "the recovery must be logged"
    );
    Ok(())
}

#[test]
fn a_full_queue_drops_and_the_loss_lines_count_exactly_what_never_arrived() -> Result<()> {
    let mut receiver = OtlpReceiver::start(ReceiverOptions::default())?;
    receiver.stop()?;
    // A small queue, shared in size with stdout's: stdout's reader (the harness) keeps up.
    let mut daemon = start_daemon(&[
        "--metrics-addr",
        "none",
        "--output-queue",
        "200",
        "--otlp-events",
        "all",
        "--otlp-endpoint",
        &receiver.endpoint(),
    ])?;
    let tag = unique_name("sw-full");
    run_tagged_execs(&tag, 1000)?;
    daemon.wait_for("otlp drops on a loss line", EVENT_TIMEOUT, |e| {
        e["loss"]["output_by_sink"]["otlp"].as_u64().unwrap_or(0) > 0
    })?;
    receiver.restart()?;
    // Then quiet: what was queued goes out; a last tagged exec marks the end.
    let end = format!("{tag}-end");
    std::thread::sleep(Duration::from_secs(2));
    cmd::run_ok(&mut cmd::command("/bin/true", &[&end]), TAGGED_LOOP_TIMEOUT)?;
    receiver.wait_for_records("the end marker", DELIVERY_TIMEOUT, |rs| {
        rs.iter()
            .any(|r| body_json(r).is_ok_and(|b| is_exec_of(&b, &["/bin/true", &end])))
    })?;
    let stopped: Stopped = daemon.stop()?;
    let records = receiver.records()?;
    ensure!(
        sink_loss(&stopped.events, "stdout") == 0,
        "stdout dropped lines: the comparison needs all of them"
    );
    // stdout took every line the OTLP sink was offered (both select all): each either arrived
    // or is in a loss line's otlp count.
    let dropped = sink_loss(&stopped.events, "otlp");
    let offered = stopped.lines.len() as u64;
    ensure!(
        records.len() as u64 + dropped == offered,
        "{} records arrived, {dropped} counted as dropped, {offered} lines offered",
        records.len()
    );
    ensure!(dropped > 0, "the queue of 200 lines never overflowed");
    // And the records are those lines: no line twice, none that stdout did not print.
    let mut printed: HashMap<&str, usize> = HashMap::new();
    for line in &stopped.lines {
        *printed.entry(line.as_str()).or_default() += 1;
    }
    for record in &records {
        let body = record["body"].as_str().context("string body")?;
        let left = printed
            .get_mut(body)
            .with_context(|| format!("a record stdout never printed: {body}"))?;
        ensure!(*left > 0, "a record arrived twice: {body}");
        *left -= 1;
    }
    Ok(())
}

#[test]
fn answers_503_and_429_are_retried_until_accepted() -> Result<()> {
    let receiver = OtlpReceiver::start(ReceiverOptions::default())?;
    receiver.set_status(503, 2)?;
    let daemon = start_exporting(&receiver, &["--metrics-addr", "none"])?;
    let tag = unique_name("sw-503");
    run_tagged_execs(&tag, 20)?;
    receiver.wait_for_records("the tagged lines after two 503s", DELIVERY_TIMEOUT, |rs| {
        tagged_records(rs, &tag).is_ok_and(|t| t.len() == 20)
    })?;
    receiver.set_status(429, 2)?;
    let tag2 = unique_name("sw-429");
    run_tagged_execs(&tag2, 20)?;
    let records =
        receiver.wait_for_records("the tagged lines after two 429s", DELIVERY_TIMEOUT, |rs| {
            tagged_records(rs, &tag2).is_ok_and(|t| t.len() == 20)
        })?;
    let stopped = daemon.stop()?;
    ensure_each_once(&tagged_records(&records, &tag)?, 20, "after 503")?;
    ensure_each_once(&tagged_records(&records, &tag2)?, 20, "after 429")?;
    let statuses: Vec<u64> = receiver
        .requests()?
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    for status in [503, 429] {
        ensure!(
            statuses.iter().filter(|s| **s == status).count() == 2,
            "two {status} answers expected in {statuses:?}"
        );
    }
    // The 429s carried Retry-After: 1; the retry after them came no sooner.
    let requests = receiver.requests()?;
    if let Some(i) = requests.iter().rposition(|r| r["status"] == 429) {
        let (Some(at), Some(next)) = (
            requests[i]["time"].as_f64(),
            requests.get(i + 1).and_then(|r| r["time"].as_f64()),
        ) else {
            bail!("no request after the last 429: {requests:#?}");
        };
        ensure!(
            next - at >= 0.95,
            "retried {:.3} s after a 429 with Retry-After: 1",
            next - at
        );
    }
    ensure!(sink_loss(&stopped.events, "otlp") == 0);
    Ok(())
}

#[test]
fn tls_to_the_collector_with_its_ca_file() -> Result<()> {
    let certs = test_certs()?;
    let receiver = OtlpReceiver::start(ReceiverOptions {
        tls: Some(certs.server_pair()),
        ..ReceiverOptions::default()
    })?;
    // Without the CA the certificate is not trusted: nothing is delivered, the reason is logged.
    let untrusting = start_exporting(&receiver, &["--metrics-addr", "none"])?;
    let tag = unique_name("sw-tls-no");
    run_tagged_execs(&tag, 3)?;
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !untrusting
        .stderr_lines()
        .iter()
        .any(|l| l.contains("sink cannot deliver"))
    {
        ensure!(
            Instant::now() < deadline,
            "no delivery failure logged without the CA"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped = untrusting.stop()?;
    let failure = stopped
        .stderr
        .iter()
        .find(|l| l.contains("sink cannot deliver"))
        .unwrap();
    ensure!(
        failure.to_lowercase().contains("certificate") || failure.contains("UnknownIssuer"),
        "the failure should name the certificate: {failure}"
    );
    ensure!(tagged_records(&receiver.records()?, &tag)?.is_empty());

    let ca = certs.ca.to_str().unwrap().to_string();
    let daemon = start_daemon(&[
        "--metrics-addr",
        "none",
        "--otlp-events",
        "all",
        "--otlp-endpoint",
        &receiver.endpoint(),
        "--otlp-ca-file",
        &ca,
    ])?;
    let tag = unique_name("sw-tls");
    run_tagged_execs(&tag, 3)?;
    let records = receiver.wait_for_records("records over TLS", DELIVERY_TIMEOUT, |rs| {
        tagged_records(rs, &tag).is_ok_and(|t| t.len() == 3)
    })?;
    daemon.stop()?;
    ensure_each_once(&tagged_records(&records, &tag)?, 3, "over TLS")?;
    ensure!(receiver
        .requests()?
        .iter()
        .filter(|r| r["status"] == 200)
        .all(|r| r["tls"] == true));
    Ok(())
}

#[test]
fn bad_sink_flags_end_the_start_with_a_precise_error() -> Result<()> {
    let bin = sealwatch_tests::daemon::daemon_bin()?;
    let dir = tempfile::tempdir()?;
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello")?;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--otlp-endpoint".into(), "collector:4318".into()],
            "is not an http:// or https:// URL",
        ),
        (
            vec![
                "--otlp-endpoint".into(),
                "https://127.0.0.1:1".into(),
                "--otlp-ca-file".into(),
                not_pem.display().to_string(),
            ],
            "holds no PEM certificate",
        ),
        (
            vec![
                "--otlp-endpoint".into(),
                "http://127.0.0.1:1".into(),
                "--otlp-header".into(),
                "Authorization".into(),
            ],
            "is not NAME=VALUE",
        ),
        (
            vec!["--file".into(), "/proc/sealwatch-cannot-write".into()],
            "opening --file /proc/sealwatch-cannot-write",
        ),
        (
            vec!["--stdout-events".into(), "violations,execs".into()],
            "unknown term \"execs\"",
        ),
    ];
    for (args, expected) in cases {
        let mut command = cmd::command(bin.to_str().unwrap(), &["run", "--tail-socket", "none"]);
        command.args(&args).env("SEALWATCH_METRICS_ADDR", "none");
        let out = cmd::run(&mut command, Duration::from_secs(60))?;
        ensure!(!out.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in\n{stderr}"
        );
        ensure!(!stderr.contains("panicked"), "{stderr}");
    }
    Ok(())
}
