//! The network sensor (issue #5), peers allowed by DNS name: the daemon learns names from the DNS
//! answers a container receives, puts them on its `connect` lines (`network.name`) and judges the
//! connects by the names in the policy's egress rules.
//!
//! The setting is described in `sealwatch_tests::net_workload`; the test ends with the checks of
//! `sealwatch_tests::net_events::finish`.

use std::net::IpAddr;

use anyhow::{ensure, Result};

use sealwatch_tests::dns_server::Zone;
use sealwatch_tests::net_events::finish;
use sealwatch_tests::net_workload::{
    at, net_for, nslookup, run, start_watched, tcp_connect, NetPolicy, DNS_PORT, PEER_TIMEOUT,
    PORT_OK,
};
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

/// Peers allowed by DNS name: `api.sealwatch.test` and `*.svc.sealwatch.test` on port 8080, the
/// names answered by the namespace's DNS server. A connect before any lookup is a violation
/// without a name; after `nslookup`, connects to the answered addresses carry the name and are
/// allowed; a name the policy does not allow is a violation that carries it.
#[test]
fn peers_are_allowed_by_dns_name() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let tcp = net.tcp_server(PORT_OK)?;
    let dns = net.dns_server(
        DNS_PORT,
        Zone::new(300)
            .with("api.sealwatch.test", net.peer_v4())
            .with("db.svc.sealwatch.test", net.other_v4())
            .with("other.sealwatch.test", net.peer_v6()),
    )?;
    let name = unique_name("sw-net");
    let workload = "by-name";
    let policy = NetPolicy::new(workload, &name)
        .egress(&[&net.peer_v4()], &[DNS_PORT], "udp")
        .egress(
            &[&"api.sealwatch.test", &"*.svc.sealwatch.test"],
            &[PORT_OK],
            "tcp",
        )
        .write()?;
    let (daemon, c) = start_watched(policy.path(), rt, &name)?;
    let server = at(net.peer_v4(), DNS_PORT);

    // No DNS answer named fd00:231:X::3.
    let mut cases = vec![tcp_connect(&c, &tcp, at(net.other_v6(), PORT_OK))?.alerted()];
    for (dns_name, addr, allowed) in [
        ("api.sealwatch.test", IpAddr::from(net.peer_v4()), true),
        ("db.svc.sealwatch.test", net.other_v4().into(), true),
        ("other.sealwatch.test", net.peer_v6().into(), false),
    ] {
        let ran = run(&c, &nslookup(dns_name, server))?;
        ensure!(
            ran.stdout.contains(&addr.to_string()),
            "nslookup of {dns_name} should show {addr}: {}",
            ran.describe()
        );
        dns.wait_for(&format!("the query for {dns_name}"), PEER_TIMEOUT, |q| {
            q.name == dns_name && q.answers == 1
        })?;
        let case = tcp_connect(&c, &tcp, at(addr, PORT_OK))?.named(dns_name);
        cases.push(case.alerted_if(!allowed));
    }
    finish(daemon, &c, Some(workload), &cases)?;
    Ok(())
}
