//! Valid `network:` sections: every form of every field, the default workload, the learned form.

use super::super::{declared_sets, NetAction, WorkloadId, DEFAULT_WORKLOAD_NAME};
use super::{allows, egress, ingress, network, no_env, subject, web_policy};
use crate::net::Protocol::{Tcp, Udp};
use crate::policy::{Policy, DEFAULT_POLICY_SOURCE, DEFAULT_POLICY_YAML};

/// The example of the spec, verbatim.
const SPEC_EXAMPLE: &str = r#"version: 1
network:
  sets:
    databases: ["10.20.0.0/16", "fd00:db::/64", "10.30.1.7"]
  default:
    action: alert
    egress: [{to: ["set:loopback"]}]
    ingress: [{from: ["set:loopback"]}]
  workloads:                 # first match wins, in file order
    - name: web              # required, unique; reported in events
      match:                 # required, at least one field; globs as in rule exceptions
        image: "localhost/web:*"
        container_name: "web-*"
        pod_namespace: "shop"
      action: block
      egress:
        - to: ["set:databases", "api.example.com", "*.svc.example.com", "10.1.2.3", "fd00::/64"]
          ports: [5432, "8000-8100"]   # default: any port; ints 1-65535 or "lo-hi" strings
          protocol: tcp                 # tcp | udp | any (default any)
      ingress:
        - from: ["set:cluster"]
          ports: [8080]                 # the LOCAL port accepted on
          protocol: tcp
      listen:
        - ports: [8080]                 # required here
          protocol: tcp                 # default any
"#;

#[test]
fn spec_example_parses() {
    let policy = Policy::parse(SPEC_EXAMPLE, "p.yaml").unwrap();
    let network = policy.network();
    let web = network.select(&subject(
        Some("localhost/web:2"),
        Some("web-1"),
        Some("shop"),
    ));
    assert_eq!(web, WorkloadId(0));
    assert_eq!(network.workload_name(web), "web");
    assert_eq!(network.action(web), NetAction::Block);
    assert!(allows(network, web, &egress(Tcp, "10.20.3.4", 5432)));
    assert!(allows(network, web, &egress(Tcp, "fd00:db::9", 8100)));
    assert!(allows(network, web, &egress(Tcp, "10.30.1.7", 8000)));
    assert!(allows(network, web, &egress(Tcp, "10.1.2.3", 5432)));
    assert!(allows(network, web, &egress(Tcp, "fd00::1", 5432)));
    assert!(!allows(network, web, &egress(Udp, "10.1.2.3", 5432)));
    assert!(!allows(network, web, &egress(Tcp, "10.1.2.3", 443)));
    assert!(!allows(network, web, &egress(Tcp, "10.30.1.8", 5432)));
    assert!(network.allows_listen(web, Tcp, 8080));
    assert!(!network.allows_listen(web, Udp, 8080));
    assert_eq!(
        network
            .egress_names(web)
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>(),
        ["*.svc.example.com", "api.example.com"]
    );
    // The default is what the example restates.
    let other = network.select(&subject(Some("other:1"), None, None));
    assert_eq!(other, WorkloadId::DEFAULT);
    assert_eq!(network.action(other), NetAction::Alert);
}

#[test]
fn an_absent_section_observes_and_an_empty_one_declares() {
    for text in [
        "version: 1\n",
        "version: 1\nnetwork:\n",
        "version: 1\nnetwork: {}\n",
    ] {
        let observing = text == "version: 1\n";
        let policy = Policy::parse(text, "p.yaml").unwrap();
        let network = policy.network();
        let id = network.select(&subject(Some("any:1"), Some("any"), Some("any")));
        assert_eq!(id, WorkloadId::DEFAULT, "{text:?}");
        assert_eq!(network.workload_name(id), DEFAULT_WORKLOAD_NAME);
        assert_eq!(network.action(id), NetAction::Alert);
        assert_eq!(network.workload_ids().collect::<Vec<_>>(), [id]);
        assert_eq!(network.is_observing(), observing, "{text:?}");
        if observing {
            assert_observing(network);
        } else {
            // An empty section declares: its default workload is the built-in one.
            assert_builtin_default(network);
        }
    }
}

