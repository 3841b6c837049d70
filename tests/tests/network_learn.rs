//! The network sensor (issue #5) and `sealwatch learn`: the policy learn writes from what a
//! container did is accepted by `sealwatch policy check`, allows that same behaviour, and reports
//! what is new.
//!
//! The setting is described in `sealwatch_tests::net_workload`; the test ends with the checks of
//! `sealwatch_tests::net_events::stop_and_check`.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use sealwatch_tests::cmd;
use sealwatch_tests::daemon::daemon_bin;
use sealwatch_tests::learn::Learn;
use sealwatch_tests::net_events::{expect_all, stop_and_check, Case};
use sealwatch_tests::net_workload::{
    at, host_net_container, host_port_taken, nc, net_for, run, start_daemon, PEER_TIMEOUT, PORT_OK,
};
use sealwatch_tests::netns::free_host_ports;
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

/// How long `sealwatch learn` watches in the round-trip test.
const LEARN_DURATION: &str = "8s";

/// `sealwatch learn` while a container connects to a peer and listens on a port writes one
/// policy file for the image, which `sealwatch policy check` accepts. With that file as the
/// policy, the same workload in a new container is no violation; a connect to a new destination
/// is one `unexpected-connection`.
#[test]
fn learned_policy_round_trip() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let tcp = net.tcp_server(PORT_OK)?;
    let listen_port = free_host_ports(1)?[0];
    let peer = at(net.peer_v4(), PORT_OK);
    // The same workload in both containers: one connect, then a listener (no one connects).
    let script = format!(
        "nc -w 2 {} {} </dev/null; nc -l -p {listen_port} & exec sleep 300",
        peer.ip(),
        peer.port()
    );
    let workload = || host_net_container(rt, &unique_name("sw-net"), &["sh", "-c", &script]);
    let out = tempfile::Builder::new().prefix("sw-learned-").tempdir()?;
    let out_dir = out.path().to_str().context("tempdir path is not UTF-8")?;

    let learn = Learn::start(&[
        "--duration",
        LEARN_DURATION,
        "--output",
        out_dir,
        "--metrics-addr",
        "none",
        "--tail-socket",
        "none",
    ])?;
    let first = workload()?;
    tcp.wait_for(
        &format!("the first container's connection to {peer}"),
        PEER_TIMEOUT,
        |a| a.local == peer,
    )?;
    ensure!(
        cmd::poll_until(PEER_TIMEOUT, || host_port_taken(listen_port)),
        "the first container does not listen on port {listen_port}"
    );
    learn.finish(Duration::from_secs(60))?;
    first.remove()?;

    let policy = learned_file(out.path(), rt.image())?;
    policy_check(&policy)?;

    let mut daemon = start_daemon(&policy)?;
    let before = tcp.seen().len();
    let second = workload()?;
    let seen = tcp.wait_for_after(
        before,
        &format!("the second container's connection to {peer}"),
        PEER_TIMEOUT,
        |a| a.local == peer,
    )?;
    let mut cases = vec![
        Case::connect("tcp", peer).from(seen.peer),
        Case::listen("tcp", at(Ipv6Addr::UNSPECIFIED, listen_port)),
    ];
    // A new destination: the other address of the namespace.
    let new = at(net.other_v4(), PORT_OK);
    run(&second, &nc(new))?.succeeded()?;
    cases.push(Case::connect("tcp", new).alerted());
    expect_all(&mut daemon, &second, None, &cases)
        .with_context(|| format!("learned policy {}", policy.display()))?;
    stop_and_check(daemon, &second, &cases).with_context(|| {
        format!(
            "with the learned policy {}:\n{}",
            policy.display(),
            std::fs::read_to_string(&policy).unwrap_or_default()
        )
    })?;
    Ok(())
}

/// `sealwatch policy check POLICY` accepts the file.
fn policy_check(policy: &Path) -> Result<()> {
    let check = cmd::run(
        &mut cmd::command(
            daemon_bin()?.to_str().context("daemon path")?,
            &[
                "policy",
                "check",
                policy.to_str().context("policy path is not UTF-8")?,
            ],
        ),
        cmd::DEFAULT_TIMEOUT,
    )?;
    ensure!(
        check.status.success(),
        "`sealwatch policy check` rejects the learned policy {}: {}\n{}",
        policy.display(),
        String::from_utf8_lossy(&check.stderr),
        std::fs::read_to_string(policy).unwrap_or_default()
    );
    Ok(())
}

/// The one YAML file in `dir` about `image` (learn writes one per image); fails listing the
/// directory otherwise.
fn learned_file(dir: &Path, image: &str) -> Result<PathBuf> {
    let mut all = Vec::new();
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && text.contains(image) {
            ours.push(path.clone());
        }
        all.push(format!("--- {}:\n{text}", path.display()));
    }
    ensure!(
        ours.len() == 1,
        "expected exactly one YAML file naming {image} in {}, got {ours:?}; the directory:\n{}",
        dir.display(),
        all.join("\n")
    );
    Ok(ours.remove(0))
}
