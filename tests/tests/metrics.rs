//! Metrics, alerts, health and policy reload with the real parts: the real daemon, a real
//! Prometheus (Debian's package) scraping it every second with the project's alert rules (a copy
//! with short `for:`), real podman containers, real ring-buffer overflows.
//!
//! Every test picks free loopback ports and ends with `Daemon::stop()`, which requires exit status
//! 0 and validates every JSON line against the schema.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::fs::{File, FileTimes};
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use sealwatch_tests::daemon::{Daemon, EVENT_TIMEOUT};
use sealwatch_tests::events::{container_id, is_exec, violation_rule};
use sealwatch_tests::prometheus::{free_port, http_get, rules_with_short_for, sample, Prometheus};
use sealwatch_tests::runtime::{Finished, Runtime};
use sealwatch_tests::{cmd, repo_root, unique_name};

const ROOT_RULE: &str = "root-in-container";
/// How long Prometheus may take to scrape, evaluate and report (1 s intervals).
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(60);

fn metrics_addr() -> Result<SocketAddr> {
    Ok(format!("127.0.0.1:{}", free_port()?).parse()?)
}

/// `GET /metrics` from the daemon; requires 200.
fn scrape(addr: SocketAddr) -> Result<String> {
    let r = http_get(addr, "/metrics")?;
    ensure!(
        r.status == 200,
        "GET /metrics answered {}: {}",
        r.status,
        r.body
    );
    Ok(r.body)
}

fn scraped(addr: SocketAddr, series: &str) -> Result<f64> {
    let body = scrape(addr)?;
    sample(&body, series).with_context(|| format!("no {series} in\n{body}"))
}

/// Waits until the daemon's own /metrics shows `series` at `>= at_least`.
fn wait_metric(addr: SocketAddr, series: &str, at_least: f64) -> Result<f64> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let value = scraped(addr, series)?;
        if value >= at_least {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("{series} stayed at {value}, expected >= {at_least}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `/bin/true` as root in a new podman container (a root-in-container violation unless the
/// policy says otherwise).
fn run_root_container() -> Result<Finished> {
    Runtime::Podman.run_rm(&unique_name("sw-met"), &["/bin/true"])
}

fn wait_violation(daemon: &mut Daemon, c: &Finished) -> Result<Value> {
    daemon.wait_for(
        &format!("{ROOT_RULE} violation of container {}", c.id),
        EVENT_TIMEOUT,
        |e| violation_rule(e) == Some(ROOT_RULE) && container_id(e) == Some(c.id.as_str()),
    )
}

#[test]
fn a_violation_raises_the_counter_and_fires_the_alert_in_prometheus() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    let addr = metrics_addr()?;
    let mut daemon = Daemon::start(&["--metrics-addr", &addr.to_string()])?;
    let dir = tempfile::tempdir()?;
    let rules = dir.path().join("rules.yaml");
    rules_with_short_for(
        &repo_root().join("deploy/prometheus/sealwatch-rules.yaml"),
        &rules,
        "1s",
    )?;
    let prometheus = Prometheus::start(addr, &rules)?;
    prometheus.wait_for("scrape of a ready sealwatch", PROMETHEUS_TIMEOUT, |p| {
        Ok(
            (p.query_sum("up{job=\"sealwatch\"} * on(instance) sealwatch_ready")? == 1.0)
                .then_some(()),
        )
    })?;
    let total = format!("sum(sealwatch_violations_total{{rule=\"{ROOT_RULE}\"}})");
    let before = prometheus.query_sum(&total)?;

    let c = run_root_container()?;
    let event = wait_violation(&mut daemon, &c)?;
    assert_eq!(event["violation"]["severity"], "medium", "{event}");

    let after = prometheus.wait_for("violation counter rise", PROMETHEUS_TIMEOUT, |p| {
        let now = p.query_sum(&total)?;
        Ok((now >= before + 1.0).then_some(now))
    })?;
    let alert = prometheus.wait_for(
        "SealwatchRootInContainer alert (pending or firing)",
        PROMETHEUS_TIMEOUT,
        |p| {
            Ok(p.alerts()?.into_iter().find(|a| {
                a["labels"]["alertname"] == "SealwatchRootInContainer"
                    && a["labels"]["rule"] == ROOT_RULE
            }))
        },
    )?;
    let state = alert["state"].as_str().unwrap_or("");
    assert!(state == "pending" || state == "firing", "{alert}");
    // Alertmanager's severity for a medium rule, and the rule's own beside it.
    assert_eq!(alert["labels"]["severity"], "warning", "{alert}");
    assert_eq!(alert["labels"]["rule_severity"], "medium", "{alert}");
    assert_eq!(alert["labels"]["family"], "root", "{alert}");
    assert_eq!(alert["labels"]["instance"], addr.to_string(), "{alert}");
    assert!(
        alert["annotations"]["runbook"]
            .as_str()
            .is_some_and(|r| r.contains("runAsNonRoot")),
        "{alert}"
    );
    eprintln!(
        "violations {before} -> {after}; alert {state}: {}",
        alert["labels"]
    );
    drop(prometheus);
    daemon.stop()?;
    Ok(())
}

#[test]
fn kernel_drops_metric_equals_the_sum_of_loss_lines() -> Result<()> {
    let addr = metrics_addr()?;
    let daemon = Daemon::start(&[
        "--ring-critical-bytes",
        "4096",
        "--metrics-addr",
        &addr.to_string(),
    ])?;
    // 2000 execs at once into a one-page critical ring: most of them cannot fit.
    let burst = "i=0; while [ $i -lt 2000 ]; do /bin/true & i=$((i+1)); done; wait";
    cmd::run_ok(
        &mut cmd::command("sh", &["-c", burst]),
        Duration::from_secs(300),
    )?;

    // The burst is over. Each tick writes the loss line, then publishes the same totals: once
    // the harness has read every line up to the published tick, both must agree exactly.
    let series = "sealwatch_kernel_drops_total{lane=\"critical\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    let (metric, lines_sum) = loop {
        let metric = scraped(addr, series)?;
        thread::sleep(Duration::from_millis(300));
        let lines_sum: u64 = loss_lines(&daemon.events())
            .iter()
            .map(|l| l["kernel_critical"].as_u64().unwrap_or(0))
            .sum();
        let again = scraped(addr, series)?;
        if metric > 0.0 && metric == again && lines_sum as f64 == metric {
            break (metric, lines_sum);
        }
        if Instant::now() >= deadline {
            bail!("{series} = {metric} (then {again}) but the loss lines add up to {lines_sum}");
        }
    };
    eprintln!("critical drops: metric {metric}, loss lines {lines_sum}");
    let stopped = daemon.stop()?;
    let final_sum: u64 = loss_lines(&stopped.events)
        .iter()
        .map(|l| l["kernel_critical"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        final_sum >= lines_sum,
        "loss lines shrank: {final_sum} < {lines_sum}"
    );
    Ok(())
}

fn loss_lines(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "loss")
        .map(|e| e["loss"].clone())
        .collect()
}

