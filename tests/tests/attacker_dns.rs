//! The attacker, on the network: root inside a podman container whose workload allows a host by
//! name forges DNS answers, to teach sealwatch that the allowed name has an address of its
//! choosing and then reach that address without a violation (or, in block mode, through the
//! kernel's allowlist). Issue #19 point 6: an answer is evidence only when it answers a query
//! the container sent.
//!
//! Two forgeries, each checked to have reached the container's socket (a receiver in the
//! container prints what it got) and to have been rejected by the daemon for the right reason
//! (`sealwatch_dns_answers_rejected_total{reason}` on its own /metrics):
//! - from inside: the container sends itself an answer from port 53 over loopback;
//! - from a peer: a network namespace the test made sends the container an answer nobody asked
//!   for, from port 53.
//!
//! Then a connect to each forged address is still `unexpected-connection` (in block mode: denied
//! in the kernel), while the control, a real query and its answer from the policy's DNS server,
//! teaches the name: the connect to the answered address is allowed and named.
//!
//! The setting is `sealwatch_tests::net_workload`'s (host-network container, peers in a test
//! network namespace); the test ends with `sealwatch_tests::net_events::finish`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use sealwatch_tests::daemon::{Daemon, EVENT_TIMEOUT};
use sealwatch_tests::dns_server::{build_query, Zone, TYPE_A, TYPE_AAAA};
use sealwatch_tests::image::NET_PROBE;
use sealwatch_tests::net_events::finish;
use sealwatch_tests::net_events::Case;
use sealwatch_tests::net_workload::{
    at, free_udp_port, nc, net_for, nslookup, run, start_workload, strings, tcp_connect, NetPolicy,
    Ran, DNS_PORT, PEER_TIMEOUT, PORT_OK,
};
use sealwatch_tests::netns::TestNet;
use sealwatch_tests::prometheus::{free_port, http_get, sample};
use sealwatch_tests::runtime::{Container, Runtime};
use sealwatch_tests::unique_name;

/// The name the workload may reach (on [`PORT_OK`], TCP).
const ALLOWED: &str = "allowed.sealwatch.test";
/// How long a receiver in the container waits for the forged datagram (seconds).
const RECEIVE_SECS: &str = "10";

#[test]
fn forged_dns_answers_teach_nothing() -> Result<()> {
    forged_answers(false)
}

#[test]
fn forged_dns_answers_open_nothing_in_block_mode() -> Result<()> {
    forged_answers(true)
}

fn forged_answers(block: bool) -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    // The accomplice: a peer of its own, which no query of the container ever went to.
    let accomplice = TestNet::create()?;
    let tcp = net.tcp_server(PORT_OK)?;
    let dns = net.dns_server(DNS_PORT, Zone::new(300).with(ALLOWED, net.peer_v4()))?;
    let (loop_port, peer_port) = two_udp_ports()?;
    let name = unique_name("sw-dnsatk");
    let workload = "by-name";
    let mut policy = NetPolicy::new(workload, &name)
        .egress(&[&net.peer_v4()], &[DNS_PORT], "udp")
        .egress(&[&ALLOWED], &[PORT_OK], "tcp")
        // The forger's own datagram to itself, and the receivers: allowed, so that only the
        // forged names are under test.
        .egress(&[&"127.0.0.1"], &[loop_port], "udp")
        .listen(&[loop_port, peer_port], "udp");
    if block {
        policy = policy.block();
    }
    let policy = policy.write()?;
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let policy_arg = policy.path().to_str().context("policy path is not UTF-8")?;
    let mut daemon = Daemon::start(&[
        "--metrics-addr",
        &metrics.to_string(),
        "--tail-socket",
        "none",
        "--policy",
        policy_arg,
    ])?;
    let c = start_workload(&mut daemon, rt, &name)?;
    let any = |port| at(Ipv6Addr::UNSPECIFIED, port);
    let mut cases = Vec::new();

    // From inside: 127.0.0.2:53 -> 127.0.0.1, "allowed.sealwatch.test is 10.231.X.3".
    let forged = hex(&answer(0x5151, net.other_v4().into())?);
    let script = format!(
        "{NET_PROBE} udp-recv {loop_port} {RECEIVE_SECS} > /tmp/got 2>&1 & sleep 0.5; \
         {NET_PROBE} udp-from 127.0.0.2 53 127.0.0.1 {loop_port} {forged}; wait; cat /tmp/got"
    );
    let ran = run(&c, &strings(&["sh", "-c", &script]))?;
    received(&ran, "::ffff:127.0.0.2 53")?;
    cases.push(Case::listen("udp", any(loop_port)).exe(NET_PROBE));
    // Binding port 53 to forge from it is itself a listener the workload does not declare.
    let forger = at([127, 0, 0, 2], DNS_PORT);
    cases.push(
        Case::listen("udp", forger)
            .exe(NET_PROBE)
            .unexpected_listener(),
    );
    cases.push(Case::connect("udp", at([127, 0, 0, 1], loop_port)).exe(NET_PROBE));
    wait_rejected(metrics, "loopback")?;

    // From a peer nobody asked: 10.231.Y.2:53 -> the container at 10.231.Y.1, "allowed is
    // fd00:231:X::3".
    let forged = answer(0x5252, net.other_v6().into())?;
    let ran = receive_from_accomplice(&c, &accomplice, peer_port, &forged)?;
    received(&ran, &format!("::ffff:{} 53", accomplice.peer_v4()))?;
    cases.push(Case::listen("udp", any(peer_port)).exe(NET_PROBE));
    wait_rejected(metrics, "unsolicited")?;

    // Neither forged address became allowed.
    for forged_addr in [IpAddr::from(net.other_v4()), net.other_v6().into()] {
        let to = at(forged_addr, PORT_OK);
        if block {
            run(&c, &nc(to))?.denied()?;
            cases.push(Case::connect("tcp", to).blocked());
        } else {
            cases.push(tcp_connect(&c, &tcp, to)?.alerted());
        }
    }

    // The control: the policy's DNS server answers a real query, and that teaches the name.
    let ran = run(&c, &nslookup(ALLOWED, at(net.peer_v4(), DNS_PORT)))?;
    ensure!(
        ran.stdout.contains(&net.peer_v4().to_string()),
        "nslookup of {ALLOWED} should show {}: {}",
        net.peer_v4(),
        ran.describe()
    );
    dns.wait_for(&format!("the query for {ALLOWED}"), PEER_TIMEOUT, |q| {
        q.name == ALLOWED && q.answers == 1
    })?;
    cases.push(tcp_connect(&c, &tcp, at(net.peer_v4(), PORT_OK))?.named(ALLOWED));
    ensure!(
        tcp.seen()
            .iter()
            .all(|a| !block || a.local.ip() == IpAddr::from(net.peer_v4())),
        "block mode let a connection to a forged address through: {:?}",
        tcp.seen()
    );

    finish(daemon, &c, Some(workload), &cases)?;
    accomplice.remove()
}

