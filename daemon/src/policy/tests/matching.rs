//! Exceptions: globs, AND of the given fields, unknown (`None`) values, args, per-rule scope.

use super::super::{RuleId, Subject};
use super::{Policy, VALID_EXAMPLE};

/// A policy whose `root-in-container` rule has the given exceptions list.
fn with_exceptions(body: &str) -> Policy {
    let text = format!("version: 1\nrules:\n  root-in-container:\n    exceptions:\n{body}");
    Policy::parse(&text, "p.yaml").unwrap()
}

fn excepted(policy: &Policy, subject: &Subject<'_>) -> bool {
    policy.is_excepted(RuleId::RootInContainer, subject)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| (*a).to_owned()).collect()
}

#[test]
fn image_glob() {
    let policy = with_exceptions("      - image: \"localhost/legacy-app:*\"\n        reason: r\n");
    let subject = |image| Subject {
        image,
        ..Subject::default()
    };
    assert!(excepted(
        &policy,
        &subject(Some("localhost/legacy-app:1.2"))
    ));
    assert!(excepted(&policy, &subject(Some("localhost/legacy-app:"))));
    assert!(!excepted(&policy, &subject(Some("localhost/legacy-app"))));
    assert!(!excepted(
        &policy,
        &subject(Some("docker.io/localhost/legacy-app:1"))
    ));
    // A given field never matches an unknown value (e.g. the host has no image).
    assert!(!excepted(&policy, &subject(None)));
}

#[test]
fn star_crosses_slashes_and_braces_alternate() {
    let policy = with_exceptions("      - exe: \"/usr/{bin,sbin}/*\"\n        reason: r\n");
    let subject = |exe| Subject {
        exe: Some(exe),
        ..Subject::default()
    };
    assert!(excepted(&policy, &subject("/usr/sbin/nginx")));
    assert!(excepted(&policy, &subject("/usr/bin/sub/dir/tool")));
    assert!(!excepted(&policy, &subject("/usr/local/bin/tool")));
}

#[test]
fn name_and_namespace() {
    let policy = with_exceptions(
        "      - container_name: \"legacy-*\"\n        reason: r\n\
         \x20     - pod_namespace: kube-system\n        reason: r\n",
    );
    let name = |n| Subject {
        container_name: Some(n),
        ..Subject::default()
    };
    let namespace = |n| Subject {
        pod_namespace: Some(n),
        ..Subject::default()
    };
    assert!(excepted(&policy, &name("legacy-web")));
    assert!(!excepted(&policy, &name("web-legacy")));
    assert!(excepted(&policy, &namespace("kube-system")));
    assert!(!excepted(&policy, &namespace("kube-system-2")));
    assert!(!excepted(&policy, &Subject::default()));
}

#[test]
fn all_given_fields_must_match() {
    let policy = with_exceptions(
        "      - image: \"app:*\"\n        container_name: web\n        exe: /bin/sh\n        \
         reason: r\n",
    );
    let full = Subject {
        image: Some("app:1"),
        container_name: Some("web"),
        pod_namespace: Some("any-namespace"),
        exe: Some("/bin/sh"),
        args: &[],
    };
    assert!(excepted(&policy, &full));
    assert!(!excepted(
        &policy,
        &Subject {
            image: Some("other:1"),
            ..full
        }
    ));
    assert!(!excepted(
        &policy,
        &Subject {
            container_name: Some("db"),
            ..full
        }
    ));
    assert!(!excepted(
        &policy,
        &Subject {
            exe: Some("/bin/bash"),
            ..full
        }
    ));
    assert!(!excepted(&policy, &Subject { exe: None, ..full }));
    // pod_namespace is not given by the exception: it matches anything, unknown included.
    assert!(excepted(
        &policy,
        &Subject {
            pod_namespace: None,
            ..full
        }
    ));
}

#[test]
fn args_each_glob_matches_the_joined_command_line() {
    let policy =
        with_exceptions("      - args: [\"nginx *\", \"*-g daemon off;*\"]\n        reason: r\n");
    let matches = |list: &[&str]| {
        let args = args(list);
        excepted(
            &policy,
            &Subject {
                args: &args,
                ..Subject::default()
            },
        )
    };
    assert!(matches(&["nginx", "-g", "daemon off;"]));
    assert!(matches(&[
        "nginx",
        "-c",
        "/etc/nginx.conf",
        "-g",
        "daemon off;"
    ]));
    assert!(!matches(&["nginx", "-g", "daemon on;"]));
    assert!(!matches(&["/usr/sbin/nginx", "-g", "daemon off;"]));
    assert!(!matches(&[]));

    let any = with_exceptions("      - args: [\"*\"]\n        reason: r\n");
    assert!(excepted(&any, &Subject::default()));
}

#[test]
fn any_exception_of_the_rule_suffices_and_reason_is_reported() {
    let policy = Policy::parse(VALID_EXAMPLE, "valid.yaml").unwrap();
    let legacy = Subject {
        image: Some("localhost/legacy-app:2024"),
        container_name: Some("legacy-api"),
        ..Subject::default()
    };
    assert!(policy.is_excepted(RuleId::RootInContainer, &legacy));
    let reason = policy
        .exception_reason(RuleId::RootInContainer, &legacy)
        .unwrap();
    assert!(reason.starts_with("legacy-app binds port 80"), "{reason}");

    let nginx_args = args(&["nginx", "-g", "daemon off;"]);
    let nginx = Subject {
        pod_namespace: Some("kube-system"),
        exe: Some("/usr/sbin/nginx"),
        args: &nginx_args,
        ..Subject::default()
    };
    assert!(policy.is_excepted(RuleId::RootInContainer, &nginx));
    // Exceptions belong to one rule only.
    assert!(!policy.is_excepted(RuleId::DriftExec, &legacy));
    assert!(!policy.is_excepted(RuleId::RootInContainer, &Subject::default()));
    assert_eq!(
        policy.exception_reason(RuleId::RootInContainer, &Subject::default()),
        None
    );
}

#[test]
fn embedded_default_excepts_nothing() {
    let policy = Policy::embedded_default();
    let subject = Subject {
        image: Some("any:1"),
        container_name: Some("any"),
        pod_namespace: Some("any"),
        exe: Some("/bin/sh"),
        args: &[],
    };
    for id in RuleId::ALL {
        assert!(!policy.is_excepted(id, &subject), "{id}");
    }
}
