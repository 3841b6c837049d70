//! The network sensor (issue #5) in block mode: a workload with `action: block` has the
//! connections no rule allows denied in the kernel, and the daemon leaves no socket program
//! loaded or attached when it stops.
//!
//! The setting is described in `sealwatch_tests::net_workload`; the test ends with the checks of
//! `sealwatch_tests::net_events::finish`, then looks for what the daemon left in the kernel.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use sealwatch_tests::bpftool;
use sealwatch_tests::dns_server::Zone;
use sealwatch_tests::net_events::{finish, Case};
use sealwatch_tests::net_workload::{
    at, dns_connect, nc, net_for, nslookup, run, start_watched, tcp_connect, tftp, NetPolicy,
    DNS_PORT, DNS_PORT_BAD, PEER_TIMEOUT, PORT_BAD, PORT_OK, TFTP_ERROR, TFTP_PORT,
};
use sealwatch_tests::runtime::Runtime;
use sealwatch_tests::unique_name;

/// `action: block`: connects no rule allows fail in the container with EPERM (TCP over IPv4 and
/// IPv6, UDP `connect()`, UDP `sendto()`), their lines say `blocked` and the servers never see
/// them; the allowed TCP connect and DNS query still go through. After the daemon stopped, no
/// socket program it loaded is left loaded, nor in effect on the container's cgroup.
#[test]
fn block_mode_denies_in_the_kernel() -> Result<()> {
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let ok = net.tcp_server(PORT_OK)?;
    let bad = net.tcp_server(PORT_BAD)?;
    let dns = net.dns_server(DNS_PORT, Zone::new(60))?;
    let dns_bad = net.dns_server(DNS_PORT_BAD, Zone::new(60))?;
    let tftpd = net.udp_server(TFTP_PORT, Some(TFTP_ERROR.to_vec()))?;
    let name = unique_name("sw-net");
    let workload = "blocked";
    let policy = NetPolicy::new(workload, &name)
        .block()
        .egress(&[&net.peer_v4(), &net.peer_v6()], &[PORT_OK], "tcp")
        .egress(&[&net.peer_v4()], &[DNS_PORT], "udp")
        .write()?;
    let programs_before = bpftool::socket_programs()?;
    let (daemon, c) = start_watched(policy.path(), rt, &name)?;
    let cgroup = bpftool::cgroup_v2_dir(c.init_pid()?)?;

    let mut cases = Vec::new();
    for to in [
        at(net.peer_v4(), PORT_BAD),
        at(net.peer_v6(), PORT_BAD),
        at(net.other_v4(), PORT_OK),
    ] {
        run(&c, &nc(to))?.denied()?;
        cases.push(Case::connect("tcp", to).blocked());
    }
    let to = at(net.peer_v4(), DNS_PORT_BAD);
    run(&c, &nslookup("blocked.sealwatch.test", to))?.denied()?;
    cases.push(Case::connect("udp", to).blocked());
    let to = at(net.peer_v4(), TFTP_PORT);
    run(&c, &tftp(to))?.denied()?;
    cases.push(Case::connect("udp", to).blocked());

    // Allowed, after the denied ones: when the servers have seen these, they would have seen
    // the denied ones too.
    cases.push(tcp_connect(&c, &ok, at(net.peer_v4(), PORT_OK))?);
    let to = at(net.peer_v4(), DNS_PORT);
    cases.push(dns_connect(&c, &dns, "allowed.sealwatch.test", to)?);
    ensure!(
        ok.seen().len() == 1 && bad.seen().is_empty(),
        "the TCP servers saw denied connections: port {PORT_OK}: {:?}, port {PORT_BAD}: {:?}",
        ok.seen(),
        bad.seen()
    );
    ensure!(
        dns_bad.seen().is_empty() && tftpd.seen().is_empty(),
        "the UDP servers saw denied datagrams: {:?} {:?}",
        dns_bad.seen(),
        tftpd.seen()
    );

    finish(daemon, &c, Some(workload), &cases)?;
    // The container still runs: its cgroup is there to inspect.
    nothing_left_attached(&programs_before, &cgroup)
}

