//! The kernel allowlist: one entry per prefix, IPv4 as mapped, rules inherited from wider
//! prefixes, the per-entry rule limit; host names and learned addresses.

use std::net::Ipv6Addr;

use super::super::ports::normalize;
use super::super::{KernelAllow, NetEnvironment, PortRule, WorkloadId, KERNEL_MAX_PORT_RULES};
use super::{ip, nets, no_env, web, web_policy};
use crate::policy::tests::parse_err;
use crate::policy::Policy;

fn tcp(lo: u16, hi: u16) -> PortRule {
    PortRule {
        tcp: true,
        udp: false,
        lo,
        hi,
    }
}

fn udp(lo: u16, hi: u16) -> PortRule {
    PortRule {
        tcp: false,
        udp: true,
        lo,
        hi,
    }
}

fn both(lo: u16, hi: u16) -> PortRule {
    PortRule {
        tcp: true,
        udp: true,
        lo,
        hi,
    }
}

fn allow(prefix: &str, prefix_len: u8, ports: &[PortRule]) -> KernelAllow {
    KernelAllow {
        prefix: prefix.parse::<Ipv6Addr>().unwrap(),
        prefix_len,
        ports: ports.to_vec(),
    }
}

/// `count` non-adjacent ports, 1000, 1002, ...: one rule each.
fn spread(count: u16, from: u16) -> String {
    (0..count)
        .map(|i| (from + 2 * i).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn one_entry_per_prefix_ipv4_as_mapped() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.0.0.0/8, \
         10.1.2.3, \"fd00::/64\", \"fd00::1\"]\n          \
         ports: [443]\n          protocol: tcp\n",
    );
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [
            allow("::ffff:10.0.0.0", 104, &[tcp(443, 443)]),
            allow("::ffff:10.1.2.3", 128, &[tcp(443, 443)]),
            allow("fd00::", 64, &[tcp(443, 443)]),
            allow("fd00::1", 128, &[tcp(443, 443)]),
        ]
    );
}

#[test]
fn a_longer_prefix_inherits_the_rules_of_the_wider_ones() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.1.0.0/16]\n          ports: [443]\n          protocol: \
         tcp\n        - to: [10.0.0.0/8]\n          ports: [53]\n          protocol: udp\n        \
         - to: [\"fd00::1\"]\n          ports: [8080]\n          protocol: tcp\n        - to: \
         [\"fd00::/64\"]\n          ports: [80]\n        - to: [10.1.2.0/24, 0.0.0.0/0]\n          \
         ports: [22]\n          protocol: tcp\n",
    );
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [
            allow("::ffff:0.0.0.0", 96, &[tcp(22, 22)]),
            // The /8 has its own rules and the /0's, not the /16's.
            allow("::ffff:10.0.0.0", 104, &[tcp(22, 22), udp(53, 53)]),
            allow(
                "::ffff:10.1.0.0",
                112,
                &[tcp(22, 22), udp(53, 53), tcp(443, 443)]
            ),
            allow(
                "::ffff:10.1.2.0",
                120,
                &[tcp(22, 22), udp(53, 53), tcp(443, 443)]
            ),
            allow("fd00::", 64, &[both(80, 80)]),
            allow("fd00::1", 128, &[both(80, 80), tcp(8080, 8080)]),
        ]
    );
}

#[test]
fn rules_of_one_prefix_are_merged() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.0.0.1]\n          ports: [80, \"90-95\"]\n          \
         protocol: tcp\n        - to: [10.0.0.1]\n          ports: [81, \"93-99\"]\n          \
         protocol: tcp\n        - to: [10.0.0.1]\n          ports: \
          [\"82-89\"]\n          protocol: \
         udp\n        - to: [10.0.0.1]\n          ports: [443]\n          protocol: udp\n        \
         - to: [10.0.0.1]\n          ports: [443]\n          protocol: tcp\n",
    );
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [allow(
            "::ffff:10.0.0.1",
            128,
            &[tcp(80, 81), udp(82, 89), tcp(90, 99), both(443, 443)]
        )]
    );
}

#[test]
fn any_port_absorbs_the_rest() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.0.0.0/8]\n        - to: [10.1.0.0/16]\n          ports: \
         [443]\n          protocol: tcp\n",
    );
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [
            allow("::ffff:10.0.0.0", 104, &[PortRule::ANY]),
            allow("::ffff:10.1.0.0", 112, &[PortRule::ANY]),
        ]
    );
}