/// No `network:` section: everything is allowed but egress to the cloud metadata service.
fn assert_observing(network: &super::NetworkPolicy) {
    let id = WorkloadId::DEFAULT;
    for peer in ["127.0.0.1", "10.0.0.1", "::2", "8.8.8.8"] {
        assert!(allows(network, id, &egress(Tcp, peer, 443)), "{peer}");
        assert!(allows(network, id, &egress(Udp, peer, 53)), "{peer}");
        assert!(allows(network, id, &ingress(Tcp, peer, 8080)), "{peer}");
    }
    for peer in [
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "::ffff:169.254.169.254",
    ] {
        assert!(!allows(network, id, &egress(Tcp, peer, 80)), "{peer}");
        assert!(!allows(network, id, &egress(Udp, peer, 53)), "{peer}");
    }
    assert!(network.allows_listen(id, Tcp, 8080));
    assert!(network.allows_listen(id, Udp, 53));
}

/// Loopback only, both ways, any port and protocol; no listening port.
fn assert_builtin_default(network: &super::NetworkPolicy) {
    let id = WorkloadId::DEFAULT;
    for peer in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
        assert!(allows(network, id, &egress(Tcp, peer, 80)), "{peer}");
        assert!(allows(network, id, &egress(Udp, peer, 53)), "{peer}");
        assert!(allows(network, id, &ingress(Tcp, peer, 8080)), "{peer}");
    }
    for peer in ["10.0.0.1", "::2", "169.254.169.254"] {
        assert!(!allows(network, id, &egress(Tcp, peer, 80)), "{peer}");
        assert!(!allows(network, id, &ingress(Tcp, peer, 80)), "{peer}");
    }
    assert!(!network.allows_listen(id, Tcp, 8080));
    assert!(!network.allows_listen(id, Udp, 53));
}

#[test]
fn embedded_default_policy_observes_the_network() {
    let policy = Policy::parse(DEFAULT_POLICY_YAML, DEFAULT_POLICY_SOURCE).unwrap();
    assert_eq!(
        policy.network().workload_ids().collect::<Vec<_>>(),
        [WorkloadId::DEFAULT]
    );
    assert!(policy.network().is_observing());
    assert_observing(policy.network());
    // default.yaml documents the section (commented out, so it changes nothing).
    assert!(DEFAULT_POLICY_YAML.contains("\n# network:\n"));
}

#[test]
fn default_yaml_network_example_parses_when_uncommented() {
    let start = DEFAULT_POLICY_YAML.find("\n# network:\n").unwrap() + 1;
    let mut text = String::from("version: 1\n");
    for line in DEFAULT_POLICY_YAML[start..].lines() {
        let line = line.strip_prefix('#').unwrap();
        text.push_str(line.strip_prefix(' ').unwrap_or(line));
        text.push('\n');
    }
    let policy = Policy::parse(&text, "example.yaml").unwrap();
    let network = policy.network();
    let web = network.select(&subject(
        Some("registry.example/web:3"),
        Some("web-0"),
        Some("shop"),
    ));
    assert_eq!(network.workload_name(web), "web");
    assert_eq!(network.action(web), NetAction::Block);
    assert!(allows(network, web, &egress(Tcp, "10.30.1.7", 5432)));
    assert!(network.allows_flow(
        web,
        &no_env(),
        &egress(Tcp, "192.0.2.1", 8080),
        &["eu.s3.example.com"]
    ));
    assert!(network.allows_listen(web, Tcp, 8080));
    assert_builtin_default(network);
}

