//! The network sensor (issue #5), listeners and ingress: `listen` lines (TCP `listen()`, UDP
//! `bind()` to a port) judged by the policy's `listen:` rules (`unexpected-listener`), and
//! `accept` lines judged by its `ingress:` rules (`unexpected-connection`).
//!
//! The setting is described in `sealwatch_tests::net_workload`; the test ends with the checks of
//! `sealwatch_tests::net_events::stop_and_check`.

use std::net::Ipv6Addr;

use anyhow::{ensure, Result};

use sealwatch_tests::image::NET_PROBE;
use sealwatch_tests::net_events::{expect, expect_all, stop_and_check, Case};
use sealwatch_tests::net_workload::{
    at, free_udp_port, host_net_container, net_for, run, start_daemon, strings, NetPolicy,
};
use sealwatch_tests::netns::free_host_ports;
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

/// Four `nc -l` in one container: three on declared ports (`listen` lines without a violation),
/// one on an undeclared port (`unexpected-listener`); UDP `bind()` (the image's network probe) to
/// a port declared for UDP (no violation) and to one declared for TCP only
/// (`unexpected-listener`). Then, from the namespace: connections to
/// the two ports whose ingress allows the namespace (IPv4 and IPv6) are `accept` lines without
/// a violation; one to the declared port without an ingress rule is `unexpected-connection`.
#[test]
fn listeners_and_ingress_are_judged() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let ports = free_host_ports(4)?;
    let [in_v4, in_v6, no_ingress, undeclared] = [ports[0], ports[1], ports[2], ports[3]];
    let udp_port = free_udp_port()?;
    let name = unique_name("sw-net");
    let workload = "listeners";
    let policy = NetPolicy::new(workload, &name)
        .listen(&[in_v4, in_v6, no_ingress], "tcp")
        .listen(&[udp_port], "udp")
        .ingress(&[&net.peer_v4(), &net.peer_v6()], &[in_v4, in_v6], "tcp")
        .write()?;
    let mut daemon = start_daemon(policy.path())?;
    // `nc -l -p PORT` binds [::]:PORT (dual-stack) and accepts one connection.
    let script = format!(
        "nc -l -p {in_v4} & nc -l -p {in_v6} & nc -l -p {no_ingress} & nc -l -p {undeclared} & \
         exec sleep 300"
    );
    let c = host_net_container(rt, &name, &["sh", "-c", &script])?;
    let any = |port| at(Ipv6Addr::UNSPECIFIED, port);
    let mut cases = vec![
        Case::listen("tcp", any(in_v4)),
        Case::listen("tcp", any(in_v6)),
        Case::listen("tcp", any(no_ingress)),
        Case::listen("tcp", any(undeclared)).unexpected_listener(),
    ];
    // UDP: bind() to a declared UDP port, and to a port declared for TCP only.
    for (port, declared) in [(udp_port, true), (in_v4, false)] {
        let ran = run(&c, &strings(&[NET_PROBE, "udp-bind", &port.to_string()]))?;
        ensure!(
            ran.status.success() && ran.stdout.contains("ok"),
            "udp-bind {port} failed: {}",
            ran.describe()
        );
        let case = Case::listen("udp", any(port)).exe(NET_PROBE);
        cases.push(if declared {
            case
        } else {
            case.unexpected_listener()
        });
    }
    // The listen lines also say that the listeners are up.
    expect_all(&mut daemon, &c, Some(workload), &cases)?;
    for (to, allowed) in [
        (at(net.host_v4(), in_v4), true),
        (at(net.host_v6(), in_v6), true),
        (at(net.host_v4(), no_ingress), false),
    ] {
        let connected = net.connect_tcp(to)?;
        // nc's socket is dual-stack: family ipv6, IPv4 peers written as IPv4.
        let case = Case::accept(connected.local, to)
            .dual_stack()
            .alerted_if(!allowed);
        expect(&mut daemon, &c, Some(workload), &case)?;
        cases.push(case);
    }
    stop_and_check(daemon, &c, &cases)?;
    Ok(())
}