/// Addresses learned from DNS answers leave the kernel's allowlist when their TTL runs out (the
/// answers say 1 s; the daemon keeps them 30 s, its floor): each name's address is reachable right
/// after the lookup and denied 32 s later (on the other port the names allow, so that each
/// address and each port is seen allowed before). An address the policy itself lists (the DNS
/// server's, for UDP 53) keeps its own entry: a lookup still works.
#[test]
fn learned_addresses_leave_the_kernel_when_their_ttl_runs_out() -> Result<()> {
    const FLOOR: Duration = Duration::from_secs(30);
    let rt = Runtime::Podman;
    let net = net_for(rt)?;
    let servers = [net.tcp_server(PORT_OK)?, net.tcp_server(PORT_BAD)?];
    let (a, b) = ("a.sealwatch.test", "b.sealwatch.test");
    let dns = net.dns_server(
        DNS_PORT,
        Zone::new(1).with(a, net.peer_v4()).with(b, net.other_v4()),
    )?;
    let name = unique_name("sw-net");
    let workload = "expiring";
    let policy = NetPolicy::new(workload, &name)
        .block()
        .egress(&[&net.peer_v4()], &[DNS_PORT], "udp")
        .egress(&[&a, &b], &[PORT_OK, PORT_BAD], "tcp")
        .write()?;
    let (daemon, c) = start_watched(policy.path(), rt, &name)?;
    let server = at(net.peer_v4(), DNS_PORT);
    for dns_name in [a, b] {
        let ran = run(&c, &nslookup(dns_name, server))?;
        dns.wait_for(&format!("the query for {dns_name}"), PEER_TIMEOUT, |q| {
            q.name == dns_name && q.answers == 1
        })
        .with_context(|| ran.describe())?;
    }
    let learned = Instant::now();
    // (name, address, server index before expiry; the other one after)
    let peers = [(a, net.peer_v4(), 0), (b, net.other_v4(), 1)];
    let mut cases = Vec::new();
    for (dns_name, addr, before) in peers {
        let server = &servers[before];
        let to = at(addr, server.local_addr().port());
        cases.push(tcp_connect(&c, server, to)?.named(dns_name));
    }
    std::thread::sleep(
        (learned + FLOOR + Duration::from_secs(2)).saturating_duration_since(Instant::now()),
    );
    let seen: Vec<usize> = servers.iter().map(|s| s.seen().len()).collect();
    for (_, addr, before) in peers {
        let to = at(addr, servers[1 - before].local_addr().port());
        run(&c, &nc(to))?.denied()?;
        cases.push(Case::connect("tcp", to).blocked());
    }
    ensure!(
        servers.iter().zip(&seen).all(|(s, n)| s.seen().len() == *n),
        "connections to expired addresses went through: {:?} {:?}",
        servers[0].seen(),
        servers[1].seen()
    );
    // The DNS server's own policy entry is back in place of the learned one.
    let asked = dns.seen().len();
    let ran = run(&c, &nslookup(a, server))?;
    dns.wait_for_after(
        asked,
        &format!("the query for {a} after expiry"),
        PEER_TIMEOUT,
        |q| q.name == a,
    )
    .with_context(|| ran.describe())?;
    finish(daemon, &c, Some(workload), &cases)?;
    Ok(())
}

/// No socket program that was not loaded before the daemon started (`before`) is still loaded,
/// nor in effect on `cgroup`.
fn nothing_left_attached(before: &BTreeMap<u64, bpftool::Prog>, cgroup: &Path) -> Result<()> {
    let left: Vec<_> = bpftool::socket_programs()?
        .into_values()
        .filter(|p| !before.contains_key(&p.id))
        .collect();
    ensure!(
        left.is_empty(),
        "socket programs loaded while the daemon ran are still loaded after it stopped: {left:#?}"
    );
    let attached: Vec<String> = bpftool::effective_socket_attachments(cgroup)?
        .into_iter()
        .filter(|a| {
            // "<attach type> <id> <name>": only those not there before the daemon started.
            a.split_whitespace()
                .nth(1)
                .and_then(|id| id.parse::<u64>().ok())
                .is_none_or(|id| !before.contains_key(&id))
        })
        .collect();
    ensure!(
        attached.is_empty(),
        "socket programs still in effect on {} after the daemon stopped (`bpftool cgroup show \
         {} effective`):\n{}",
        cgroup.display(),
        cgroup.display(),
        attached.join("\n")
    );
    Ok(())
}
