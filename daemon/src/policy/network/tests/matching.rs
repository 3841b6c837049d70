//! Workload selection, and flows and listening ports judged against a workload.

use super::super::{NetEnvironment, WorkloadId};
use super::{allows, egress, ingress, nets, network, no_env, subject, web_policy};
use crate::net::Protocol::{Tcp, Udp};

#[test]
fn first_matching_workload_in_file_order_else_default() {
    let network = network(
        "  workloads:\n    - name: shop-web\n      match: {image: \"web:*\", pod_namespace: \
         shop}\n    - name: web\n      match: {image: \"web:*\"}\n    - name: named\n      \
         match: {container_name: \"api-*\"}\n",
    );
    let id = |image, name, namespace| network.select(&subject(image, name, namespace));
    assert_eq!(id(Some("web:1"), None, Some("shop")), WorkloadId(0));
    // All given fields must match: another namespace falls through to `web`.
    assert_eq!(id(Some("web:1"), None, Some("other")), WorkloadId(1));
    // A given field never matches an unknown value (a container outside Kubernetes).
    assert_eq!(id(Some("web:1"), None, None), WorkloadId(1));
    assert_eq!(id(Some("web:1"), Some("api-1"), None), WorkloadId(1));
    assert_eq!(id(Some("api:1"), Some("api-1"), None), WorkloadId(2));
    assert_eq!(id(None, Some("api-1"), None), WorkloadId(2));
    assert_eq!(
        id(Some("db:1"), Some("db-1"), Some("shop")),
        WorkloadId::DEFAULT
    );
    assert_eq!(id(None, None, None), WorkloadId::DEFAULT);
    assert_eq!(
        network.workload_ids().collect::<Vec<_>>(),
        [
            WorkloadId(0),
            WorkloadId(1),
            WorkloadId(2),
            WorkloadId::DEFAULT
        ]
    );
    let names: Vec<&str> = network
        .workload_ids()
        .map(|id| network.workload_name(id))
        .collect();
    assert_eq!(names, ["shop-web", "web", "named", "default"]);
}

#[test]
fn match_globs_work_as_in_exceptions() {
    let network = network(
        "  workloads:\n    - name: w\n      match: {image: \"registry.example/{web,api}:*\"}\n",
    );
    let id = |image| network.select(&subject(Some(image), None, None));
    assert_eq!(id("registry.example/web:1"), WorkloadId(0));
    assert_eq!(id("registry.example/api:2.0"), WorkloadId(0));
    assert_eq!(id("registry.example/db:1"), WorkloadId::DEFAULT);
    assert_eq!(id("registry.example/web"), WorkloadId::DEFAULT);
}

#[test]
fn egress_by_address_cidr_and_port() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.1.2.3, \
         192.168.0.0/16, \"fd00::/64\", \"fd00:1::5\"]\n          \
         ports: [443, \"8000-8100\"]\n          protocol: tcp\n",
    );
    for peer in ["10.1.2.3", "192.168.255.255", "fd00::abcd", "fd00:1::5"] {
        assert!(allows(&policy, id, &egress(Tcp, peer, 443)), "{peer}");
        assert!(allows(&policy, id, &egress(Tcp, peer, 8000)), "{peer}");
        assert!(allows(&policy, id, &egress(Tcp, peer, 8100)), "{peer}");
        assert!(!allows(&policy, id, &egress(Tcp, peer, 7999)), "{peer}");
        assert!(!allows(&policy, id, &egress(Tcp, peer, 8101)), "{peer}");
        assert!(!allows(&policy, id, &egress(Udp, peer, 443)), "{peer}");
    }
    for peer in ["10.1.2.4", "192.169.0.1", "fd00:0:0:1::1", "fd00:1::6"] {
        assert!(!allows(&policy, id, &egress(Tcp, peer, 443)), "{peer}");
    }
}

