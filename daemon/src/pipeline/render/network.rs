//! The `network` object of connect, accept and listen lines.
use crate::{event::NetRecord, net::Protocol, output::NetworkJson};

const EINPROGRESS: i32 = 115;
const ECONNREFUSED: i32 = 111;
const ENETUNREACH: i32 = 101;
const EHOSTUNREACH: i32 = 113;
const ETIMEDOUT: i32 = 110;

/// The `result` and `errno` fields.
fn result_of(net: &NetRecord) -> (&'static str, Option<u32>) {
    if net.blocked {
        return ("blocked", Some(net.ret.unsigned_abs()));
    }
    if net.ret >= 0 {
        return ("success", None);
    }
    let errno = net.ret.saturating_neg();
    let result = match errno {
        EINPROGRESS => return ("in-progress", None),
        ECONNREFUSED => "refused",
        ENETUNREACH | EHOSTUNREACH => "unreachable",
        ETIMEDOUT => "timed-out",
        _ => "failed",
    };
    (result, Some(errno.unsigned_abs()))
}

/// The `network` object of a line of `kind` (`connect`, `accept` or `listen`); `name`: a DNS name
/// the container learned for the peer, `workload`: the workload's name.
pub fn network_json(
    net: &NetRecord,
    protocol: Protocol,
    kind: &str,
    name: Option<String>,
    workload: String,
) -> NetworkJson {
    let (result, errno) = result_of(net);
    let (direction, src, sport, dst, dport) = match kind {
        "accept" => (
            Some("ingress"),
            net.peer,
            net.peer_port,
            Some(net.local),
            Some(net.local_port),
        ),
        "listen" => (None, net.local, net.local_port, None, None),
        _ => (
            Some("egress"),
            net.local,
            net.local_port,
            Some(net.peer),
            Some(net.peer_port),
        ),
    };
    NetworkJson {
        protocol: protocol.as_str(),
        family: if net.ipv6 { "ipv6" } else { "ipv4" },
        direction,
        src,
        sport,
        dst,
        dport,
        result,
        errno,
        name,
        workload,
    }
}