#[test]
fn readyz_turns_from_503_to_200_and_healthz_answers() -> Result<()> {
    let addr = metrics_addr()?;
    // Polls /readyz from before the daemon starts until it says ready, keeping each change.
    let poller = thread::spawn(move || {
        let mut seen: Vec<u16> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(r) = http_get(addr, "/readyz") {
                if seen.last() != Some(&r.status) {
                    seen.push(r.status);
                }
                if r.status == 200 {
                    break;
                }
            }
            thread::sleep(Duration::from_millis(2));
        }
        seen
    });
    let daemon = Daemon::start(&["--metrics-addr", &addr.to_string()])?;
    let seen = poller.join().unwrap();
    assert_eq!(seen, [503, 200], "/readyz answers in order");
    let health = http_get(addr, "/healthz")?;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let body = scrape(addr)?;
    assert_eq!(sample(&body, "sealwatch_ready"), Some(1.0), "{body}");
    assert!(body.contains("sealwatch_build_info{version=\""), "{body}");
    assert_eq!(http_get(addr, "/nope")?.status, 404);
    daemon.stop()?;
    assert!(
        http_get(addr, "/healthz").is_err(),
        "endpoint still up after stop"
    );
    Ok(())
}

/// Policies of the same length, so rewriting one with the old mtime is invisible to the file
/// poll: only SIGHUP can make the daemon reload them.
const ENABLED: &str = "version: 1\nrules:\n  root-in-container:\n    enabled: true \n";
const INVALID: &str = "version: 1\nrules:\n  root-in-container:\n    enabled: maybe\n";
const DISABLED: &str = "version: 1\nrules:\n  root-in-container:\n    enabled: false\n";