#[test]
fn host_names_are_left_out_and_sets_resolved() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [api.example.com, \"set:loopback\", \"set:db\", \
         \"set:cluster\"]\n          ports: [5432]\n          protocol: tcp\n  sets:\n    db: \
         [10.20.0.0/16]\n",
    );
    let rule = [tcp(5432, 5432)];
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [
            allow("::1", 128, &rule),
            allow("::ffff:10.20.0.0", 112, &rule),
            allow("::ffff:127.0.0.0", 104, &rule),
        ]
    );
    let env = NetEnvironment {
        cluster_cidrs: nets(&["10.244.0.0/16", "10.20.0.0/16"]),
        kubernetes_api: Vec::new(),
    };
    assert_eq!(
        policy.kernel_allowlist(id, &env),
        [
            allow("::1", 128, &rule),
            allow("::ffff:10.20.0.0", 112, &rule),
            allow("::ffff:10.244.0.0", 112, &rule),
            allow("::ffff:127.0.0.0", 104, &rule),
        ]
    );
}

#[test]
fn ipv6_catch_alls_do_not_cover_ipv4_in_the_kernel() {
    // `::/0` contains `::ffff:0:0/96` in the kernel's eyes, not in the policy's: an empty
    // IPv4 catch-all stops the longest match there.
    let (policy, id) =
        web_policy("      egress:\n        - to: [\"::/0\"]\n          ports: [443]\n");
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [
            allow("::", 0, &[both(443, 443)]),
            allow("::ffff:0.0.0.0", 96, &[])
        ]
    );
    let (policy, id) = web_policy(
        "      egress:\n        - to: [\"::/64\", 10.0.0.0/8]\n          ports: [443]\n        - \
         to: [0.0.0.0/0]\n          ports: [53]\n          protocol: udp\n",
    );
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [
            allow("::", 64, &[both(443, 443)]),
            allow("::ffff:0.0.0.0", 96, &[udp(53, 53)]),
            allow("::ffff:10.0.0.0", 104, &[udp(53, 53), both(443, 443)]),
        ]
    );
    // An IPv6 prefix outside the mapped range needs no catch-all.
    let (policy, id) = web_policy("      egress:\n        - to: [\"fd00::/8\"]\n");
    assert_eq!(
        policy.kernel_allowlist(id, &no_env()),
        [allow("fd00::", 8, &[PortRule::ANY])]
    );
}

#[test]
fn default_workload_and_order() {
    let policy = Policy::parse("version: 1\n", "p.yaml").unwrap();
    let network = policy.network();
    assert_eq!(
        network.kernel_allowlist(WorkloadId::DEFAULT, &no_env()),
        [
            allow("::1", 128, &[PortRule::ANY]),
            allow("::ffff:127.0.0.0", 104, &[PortRule::ANY]),
        ]
    );
    // The order depends on the prefixes, not on how the policy lists them.
    let forward = web_policy("      egress:\n        - to: [10.0.0.1, 10.0.0.2, 10.0.0.0/8]\n");
    let backward = web_policy(
        "      egress:\n        - to: [10.0.0.0/8]\n        - to: [10.0.0.2, 10.0.0.1]\n",
    );
    assert_eq!(
        forward.0.kernel_allowlist(forward.1, &no_env()),
        backward.0.kernel_allowlist(backward.1, &no_env())
    );
}

#[test]
fn sixteen_rules_per_prefix_at_most() {
    assert_eq!(KERNEL_MAX_PORT_RULES, 16);
    let entry = |ports: &str| {
        web(&format!(
            "      egress:\n        - to: [10.0.0.1]\n          ports: [{ports}]\n          \
             protocol: tcp\n"
        ))
    };
    let policy = Policy::parse(&entry(&spread(16, 1000)), "p.yaml").unwrap();
    let id = WorkloadId(0);
    assert_eq!(
        policy.network().kernel_allowlist(id, &no_env())[0]
            .ports
            .len(),
        16
    );
    // Adjacent ports merge, so they do not count one by one.
    let adjacent: Vec<String> = (1000..1100).map(|p| p.to_string()).collect();
    Policy::parse(&entry(&adjacent.join(", ")), "p.yaml").unwrap();

    assert_eq!(
        parse_err(&entry(&spread(17, 1000))),
        "p.yaml: network workload `web`: 10.0.0.1/32 needs 17 port rules in the kernel \
         allowlist, more than the 16 it holds per prefix (its own ports plus those of the wider \
         CIDRs and sets that contain it); use port ranges or fewer distinct ports"
    );
}

#[test]
fn inherited_rules_count_toward_the_limit() {
    let text = web(&format!(
        "      egress:\n        - to: [10.0.0.0/8]\n          ports: [{}]\n          protocol: \
         tcp\n        - to: [10.0.0.1]\n          ports: [{}]\n          protocol: tcp\n",
        spread(9, 1000),
        spread(8, 2000)
    ));
    let shown = parse_err(&text);
    assert!(
        shown.starts_with("p.yaml: network workload `web`: 10.0.0.1/32 needs 17 port rules"),
        "{shown}"
    );
    // Host names too, per name.
    let text = web(&format!(
        "      egress:\n        - to: [api.example.com]\n          ports: [{}]\n        - to: \
         [API.example.com.]\n          ports: [{}]\n",
        spread(9, 1000),
        spread(8, 2000)
    ));
    let shown = parse_err(&text);
    assert!(
        shown.starts_with("p.yaml: network workload `web`: api.example.com needs 17 port rules"),
        "{shown}"
    );
    // And the default workload's.
    let text = format!(
        "version: 1\nnetwork:\n  default:\n    egress:\n      - to: [10.0.0.1]\n        ports: \
         [{}]\n",
        spread(17, 1000)
    );
    assert!(parse_err(&text).starts_with("p.yaml: network workload `default`: "));
}