#[test]
fn default_fields_left_out_keep_the_builtin_values() {
    // Only the action: loopback still allowed both ways.
    let policy = network("  default:\n    action: block\n");
    assert_eq!(policy.action(WorkloadId::DEFAULT), NetAction::Block);
    assert_builtin_default(&policy);

    // Egress replaced: loopback egress gone, loopback ingress kept, a listening port added.
    let policy = network(
        "  default:\n    egress: [{to: [\"set:cluster\"]}]\n    listen: [{ports: [9090]}]\n",
    );
    let id = WorkloadId::DEFAULT;
    assert_eq!(policy.action(id), NetAction::Alert);
    assert!(!allows(&policy, id, &egress(Tcp, "127.0.0.1", 80)));
    assert!(allows(&policy, id, &ingress(Tcp, "127.0.0.1", 80)));
    assert!(policy.allows_listen(id, Udp, 9090));

    // Empty lists allow nothing.
    let policy = network("  default:\n    egress: []\n    ingress: []\n");
    assert!(!allows(&policy, id, &egress(Tcp, "127.0.0.1", 80)));
    assert!(!allows(&policy, id, &ingress(Tcp, "127.0.0.1", 80)));
}

#[test]
fn workload_lists_left_out_allow_nothing() {
    let (policy, id) = web_policy("");
    assert_eq!(policy.action(id), NetAction::Alert);
    assert!(!allows(&policy, id, &egress(Tcp, "127.0.0.1", 80)));
    assert!(!allows(&policy, id, &ingress(Tcp, "127.0.0.1", 80)));
    assert!(!policy.allows_listen(id, Tcp, 80));
    assert!(policy.kernel_allowlist(id, &no_env()).is_empty());
    assert!(policy.egress_names(id).is_empty());
}

#[test]
fn every_port_form() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.0.0.0/8]\n          ports: [1, 80, \"8000-8100\", \
         \"65535-65535\", 8000-8001]\n",
    );
    for port in [1, 80, 8000, 8050, 8100, 65535] {
        assert!(
            allows(&policy, id, &egress(Tcp, "10.1.1.1", port)),
            "{port}"
        );
        assert!(
            allows(&policy, id, &egress(Udp, "10.1.1.1", port)),
            "{port}"
        );
    }
    for port in [0, 2, 79, 81, 7999, 8101, 65534] {
        assert!(
            !allows(&policy, id, &egress(Tcp, "10.1.1.1", port)),
            "{port}"
        );
    }
}

#[test]
fn ports_left_out_is_any_port_and_protocol_any_both() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [10.0.0.1]\n        - to: [10.0.0.2]\n          protocol: \
         any\n        - to: [10.0.0.3]\n          protocol: udp\n          ports: [53]\n",
    );
    for port in [0, 1, 443, 65535] {
        assert!(allows(&policy, id, &egress(Tcp, "10.0.0.1", port)));
        assert!(allows(&policy, id, &egress(Udp, "10.0.0.1", port)));
        assert!(allows(&policy, id, &egress(Udp, "10.0.0.2", port)));
    }
    assert!(allows(&policy, id, &egress(Udp, "10.0.0.3", 53)));
    assert!(!allows(&policy, id, &egress(Tcp, "10.0.0.3", 53)));
    assert!(!allows(&policy, id, &egress(Udp, "10.0.0.3", 54)));
}

