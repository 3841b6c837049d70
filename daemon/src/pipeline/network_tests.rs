//! The network path of the pipeline without a kernel: judging per workload, names learned from
//! DNS answers, and the enforcement requests a blocking workload produces.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::{net::IpAddr, sync::Arc};

use super::{Enforce, Input, Pipeline, PipelineConfig, Request};
use crate::net::pending::Rejection;
use crate::{
    event::{DnsEnds, DnsRecord, KernelEvent, NetOp, NetRecord, Task},
    net::Protocol,
    output::EventLine,
    policy::Policy,
};

const CGROUP: u64 = 4242;
const POLICY: &str = r#"
version: 1
network:
  workloads:
    - name: web
      match: {container_name: "web-*"}
      action: block
      egress:
        - to: ["10.0.0.2"]
          ports: [80]
          protocol: tcp
        - to: ["api.example.test"]
          ports: [443]
      listen:
        - ports: [8080]
"#;

fn container_id() -> String {
    format!("{:064x}", 7)
}

fn pipeline(out: &mut Vec<EventLine>) -> Pipeline {
    let policy = Policy::parse(POLICY, "test.yaml").unwrap();
    let mut p = Pipeline::new(PipelineConfig::for_tests(), Arc::new(policy));
    p.with_podman_container(CGROUP, &container_id(), "web-1", "localhost/web:1", out);
    p
}

fn task(ktime_ns: u64) -> Task {
    super::test_support::task_100(ktime_ns, CGROUP, b"nc")
}

fn connect(peer: &str, port: u16, ret: i32, blocked: bool) -> Input {
    Input::Kernel(KernelEvent::Net(NetRecord {
        task: task(1_000),
        op: NetOp::Connect,
        ret,
        ipv6: false,
        protocol: Some(Protocol::Tcp),
        local: "10.0.0.1".parse().unwrap(),
        local_port: 40000,
        peer: peer.parse().unwrap(),
        peer_port: port,
        blocked,
    }))
}

/// The question of [`dns_query`] and [`dns_answer`]: api.example.test, A, IN.
fn question() -> Vec<u8> {
    let mut q = [&[3u8][..], b"api", &[7], b"example", &[4], b"test", &[0]].concat();
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

/// The container's end and the resolver's of the exchanges below.
fn ends() -> DnsEnds {
    DnsEnds {
        local: "10.0.0.1".parse().unwrap(),
        local_port: 40000,
        peer: "10.0.0.53".parse().unwrap(),
        peer_port: 53,
    }
}

fn dns_record(msg: Vec<u8>, query: bool, ends: DnsEnds, ifindex: u32) -> Input {
    Input::Kernel(KernelEvent::Dns(DnsRecord {
        task: task(if query { 400 } else { 500 }),
        tcp: false,
        len: msg.len() as u32,
        data: msg,
        query,
        ends: Some(ends),
        ifindex,
    }))
}

/// The query the container sends: id 0x1234, api.example.test A.
fn dns_query() -> Input {
    let mut msg = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&question());
    dns_record(msg, true, ends(), 0)
}

/// A DNS response to [`dns_query`] from `ends` on interface `ifindex`: api.example.test A
/// 10.9.9.9, TTL 60.
fn dns_answer_from(ends: DnsEnds, ifindex: u32) -> Input {
    let mut msg = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    msg.extend_from_slice(&question());
    msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 9, 9]);
    dns_record(msg, false, ends, ifindex)
}

/// The resolver's answer to [`dns_query`], on eth0.
fn dns_answer() -> Input {
    dns_answer_from(ends(), 2)
}

fn json(line: &EventLine) -> serde_json::Value {
    serde_json::from_str(&line.to_json()).unwrap()
}

#[test]
fn allowed_and_unexpected_connections_are_judged_per_workload() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    out.clear();
    p.handle(connect("10.0.0.2", 80, 0, false), &mut out);
    p.handle(connect("10.0.0.3", 80, -1, true), &mut out);
    assert_eq!(out.len(), 2, "{out:#?}");
    let allowed = json(&out[0]);
    assert_eq!(allowed["kind"], "connect");
    assert_eq!(allowed["network"]["workload"], "web");
    assert_eq!(allowed["network"]["result"], "success");
    assert!(allowed.get("violation").is_none(), "{allowed}");
    let blocked = json(&out[1]);
    assert_eq!(blocked["network"]["result"], "blocked");
    assert_eq!(blocked["network"]["errno"], 1);
    assert_eq!(blocked["violation"]["rule"], "unexpected-connection");
    assert_eq!(blocked["violation"]["action"], "blocked");
    assert!(
        blocked["violation"]["message"]
            .as_str()
            .unwrap()
            .contains("10.0.0.3:80"),
        "{blocked}"
    );
}

#[test]
fn a_name_learned_from_dns_allows_its_addresses_and_is_reported() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    out.clear();
    p.handle(connect("10.9.9.9", 443, 0, false), &mut out);
    assert_eq!(json(&out[0])["violation"]["rule"], "unexpected-connection");
    p.handle(dns_query(), &mut out);
    p.handle(dns_answer(), &mut out);
    p.handle(connect("10.9.9.9", 443, 0, false), &mut out);
    let line = json(out.last().unwrap());
    assert_eq!(line["network"]["name"], "api.example.test");
    assert!(line.get("violation").is_none(), "{line}");
    // The port still matters: the name allows 443 only.
    p.handle(connect("10.9.9.9", 444, 0, false), &mut out);
    assert_eq!(
        json(out.last().unwrap())["violation"]["rule"],
        "unexpected-connection"
    );
}