#[test]
fn environment_sets_are_checked_against_the_node() {
    let text = web(&format!(
        "      egress:\n        - to: [\"set:cluster\"]\n          ports: [{}]\n          \
         protocol: tcp\n        - to: [10.0.0.1]\n          ports: [{}]\n          protocol: tcp\n",
        spread(9, 1000),
        spread(8, 2000)
    ));
    // Without an environment the cluster set is empty: the policy loads.
    let policy = Policy::parse(&text, "p.yaml").unwrap();
    let env = NetEnvironment {
        cluster_cidrs: nets(&["10.0.0.0/8"]),
        kubernetes_api: Vec::new(),
    };
    let error = policy.check_network_environment(&env).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("p.yaml: network workload `web`: 10.0.0.1/32 needs 17 port rules"),
        "{error}"
    );
    assert!(policy.check_network_environment(&no_env()).is_ok());
    // Unchecked, the kernel entry over the limit allows any port (user space still judges).
    let list = policy.network().kernel_allowlist(WorkloadId(0), &env);
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].ports.len(), 9);
    assert_eq!(list[1], allow("::ffff:10.0.0.1", 128, &[PortRule::ANY]));
}

#[test]
fn egress_names_merged_by_name() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [b.example, A.Example.]\n          ports: [443]\n          \
         protocol: tcp\n        - to: [a.example, \"*.c.example\"]\n          ports: \
          [53]\n          \
         protocol: udp\n        - to: [10.0.0.1]\n",
    );
    assert_eq!(
        policy.egress_names(id),
        [
            ("*.c.example".to_owned(), vec![udp(53, 53)]),
            ("a.example".to_owned(), vec![udp(53, 53), tcp(443, 443)]),
            ("b.example".to_owned(), vec![tcp(443, 443)]),
        ]
    );
    assert!(policy.egress_names(WorkloadId::DEFAULT).is_empty());
}

#[test]
fn learned_addresses_get_a_host_entry() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [api.example.com]\n          ports: [443]\n          \
         protocol: tcp\n        - to: [10.0.0.0/8]\n          ports: [53]\n          protocol: \
         udp\n        - to: [\"*.example.org\"]\n          ports: [80]\n",
    );
    let env = no_env();
    assert_eq!(
        policy.kernel_allow_for_learned(id, &env, ip("10.1.2.3"), &["api.example.com"]),
        Some(allow("::ffff:10.1.2.3", 128, &[udp(53, 53), tcp(443, 443)]))
    );
    assert_eq!(
        policy.kernel_allow_for_learned(
            id,
            &env,
            ip("::ffff:192.0.2.1"),
            &["API.example.com.", "x.example.org"]
        ),
        Some(allow(
            "::ffff:192.0.2.1",
            128,
            &[both(80, 80), tcp(443, 443)]
        ))
    );
    assert_eq!(
        policy.kernel_allow_for_learned(id, &env, ip("2001:db8::1"), &["api.example.com"]),
        Some(allow("2001:db8::1", 128, &[tcp(443, 443)]))
    );
    assert_eq!(
        policy.kernel_allow_for_learned(id, &env, ip("192.0.2.1"), &["other.example.com"]),
        None
    );
}

#[test]
fn normalize_merges_ranges_and_protocols() {
    assert_eq!(normalize([]), []);
    assert_eq!(
        normalize([tcp(10, 20), tcp(15, 30), tcp(31, 31), tcp(40, 40)]),
        [tcp(10, 31), tcp(40, 40)]
    );
    assert_eq!(normalize([tcp(80, 80), udp(80, 80)]), [both(80, 80)]);
    assert_eq!(
        normalize([both(1, 100), udp(50, 150)]),
        [tcp(1, 100), udp(1, 150)]
    );
    assert_eq!(
        normalize([tcp(65535, 65535), tcp(65534, 65534), both(0, 0)]),
        [both(0, 0), tcp(65534, 65535)]
    );
    assert_eq!(normalize([both(0, 65535), tcp(443, 443)]), [PortRule::ANY]);
    let rule = tcp(443, 443);
    assert!(rule.allows(crate::net::Protocol::Tcp, 443));
    assert!(!rule.allows(crate::net::Protocol::Udp, 443));
    assert!(!rule.allows(crate::net::Protocol::Tcp, 444));
}