#[test]
fn learned_policy_form_with_comments() {
    let text = "\
# Learned by `sealwatch learn` from 2 containers over 10m.
version: 1
network:
  workloads:
    # web (localhost/web:1): 3 connections
    - name: web
      match:
        image: \"localhost/web:1\"
      egress:
        - to: [\"10.231.1.2\"]     # api.sealwatch.test
          ports: [80]
          protocol: tcp
        - to: [\"api.sealwatch.test\"]
          ports: [80]
          protocol: tcp
        - to: [\"set:loopback\"]
      ingress: []
      listen:
        - ports: [8080]
          protocol: tcp
    - name: \"db\"
      match: {container_name: \"db-*\"}
      listen: [{ports: [5432], protocol: tcp}]
";
    let policy = Policy::parse(text, "learned.yaml").unwrap();
    let network = policy.network();
    assert_eq!(
        network.workload_ids().collect::<Vec<_>>(),
        [WorkloadId(0), WorkloadId(1), WorkloadId::DEFAULT]
    );
    let web = network.select(&subject(Some("localhost/web:1"), Some("web-1"), None));
    let db = network.select(&subject(Some("postgres:16"), Some("db-1"), None));
    assert_eq!(
        (network.workload_name(web), network.workload_name(db)),
        ("web", "db")
    );
    assert!(allows(network, web, &egress(Tcp, "10.231.1.2", 80)));
    assert!(network.allows_flow(
        web,
        &no_env(),
        &egress(Tcp, "10.231.1.9", 80),
        &["api.sealwatch.test"]
    ));
    assert!(network.allows_listen(web, Tcp, 8080));
    assert!(network.allows_listen(db, Tcp, 5432));
    assert!(!network.allows_listen(db, Tcp, 8080));
}

#[test]
fn sets_may_come_after_their_use_and_hold_addresses_and_cidrs() {
    let policy = network(
        "  workloads:\n    - name: web\n      match: {image: \"web:*\"}\n      egress: [{to: \
         [\"set:db\", \"set:cache\"]}]\n  sets:\n    db: [10.20.0.0/16, \"fd00:db::/64\"]\n    \
         cache: [10.30.0.7, \"fd00::7\"]\n",
    );
    let id = WorkloadId(0);
    for peer in ["10.20.255.1", "fd00:db::1", "10.30.0.7", "fd00::7"] {
        assert!(allows(&policy, id, &egress(Tcp, peer, 1)), "{peer}");
    }
    for peer in ["10.21.0.1", "fd00:dc::1", "10.30.0.8", "fd00::8"] {
        assert!(!allows(&policy, id, &egress(Tcp, peer, 1)), "{peer}");
    }
}

#[test]
fn workload_names_and_actions() {
    let policy = network(
        "  workloads:\n    - {name: a, match: {image: a}, action: alert}\n    - {name: \
         ns/b-1.x:y, match: {pod_namespace: b}, action: block}\n",
    );
    assert_eq!(policy.workload_name(WorkloadId(0)), "a");
    assert_eq!(policy.action(WorkloadId(0)), NetAction::Alert);
    assert_eq!(policy.workload_name(WorkloadId(1)), "ns/b-1.x:y");
    assert_eq!(policy.action(WorkloadId(1)), NetAction::Block);
    assert_eq!(NetAction::Block.as_str(), "block");
    // An id the policy did not give out is the default's.
    assert_eq!(policy.workload_name(WorkloadId(7)), "default");
}

#[test]
fn rules_and_network_together() {
    let text = "version: 1\nnetwork:\n  default: {action: block}\nrules:\n  \
                unexpected-connection:\n    severity: critical\n";
    let policy = Policy::parse(text, "p.yaml").unwrap();
    assert_eq!(
        policy
            .rule(crate::policy::RuleId::UnexpectedConnection)
            .severity,
        crate::policy::Severity::Critical
    );
    assert_eq!(
        policy.network().action(WorkloadId::DEFAULT),
        NetAction::Block
    );
}

#[test]
fn set_names_are_read_ahead() {
    let names = |text: &str| declared_sets(text).map(|set| set.into_iter().collect::<Vec<_>>());
    assert_eq!(names("version: 1\n"), Some(vec![]));
    assert_eq!(
        names("version: 1\nnetwork:\n  workloads: []\n  sets:\n    b: [x]\n    a: {deep: [1]}\n"),
        Some(vec!["a".to_owned(), "b".to_owned()])
    );
    // Only `network.sets` counts; anything may sit elsewhere, complex keys included.
    assert_eq!(
        names("? [complex]\n: 1\nrules: {sets: {x: 1}}\nnetwork: {sets: {1: x, a: y}}\n"),
        Some(vec!["a".to_owned()])
    );
    assert_eq!(names("network:\n  sets:\n"), Some(vec![]));
    // Unreadable: the strict parse reports why.
    assert_eq!(names("network:\n  sets: [a]\n"), None);
    assert_eq!(names("network: {sets: {a: 1}\n"), None);
}
