//! The network sensor (issue #5), egress in alert mode: `connect` lines of container processes
//! over TCP (podman and Docker, IPv4 and IPv6) and UDP (`connect()` and `sendto()`), judged by the
//! `network:` section of the policy (`unexpected-connection`). First, without the daemon, that
//! the test network itself works.
//!
//! The setting (a network namespace of peers, host-network containers, busybox clients) is
//! described in `sealwatch_tests::net_workload`. Every test that starts the daemon ends with
//! `sealwatch_tests::net_events::finish`: exit status 0, every line valid against the schema,
//! each expected line exactly once, exactly the expected network violations in the test's
//! container, and no network line of a host process.

use std::net::IpAddr;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use sealwatch_tests::daemon::{Daemon, EVENT_TIMEOUT};
use sealwatch_tests::dns_server::Zone;
use sealwatch_tests::events::container_id;
use sealwatch_tests::net_events::{finish, Case};
use sealwatch_tests::net_workload::{
    at, dns_connect, host_addr, host_net_container, nc, nc_seen, net_for, nslookup, run,
    start_watched, start_workload, strings, tcp_connect, tftp_seen, NetPolicy, DNS_PORT,
    DNS_PORT_BAD, PEER_TIMEOUT, PORT_BAD, PORT_OK, TFTP_ERROR, TFTP_PORT,
};
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

/// Without the daemon: a host-network container reaches the namespace's servers with every
/// client the tests use (nc over IPv4 and IPv6, nslookup, tftp), and the servers see the host's
/// addresses. When this fails, the environment is broken, not the daemon.
#[test]
fn peers_are_reachable_from_a_host_network_container() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let tcp = net.tcp_server(PORT_OK)?;
    let dns = net.dns_server(
        DNS_PORT,
        Zone::new(60).with("api.sealwatch.test", net.peer_v4()),
    )?;
    let tftpd = net.udp_server(TFTP_PORT, Some(TFTP_ERROR.to_vec()))?;
    let c = host_net_container(rt, &unique_name("sw-net"), &["sleep", "300"])?;
    for to in [
        at(net.peer_v4(), PORT_OK),
        at(net.other_v4(), PORT_OK),
        at(net.peer_v6(), PORT_OK),
        at(net.other_v6(), PORT_OK),
    ] {
        let seen = nc_seen(&c, &tcp, to)?;
        let from = host_addr(&net, to);
        ensure!(
            seen.peer.ip() == from,
            "the connection to {to} came from {}, expected {from}",
            seen.peer
        );
    }
    let ran = run(
        &c,
        &nslookup("api.sealwatch.test", at(net.peer_v4(), DNS_PORT)),
    )?;
    ensure!(
        ran.stdout.contains(&net.peer_v4().to_string()),
        "nslookup does not show the address: {}",
        ran.describe()
    );
    dns.wait_for("the A query", PEER_TIMEOUT, |q| {
        q.name == "api.sealwatch.test" && q.answers == 1
    })?;
    for to in [at(net.peer_v4(), TFTP_PORT), at(net.peer_v6(), TFTP_PORT)] {
        let ran = tftp_seen(&c, &tftpd, &net, to)?;
        ensure!(
            !ran.status.success() && ran.stderr.contains("server error"),
            "tftp should end with the server's error: {}",
            ran.describe()
        );
    }
    Ok(())
}

/// TCP over IPv4 and IPv6 in alert mode: connects to the allowed port of the allowed peers are
/// `connect` lines without a violation; the other port, and an address no rule names, are
/// `unexpected-connection` (alert: the connection still happens).
fn egress_tcp(rt: Runtime) -> Result<()> {
    let net = net_for(rt)?;
    let servers = [net.tcp_server(PORT_OK)?, net.tcp_server(PORT_BAD)?];
    let name = unique_name("sw-net");
    let workload = "egress-tcp";
    let policy = NetPolicy::new(workload, &name)
        .egress(&[&net.peer_v4(), &net.peer_v6()], &[PORT_OK], "tcp")
        .write()?;
    let (daemon, c) = start_watched(policy.path(), rt, &name)?;
    let attempts = [
        (at(net.peer_v4(), PORT_OK), false),
        (at(net.peer_v4(), PORT_BAD), true),
        (at(net.other_v4(), PORT_OK), true),
        (at(net.peer_v6(), PORT_OK), false),
        (at(net.peer_v6(), PORT_BAD), true),
    ];
    let mut cases = Vec::new();
    for (to, violation) in attempts {
        let server = &servers[usize::from(to.port() == PORT_BAD)];
        cases.push(tcp_connect(&c, server, to)?.alerted_if(violation));
    }
    finish(daemon, &c, Some(workload), &cases)?;
    Ok(())
}

#[test]
fn podman_egress_tcp_is_judged() -> Result<()> {
    egress_tcp(Runtime::Podman)
}

#[test]
fn docker_egress_tcp_is_judged() -> Result<()> {
    egress_tcp(Runtime::Docker)
}