#[test]
fn a_blocking_workload_asks_for_its_cgroup_and_learned_addresses() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    let requests = p.take_requests();
    assert!(
        requests.iter().any(|r| matches!(
            r,
            Request::Enforce(Enforce::Cgroup {
                cgroup_id: CGROUP,
                workload: Some(_),
                ..
            })
        )),
        "{requests:?}"
    );
    p.handle(dns_query(), &mut out);
    p.handle(dns_answer(), &mut out);
    let requests = p.take_requests();
    let expected: IpAddr = "10.9.9.9".parse().unwrap();
    assert!(
        requests.iter().any(|r| matches!(
            r,
            Request::Enforce(Enforce::Address { addr, names, .. })
                if *addr == expected && names == &["api.example.test".to_owned()]
        )),
        "{requests:?}"
    );
    // A policy without blocking releases the cgroup.
    p.set_policy(Arc::new(Policy::embedded_default()));
    let requests = p.take_requests();
    assert!(
        requests.iter().any(|r| matches!(
            r,
            Request::Enforce(Enforce::Cgroup {
                cgroup_id: CGROUP,
                workload: None,
                ..
            })
        )),
        "{requests:?}"
    );
}

#[test]
fn undeclared_listeners_are_unexpected() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    out.clear();
    for port in [8080, 4444] {
        p.handle(
            Input::Kernel(KernelEvent::Net(NetRecord {
                task: task(2_000),
                op: NetOp::Listen,
                ret: 0,
                ipv6: true,
                protocol: Some(Protocol::Tcp),
                local: "::".parse().unwrap(),
                local_port: port,
                peer: "::".parse().unwrap(),
                peer_port: 0,
                blocked: false,
            })),
            &mut out,
        );
    }
    assert!(json(&out[0]).get("violation").is_none());
    let bind_shell = json(&out[1]);
    assert_eq!(bind_shell["kind"], "listen");
    assert_eq!(bind_shell["network"]["dst"], serde_json::Value::Null);
    assert_eq!(bind_shell["violation"]["rule"], "unexpected-listener");
}

/// Answers that answer no query of the container teach nothing: no name on the connect line, no
/// kernel allowlist request, and each counted by why.
#[test]
fn forged_dns_answers_teach_nothing_and_are_counted() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    p.take_requests();
    out.clear();
    // Nobody asked.
    p.handle(dns_answer(), &mut out);
    // Asked, but the answer comes over loopback, from the container's own address, or from
    // another server.
    p.handle(dns_query(), &mut out);
    p.handle(dns_answer_from(ends(), 1), &mut out);
    let own = DnsEnds {
        peer: ends().local,
        ..ends()
    };
    p.handle(dns_answer_from(own, 2), &mut out);
    let elsewhere = DnsEnds {
        peer: "10.0.0.66".parse().unwrap(),
        ..ends()
    };
    p.handle(dns_answer_from(elsewhere, 2), &mut out);
    p.handle(connect("10.9.9.9", 443, 0, false), &mut out);
    let line = json(out.last().unwrap());
    assert_eq!(line["violation"]["rule"], "unexpected-connection", "{line}");
    assert!(
        line["network"].get("name").is_none_or(|n| n.is_null()),
        "{line}"
    );
    let requests = p.take_requests();
    assert!(
        !requests
            .iter()
            .any(|r| matches!(r, Request::Enforce(Enforce::Address { .. }))),
        "{requests:?}"
    );
    let rejected = &p.stats().dns_rejected;
    assert_eq!(rejected.get(&Rejection::Unsolicited), Some(&1));
    assert_eq!(rejected.get(&Rejection::Loopback), Some(&2));
    assert_eq!(rejected.get(&Rejection::Mismatch), Some(&1));
    // The query still waits: the real answer teaches.
    p.handle(dns_answer(), &mut out);
    p.handle(connect("10.9.9.9", 443, 0, false), &mut out);
    assert_eq!(
        json(out.last().unwrap())["network"]["name"],
        "api.example.test"
    );
}

/// Over TCP (a 2-byte length before each message) the same matching holds: the answer read
/// from the socket counts when it answers the query seen leaving, and not for a UDP query.
#[test]
fn a_tcp_answer_counts_when_it_answers_a_tcp_query() {
    let tcp = |input: Input| match input {
        Input::Kernel(KernelEvent::Dns(mut record)) => {
            let mut framed = (record.data.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&record.data);
            record.len = framed.len() as u32;
            record.data = framed;
            record.tcp = true;
            // Answers over TCP are read from the socket: no interface.
            record.ifindex = 0;
            Input::Kernel(KernelEvent::Dns(record))
        }
        other => other,
    };
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    out.clear();
    // A UDP query does not make a TCP answer solicited.
    p.handle(dns_query(), &mut out);
    p.handle(tcp(dns_answer()), &mut out);
    assert_eq!(
        p.stats().dns_rejected.get(&Rejection::Unsolicited),
        Some(&1)
    );
    p.handle(tcp(dns_query()), &mut out);
    p.handle(tcp(dns_answer()), &mut out);
    p.handle(connect("10.9.9.9", 443, 0, false), &mut out);
    assert_eq!(
        json(out.last().unwrap())["network"]["name"],
        "api.example.test"
    );
}