/// A response of the test's DNS server software saying that [`ALLOWED`] is `addr`, id `id`.
fn answer(id: u16, addr: IpAddr) -> Result<Vec<u8>> {
    let qtype = if addr.is_ipv4() { TYPE_A } else { TYPE_AAAA };
    let zone = Zone::new(3600).with(ALLOWED, addr);
    zone.answer(&build_query(id, ALLOWED, qtype))
        .map(|a| a.response)
        .ok_or_else(|| anyhow!("the zone did not answer its own query"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Two different free UDP ports of the host.
fn two_udp_ports() -> Result<(u16, u16)> {
    let first = free_udp_port()?;
    for _ in 0..10 {
        let second = free_udp_port()?;
        if second != first {
            return Ok((first, second));
        }
    }
    bail!("no second free UDP port")
}

/// The receiver in `c` printed that it got a datagram from `from` ("ADDR PORT").
fn received(ran: &Ran, from: &str) -> Result<()> {
    ensure!(
        ran.stdout.contains(&format!("bytes from {from}")),
        "the forged answer did not reach the container's socket (expected one from {from}): {}",
        ran.describe()
    );
    Ok(())
}

/// A receiver on `port` in `c`, and `forged` sent to it from port 53 of `accomplice` until the
/// receiver got something (the receiver's bind and the first send may race).
fn receive_from_accomplice(
    c: &Container,
    accomplice: &TestNet,
    port: u16,
    forged: &[u8],
) -> Result<Ran> {
    let argv = strings(&[NET_PROBE, "udp-recv", &port.to_string(), RECEIVE_SECS]);
    let to = at(accomplice.host_v4(), port);
    let from = at(accomplice.peer_v4(), DNS_PORT);
    thread::scope(|scope| {
        let receiver = scope.spawn(|| run(c, &argv));
        let socket = accomplice
            .run_in(|| UdpSocket::bind(from).with_context(|| format!("binding udp {from}")))?;
        while !receiver.is_finished() {
            socket
                .send_to(forged, to)
                .with_context(|| format!("sending the forged answer to {to}"))?;
            thread::sleep(Duration::from_millis(200));
        }
        receiver
            .join()
            .map_err(|_| anyhow!("the receiver thread panicked"))?
    })
}

/// Waits until the daemon's /metrics counts a rejected answer for `reason`.
fn wait_rejected(addr: SocketAddr, reason: &str) -> Result<()> {
    let series = format!("sealwatch_dns_answers_rejected_total{{reason=\"{reason}\"}}");
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let response = http_get(addr, "/metrics")?;
        let value = sample(&response.body, &series);
        if value.is_some_and(|v| v >= 1.0) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{series} stayed at {value:?}: the daemon did not see the forged answer, or \
                 rejected it for another reason:\n{}",
                response
                    .body
                    .lines()
                    .filter(|l| l.starts_with("sealwatch_dns"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}
