//! Host names: exact and `*.` patterns, case and trailing dots, what `wants_name` says.

use super::super::WorkloadId;
use super::{egress, network, no_env, web_policy};
use crate::net::Protocol::Tcp;

const NAMED: &str =
    "      egress:\n        - to: [API.Example.COM., \"*.svc.example.com\"]\n          \
                     ports: [443]\n";

#[test]
fn a_name_allows_the_addresses_learned_for_it() {
    let (policy, id) = web_policy(NAMED);
    let flow = egress(Tcp, "203.0.113.7", 443);
    let judge = |names: &[&str]| policy.allows_flow(id, &no_env(), &flow, names);
    assert!(judge(&["api.example.com"]));
    assert!(judge(&["other.example.org", "api.example.com"]));
    // Case and a trailing dot are ignored, in the policy and in learned names.
    assert!(judge(&["API.example.com."]));
    assert!(!judge(&[]));
    assert!(!judge(&["example.com"]));
    assert!(!judge(&["xapi.example.com"]));
    assert!(!judge(&["api.example.com.evil"]));
    // Ports still apply.
    let other_port = egress(Tcp, "203.0.113.7", 80);
    assert!(!policy.allows_flow(id, &no_env(), &other_port, &["api.example.com"]));
}

#[test]
fn wildcard_matches_names_below_the_suffix_only() {
    let (policy, id) = web_policy(NAMED);
    let flow = egress(Tcp, "203.0.113.8", 443);
    let judge = |name: &str| policy.allows_flow(id, &no_env(), &flow, &[name]);
    assert!(judge("db.svc.example.com"));
    assert!(judge("a.b.svc.example.com"));
    assert!(judge("DB.SVC.EXAMPLE.COM."));
    assert!(!judge("svc.example.com"));
    assert!(!judge(".svc.example.com"));
    assert!(!judge("dbsvc.example.com"));
    assert!(!judge("db.svc.example.com.au"));
    assert!(!judge("db.svc.example.co"));
    // Non-ASCII bytes in learned names are compared as bytes (no panic on char boundaries).
    assert!(!judge("x.svc.exämple.com"));
    assert!(!judge("ä.svc.example.coä"));
    assert!(judge("ä.svc.example.com"));
}

#[test]
fn wants_name() {
    let (policy, id) = web_policy(NAMED);
    assert!(policy.wants_name(id, "api.example.com"));
    assert!(policy.wants_name(id, "Api.Example.Com."));
    assert!(policy.wants_name(id, "x.svc.example.com"));
    assert!(!policy.wants_name(id, "svc.example.com"));
    assert!(!policy.wants_name(id, "example.com"));
    assert!(!policy.wants_name(WorkloadId::DEFAULT, "api.example.com"));
    assert!(policy.uses_names());
    assert!(!network("  default: {action: alert}\n").uses_names());
}

#[test]
fn names_and_addresses_mix_in_one_entry() {
    let (policy, id) = web_policy(
        "      egress:\n        - to: [db.internal, 10.0.0.0/24]\n          ports: [5432]\n",
    );
    let judge = |peer: &str, names: &[&str]| {
        policy.allows_flow(id, &no_env(), &egress(Tcp, peer, 5432), names)
    };
    assert!(judge("10.0.0.9", &[]));
    assert!(judge("10.9.0.9", &["db.internal"]));
    assert!(!judge("10.9.0.9", &["db.external"]));
    assert!(policy.wants_name(id, "db.internal"));
}