#[test]
fn any_entry_may_allow() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.0.0.0/8]\n          ports: [53]\n          protocol: \
         udp\n        - to: [10.0.0.0/8]\n          ports: [443]\n          protocol: tcp\n",
    );
    assert!(allows(&policy, id, &egress(Udp, "10.9.9.9", 53)));
    assert!(allows(&policy, id, &egress(Tcp, "10.9.9.9", 443)));
    assert!(!allows(&policy, id, &egress(Tcp, "10.9.9.9", 53)));
    assert!(!allows(&policy, id, &egress(Udp, "10.9.9.9", 443)));
}

#[test]
fn ipv4_mapped_peers_and_cidrs_are_ipv4() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: \
         [10.0.0.0/8, \"::ffff:192.168.1.0/120\", \"::ffff:172.16.0.1\"]\n",
    );
    // A dual-stack socket's peer `::ffff:10.1.1.1` is judged as 10.1.1.1.
    assert!(allows(&policy, id, &egress(Tcp, "::ffff:10.1.1.1", 80)));
    assert!(allows(&policy, id, &egress(Tcp, "10.1.1.1", 80)));
    // Mapped CIDRs and addresses in the policy are IPv4 ones.
    assert!(allows(&policy, id, &egress(Tcp, "192.168.1.77", 80)));
    assert!(allows(&policy, id, &egress(Tcp, "::ffff:192.168.1.77", 80)));
    assert!(!allows(&policy, id, &egress(Tcp, "192.168.2.1", 80)));
    assert!(allows(&policy, id, &egress(Tcp, "172.16.0.1", 80)));
    assert!(!allows(&policy, id, &egress(Tcp, "11.0.0.1", 80)));
}

#[test]
fn ipv6_cidrs_never_cover_ipv4_peers() {
    let (policy, id) = web_policy("      egress:\n        - to: [\"::/0\"]\n");
    assert!(allows(&policy, id, &egress(Tcp, "2001:db8::1", 80)));
    assert!(!allows(&policy, id, &egress(Tcp, "10.0.0.1", 80)));
    assert!(!allows(&policy, id, &egress(Tcp, "::ffff:10.0.0.1", 80)));
    let (policy, id) = web_policy("      egress:\n        - to: [0.0.0.0/0]\n");
    assert!(allows(&policy, id, &egress(Tcp, "10.0.0.1", 80)));
    assert!(!allows(&policy, id, &egress(Tcp, "2001:db8::1", 80)));
}

#[test]
fn builtin_sets() {
    let (policy, id) =
        web_policy("      egress:\n        - to: [\"set:loopback\", \"set:cloud-metadata\"]\n");
    for peer in [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
    ] {
        assert!(allows(&policy, id, &egress(Tcp, peer, 80)), "{peer}");
    }
    for peer in ["128.0.0.1", "::2", "169.254.169.253", "fd00:ec2::253"] {
        assert!(!allows(&policy, id, &egress(Tcp, peer, 80)), "{peer}");
    }
}

#[test]
fn environment_sets() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [\"set:kubernetes-api\"]\n          ports: [443]\n      \
         ingress:\n        - from: [\"set:cluster\"]\n          ports: [8080]\n",
    );
    // Not configured: both sets are empty.
    assert!(!allows(&policy, id, &egress(Tcp, "10.96.0.1", 443)));
    assert!(!allows(&policy, id, &ingress(Tcp, "10.244.1.1", 8080)));

    let env = NetEnvironment {
        cluster_cidrs: nets(&["10.244.0.0/16", "fd00:10:244::/56"]),
        kubernetes_api: nets(&["10.96.0.1/32"]),
    };
    let judge = |flow| policy.allows_flow(id, &env, &flow, &[]);
    assert!(judge(egress(Tcp, "10.96.0.1", 443)));
    assert!(!judge(egress(Tcp, "10.96.0.1", 80)));
    assert!(!judge(egress(Tcp, "10.96.0.2", 443)));
    assert!(judge(ingress(Tcp, "10.244.1.1", 8080)));
    assert!(judge(ingress(Udp, "fd00:10:244::1", 8080)));
    assert!(!judge(ingress(Tcp, "10.245.0.1", 8080)));
    // Ingress is judged on the local port, not the peer's.
    assert!(!judge(ingress(Tcp, "10.244.1.1", 50000)));

    // IPv4-mapped environment CIDRs are IPv4 ones.
    let env = NetEnvironment {
        cluster_cidrs: nets(&["::ffff:10.244.0.0/112"]),
        kubernetes_api: Vec::new(),
    };
    assert!(policy.allows_flow(id, &env, &ingress(Tcp, "10.244.3.3", 8080), &[]));
}