/// Rewrites `path` in place (same inode) and puts its modification time back.
fn rewrite_keeping_mtime(path: &Path, text: &str) -> Result<()> {
    let modified = std::fs::metadata(path)?.modified()?;
    std::fs::write(path, text)?;
    File::options()
        .write(true)
        .open(path)?
        .set_times(FileTimes::new().set_modified(modified))?;
    Ok(())
}

fn sighup(daemon: &Daemon) -> Result<()> {
    kill(Pid::from_raw(i32::try_from(daemon.pid())?), Signal::SIGHUP).context("sending SIGHUP")
}

#[test]
fn sighup_reloads_a_valid_policy_and_keeps_the_old_one_on_errors() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    assert_eq!(ENABLED.len(), INVALID.len());
    assert_eq!(ENABLED.len(), DISABLED.len());
    let dir = tempfile::tempdir()?;
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, ENABLED)?;
    let addr = metrics_addr()?;
    let policy_arg = policy.to_str().context("temp path is not UTF-8")?;
    let mut daemon = Daemon::start(&["--policy", policy_arg, "--metrics-addr", &addr.to_string()])?;
    let errors = "sealwatch_policy_reloads_total{result=\"error\"}";
    let successes = "sealwatch_policy_reloads_total{result=\"success\"}";
    // Longer than the 1 s file poll, so a poll-triggered reload would have happened by then.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(scraped(addr, errors)?, 0.0);

    rewrite_keeping_mtime(&policy, INVALID)?;
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(scraped(addr, errors)?, 0.0, "reloaded without SIGHUP");
    sighup(&daemon)?;
    wait_metric(addr, errors, 1.0)?;
    assert_eq!(
        scraped(addr, "sealwatch_policy_last_reload_successful")?,
        0.0
    );
    // The old policy is still in force.
    let c1 = run_root_container()?;
    wait_violation(&mut daemon, &c1)?;

    rewrite_keeping_mtime(&policy, DISABLED)?;
    sighup(&daemon)?;
    wait_metric(addr, successes, 1.0)?;
    assert_eq!(scraped(addr, errors)?, 1.0);
    assert_eq!(
        scraped(addr, "sealwatch_policy_last_reload_successful")?,
        1.0
    );
    let c2 = run_root_container()?;
    daemon.wait_for("exec in the second container", EVENT_TIMEOUT, |e| {
        is_exec(e) && container_id(e) == Some(c2.id.as_str())
    })?;
    thread::sleep(Duration::from_millis(500));
    let stopped = daemon.stop()?;
    let hits: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| container_id(e) == Some(c2.id.as_str()) && violation_rule(e) == Some(ROOT_RULE))
        .collect();
    assert!(
        hits.is_empty(),
        "violations after the rule was disabled: {hits:#?}"
    );
    let failure = stopped
        .stderr
        .iter()
        .find(|l| l.contains("policy reload failed"))
        .context("no `policy reload failed` log line")?;
    assert!(failure.contains("SIGHUP"), "{failure}");
    // The error names file, line and column of the bad value.
    assert!(failure.contains(&format!("{policy_arg}:4:")), "{failure}");
    Ok(())
}

#[test]
fn editing_the_policy_file_reloads_it_without_a_signal() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    let dir = tempfile::tempdir()?;
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, ENABLED)?;
    let addr = metrics_addr()?;
    let policy_arg = policy.to_str().context("temp path is not UTF-8")?;
    let mut daemon = Daemon::start(&["--policy", policy_arg, "--metrics-addr", &addr.to_string()])?;
    std::fs::write(
        &policy,
        "version: 1\nrules:\n  root-in-container:\n    severity: critical\n",
    )?;
    wait_metric(
        addr,
        "sealwatch_policy_reloads_total{result=\"success\"}",
        1.0,
    )?;
    let c = run_root_container()?;
    let event = wait_violation(&mut daemon, &c)?;
    assert_eq!(event["violation"]["severity"], "critical", "{event}");
    let body = scrape(addr)?;
    let series = format!(
        "sealwatch_violations_total{{rule=\"{ROOT_RULE}\",severity=\"critical\",pod_namespace=\"\"}}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut body = body;
    while sample(&body, &series).is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        body = scrape(addr)?;
    }
    assert!(
        sample(&body, &series).is_some_and(|v| v >= 1.0),
        "{series} in\n{body}"
    );
    daemon.stop()?;
    Ok(())
}
