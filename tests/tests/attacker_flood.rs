//! One container cannot blind the node to another: a container floods the file ring with
//! failing path syscalls (hundreds of thousands of `unlink`s a second, each a kernel record)
//! while another container changes image files and drops executables. The victim's violations
//! all arrive; the flooder's excess is dropped in the kernel at its own budget and shows on its
//! own `loss` lines. (Issue "An attacker inside a container cannot switch sealwatch off",
//! point 7.)

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use sealwatch_tests::daemon::Daemon;
use sealwatch_tests::events::{container_id, violation_rule};
use sealwatch_tests::image::{FIXTURE_FILES, OPEN_PROBE};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::unique_name;

const FLOOD_SECONDS: u64 = 8;
const DROPPED: usize = 20;

fn container(prefix: &str) -> Result<Container> {
    Runtime::Podman.run_detached_with(
        &unique_name(prefix),
        &RunOptions::default(),
        &["sleep", "300"],
    )
}

/// Lines of `c` in `events`.
fn of<'a>(events: &'a [Value], c: &Container) -> impl Iterator<Item = &'a Value> {
    let id = c.id.clone();
    events
        .iter()
        .filter(move |e| container_id(e) == Some(id.as_str()))
}

#[test]
fn a_flooding_container_does_not_blind_the_node_to_another() -> Result<()> {
    Runtime::Podman.ensure_ready()?;
    let daemon = Daemon::start(&["--metrics-addr", "none", "--tail-socket", "none"])?;
    let flooder = container("sw-flood")?;
    let victim = container("sw-victim")?;

    let marker = unique_name("sw-victim");
    let appends: Vec<String> = FIXTURE_FILES
        .iter()
        .map(|f| format!("echo {marker} >> {f}"))
        .collect();
    let victim_script = format!(
        "{}; for i in $(seq {DROPPED}); do cp /bin/busybox /tmp/{marker}-$i; done",
        appends.join("; ")
    );
    let seconds = FLOOD_SECONDS.to_string();
    let flood_out = std::thread::scope(|scope| -> Result<String> {
        let flood = scope.spawn(|| {
            flooder.exec(&[
                OPEN_PROBE,
                "unlink-flood",
                "/nonexistent/sw-flood",
                &seconds,
            ])
        });
        // The flood is under way before the victim acts, and still is when it is done.
        std::thread::sleep(Duration::from_secs(2));
        victim.exec(&["sh", "-c", &victim_script])?;
        flood
            .join()
            .map_err(|_| anyhow::anyhow!("the flood thread panicked"))?
    })?;
    let calls: u64 = flood_out
        .trim()
        .strip_prefix("calls ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("the flood's output: {flood_out:?}"))?;
    ensure!(
        calls >= 200_000,
        "the flood made only {calls} calls: no flood"
    );
    std::thread::sleep(Duration::from_secs(1));
    let stopped = daemon.stop()?;

    // Every violation of the victim arrived.
    let image_changes: Vec<&str> = of(&stopped.events, &victim)
        .filter(|e| violation_rule(e) == Some("image-file-modified"))
        .filter_map(|e| e["file"]["path"].as_str())
        .collect();
    for file in FIXTURE_FILES {
        ensure!(
            image_changes.contains(file),
            "the victim's change of {file} is missing; got {image_changes:?}"
        );
    }
    let dropped = of(&stopped.events, &victim)
        .filter(|e| violation_rule(e) == Some("new-executable"))
        .filter(|e| {
            e["file"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(&format!("/tmp/{marker}-")))
        })
        .count();
    ensure!(
        dropped == DROPPED,
        "{dropped} of the victim's {DROPPED} new executables arrived"
    );

    // The flood cost the flooder, on its own loss lines.
    let budget: u64 = of(&stopped.events, &flooder)
        .filter(|e| e["kind"] == "loss")
        .filter_map(|e| e["loss"]["budget_file"].as_u64())
        .sum();
    ensure!(
        budget > 0,
        "no loss line of the flooder counts budget drops"
    );
    let ring: u64 = stopped
        .events
        .iter()
        .filter(|e| e["kind"] == "loss")
        .filter_map(|e| e["loss"]["kernel_bulk"].as_u64())
        .sum();
    let victim_budget: u64 = of(&stopped.events, &victim)
        .filter(|e| e["kind"] == "loss")
        .filter_map(|e| e["loss"]["budget_file"].as_u64())
        .sum();
    ensure!(
        victim_budget == 0,
        "the victim lost {victim_budget} records to a budget"
    );
    eprintln!(
        "flood: {calls} failing unlinks in {FLOOD_SECONDS} s; {budget} records dropped at the \
         flooder's budget; {ring} bulk-ring drops node-wide; the victim's {} image changes and \
         {DROPPED} new executables all arrived",
        FIXTURE_FILES.len()
    );
    Ok(())
}