/// UDP in alert mode, through `connect()` (nslookup) and through `sendto()` with an address
/// (tftp): DNS to the allowed peers on port 53 and tftp to the IPv6 peer are allowed; DNS on
/// port 5353 and tftp to the IPv4 peer are `unexpected-connection`.
#[test]
fn egress_udp_is_judged() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let dns = net.dns_server(DNS_PORT, Zone::new(60))?;
    let dns_bad = net.dns_server(DNS_PORT_BAD, Zone::new(60))?;
    let tftpd = net.udp_server(TFTP_PORT, Some(TFTP_ERROR.to_vec()))?;
    let name = unique_name("sw-net");
    let workload = "egress-udp";
    let policy = NetPolicy::new(workload, &name)
        .egress(&[&net.peer_v4(), &net.peer_v6()], &[DNS_PORT], "udp")
        .egress(&[&net.peer_v6()], &[TFTP_PORT], "udp")
        .write()?;
    let (daemon, c) = start_watched(policy.path(), rt, &name)?;
    let mut cases = Vec::new();
    // nslookup: NXDOMAIN (exit status 1) is fine; the server must have answered.
    for (to, server, violation) in [
        (at(net.peer_v4(), DNS_PORT), &dns, false),
        (at(net.peer_v6(), DNS_PORT), &dns, false),
        (at(net.peer_v4(), DNS_PORT_BAD), &dns_bad, true),
    ] {
        let probe = unique_name("probe").replace('-', "x") + ".sealwatch.test";
        cases.push(dns_connect(&c, server, &probe, to)?.alerted_if(violation));
    }
    // tftp: the server's error ends it (exit status 1). The client end of a sendto() on an
    // unbound socket is chosen in that same call, so it is not checked.
    for (to, violation) in [
        (IpAddr::from(net.peer_v4()), true),
        (net.peer_v6().into(), false),
    ] {
        let to = at(to, TFTP_PORT);
        tftp_seen(&c, &tftpd, &net, to)?;
        cases.push(Case::connect("udp", to).alerted_if(violation));
    }
    finish(daemon, &c, Some(workload), &cases)?;
    Ok(())
}

/// The embedded default policy has no `network:` section: a container's DNS lookup, its
/// connection to another peer and its listener are `connect` and `listen` lines without a
/// violation (observed, `learn` can use them); reaching the cloud metadata service is still an
/// `unexpected-connection`, whatever the connect's result on this machine.
#[test]
fn the_default_policy_observes_and_judges_only_the_metadata_service() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let dns = net.dns_server(DNS_PORT, Zone::new(60))?;
    let server = net.tcp_server(PORT_BAD)?;
    let name = unique_name("sw-net");
    let mut daemon = Daemon::start(&["--metrics-addr", "none", "--tail-socket", "none"])?;
    ensure!(
        daemon
            .stderr_lines()
            .iter()
            .any(|l| l.contains("the network rules wait for declared workloads")),
        "the daemon should say at start-up that the network is only observed"
    );
    let c = start_workload(&mut daemon, rt, &name)?;
    let probe = unique_name("probe").replace('-', "x") + ".sealwatch.test";
    let lookup = dns_connect(&c, &dns, &probe, at(net.peer_v4(), DNS_PORT))?;
    let connect = tcp_connect(&c, &server, at(net.other_v4(), PORT_BAD))?;
    // A listener on a port nobody declared.
    let listen_port = 39123;
    run(
        &c,
        &strings(&[
            "sh",
            "-c",
            &format!("nc -l -p {listen_port} & sleep 1; kill $!"),
        ]),
    )?;
    let metadata = at(std::net::Ipv4Addr::new(169, 254, 169, 254), 80);
    // Connected, refused or unreachable: the attempt is what is judged.
    let _ = run(&c, &nc(metadata))?;
    daemon.wait_for("the metadata connect", EVENT_TIMEOUT, |e| {
        e["kind"] == "connect"
            && container_id(e) == Some(c.id.as_str())
            && e["network"]["dst"] == "169.254.169.254"
    })?;
    let id = c.id.clone();
    c.remove()?;
    let stopped = daemon.stop()?;
    let lines: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|e| container_id(e) == Some(id.as_str()) && !e["network"].is_null())
        .collect();
    for case in [&lookup, &connect] {
        let dst = case.dst.context("a connect case has a peer")?;
        let line = lines
            .iter()
            .find(|e| {
                e["kind"] == "connect"
                    && e["network"]["dst"] == dst.ip().to_string().as_str()
                    && e["network"]["dport"] == dst.port()
            })
            .with_context(|| format!("no connect line to {dst} in {lines:#?}"))?;
        ensure!(
            line["violation"].is_null(),
            "the default policy judged an ordinary connection: {line}"
        );
    }
    let listener = lines
        .iter()
        .find(|e| e["kind"] == "listen" && e["network"]["sport"] == listen_port)
        .with_context(|| format!("no listen line for port {listen_port} in {lines:#?}"))?;
    ensure!(
        listener["violation"].is_null(),
        "the default policy judged a listener: {listener}"
    );
    let violations: Vec<&&Value> = lines.iter().filter(|e| !e["violation"].is_null()).collect();
    ensure!(
        violations.len() == 1
            && violations[0]["violation"]["rule"] == "unexpected-connection"
            && violations[0]["network"]["dst"] == "169.254.169.254",
        "exactly the metadata connect should be a violation: {violations:#?}"
    );
    Ok(())
}
