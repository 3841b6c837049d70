//! Unit tests of the `network:` section: parsing, errors with their exact location, workload
//! selection, flow and listen judgement, host names, the kernel allowlist.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod errors;
mod kernel;
mod matching;
mod names;
mod parse;

use std::net::IpAddr;

use ipnet::IpNet;

use super::{NetEnvironment, NetworkPolicy, WorkloadId, WorkloadSubject};
use crate::net::{Direction, Flow, Protocol};
use crate::policy::Policy;

/// `version: 1`, `network:`, then `body`: the body starts on line 3.
fn section(body: &str) -> String {
    format!("version: 1\nnetwork:\n{body}")
}

/// The network policy of `version: 1`, `network:` and `body`.
fn network(body: &str) -> NetworkPolicy {
    Policy::parse(&section(body), "p.yaml")
        .unwrap()
        .network()
        .clone()
}

/// One workload `web` (matching image `web:*`) whose remaining keys are `body`; the body starts
/// on line 6 and its keys are indented by 6.
fn web(body: &str) -> String {
    section(&format!(
        "  workloads:\n    - name: web\n      match: {{image: \"web:*\"}}\n{body}"
    ))
}

/// The network policy of [`web`], and the id of `web`.
fn web_policy(body: &str) -> (NetworkPolicy, WorkloadId) {
    let policy = Policy::parse(&web(body), "p.yaml")
        .unwrap()
        .network()
        .clone();
    let id = policy.select(&subject(Some("web:1"), None, None));
    assert_eq!(policy.workload_name(id), "web");
    (policy, id)
}

fn subject<'a>(
    image: Option<&'a str>,
    container_name: Option<&'a str>,
    pod_namespace: Option<&'a str>,
) -> WorkloadSubject<'a> {
    WorkloadSubject {
        image,
        container_name,
        pod_namespace,
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

/// An egress flow from a workload address to `peer:port`.
fn egress(protocol: Protocol, peer: &str, port: u16) -> Flow {
    Flow {
        protocol,
        direction: Direction::Egress,
        peer: ip(peer),
        peer_port: port,
        local: ip("10.88.0.5"),
        local_port: 40312,
    }
}

/// An ingress flow from `peer` (port 50000) accepted on the workload's `local_port`.
fn ingress(protocol: Protocol, peer: &str, local_port: u16) -> Flow {
    Flow {
        protocol,
        direction: Direction::Ingress,
        peer: ip(peer),
        peer_port: 50000,
        local: ip("10.88.0.5"),
        local_port,
    }
}

/// No cluster CIDRs, no API server.
fn no_env() -> NetEnvironment {
    NetEnvironment::default()
}

/// Whether `policy`'s workload `id` allows `flow`, with no names learned.
fn allows(policy: &NetworkPolicy, id: WorkloadId, flow: &Flow) -> bool {
    policy.allows_flow(id, &no_env(), flow, &[])
}