#[test]
fn environment_from_the_daemon() {
    let env =
        NetEnvironment::with_service_host(nets(&["10.244.0.0/16"]), Vec::new(), Some("10.96.0.1"));
    assert_eq!(env.cluster_cidrs, nets(&["10.244.0.0/16"]));
    assert_eq!(env.kubernetes_api, nets(&["10.96.0.1/32"]));
    // --kubernetes-api wins over the variable.
    let env =
        NetEnvironment::with_service_host(Vec::new(), nets(&["10.0.0.1/32"]), Some("10.96.0.1"));
    assert_eq!(env.kubernetes_api, nets(&["10.0.0.1/32"]));
    let env = NetEnvironment::with_service_host(Vec::new(), Vec::new(), Some("fd00:96::1"));
    assert_eq!(env.kubernetes_api, nets(&["fd00:96::1/128"]));
    // Not an address, empty, unset: no API server.
    for host in [Some("kubernetes.default.svc"), Some(""), None] {
        let env = NetEnvironment::with_service_host(Vec::new(), Vec::new(), host);
        assert_eq!(env, NetEnvironment::default(), "{host:?}");
    }
    // Flags are canonical: mapped IPv4 and host bits.
    let env = NetEnvironment::with_service_host(
        nets(&["::ffff:10.1.2.3/104", "10.9.9.9/8"]),
        Vec::new(),
        None,
    );
    assert_eq!(env.cluster_cidrs, nets(&["10.0.0.0/8", "10.0.0.0/8"]));
}

#[test]
fn ingress_is_judged_on_the_local_port() {
    let (policy, id) = web_policy(
        "      ingress:\n        - from: [10.0.0.0/8, \"set:loopback\"]\n          ports: \
         [8080]\n          \
         protocol: tcp\n",
    );
    assert!(allows(&policy, id, &ingress(Tcp, "10.1.1.1", 8080)));
    assert!(allows(&policy, id, &ingress(Tcp, "127.0.0.1", 8080)));
    assert!(!allows(&policy, id, &ingress(Tcp, "10.1.1.1", 8081)));
    assert!(!allows(&policy, id, &ingress(Udp, "10.1.1.1", 8080)));
    assert!(!allows(&policy, id, &ingress(Tcp, "11.1.1.1", 8080)));
    // Egress is a different list.
    assert!(!allows(&policy, id, &egress(Tcp, "10.1.1.1", 8080)));
    // Names learned for an ingress peer change nothing.
    assert!(!policy.allows_flow(
        id,
        &no_env(),
        &ingress(Tcp, "11.1.1.1", 8080),
        &["x.example"]
    ));
}

#[test]
fn listening_ports() {
    let (policy, id) = web_policy(
        "      listen:\n        - ports: [8080, \"9000-9002\"]\n          protocol: tcp\n        - \
         ports: [53]\n          protocol: udp\n        - ports: [7946]\n",
    );
    assert!(policy.allows_listen(id, Tcp, 8080));
    assert!(policy.allows_listen(id, Tcp, 9000));
    assert!(policy.allows_listen(id, Tcp, 9002));
    assert!(!policy.allows_listen(id, Tcp, 9003));
    assert!(!policy.allows_listen(id, Udp, 8080));
    assert!(policy.allows_listen(id, Udp, 53));
    assert!(!policy.allows_listen(id, Tcp, 53));
    // No protocol: both.
    assert!(policy.allows_listen(id, Tcp, 7946));
    assert!(policy.allows_listen(id, Udp, 7946));
    assert!(!policy.allows_listen(id, Tcp, 80));
    // The default workload listens on nothing.
    assert!(!policy.allows_listen(WorkloadId::DEFAULT, Tcp, 8080));
}
