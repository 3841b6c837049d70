//! The deployment files agree with the code: the PrometheusRule equals the plain rules file, every
//! metric an alert uses is exported, every rule family has an alert, and the policy shipped in
//! the Kubernetes ConfigMap is valid.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use super::{Metrics, PipelineView};
use crate::{
    pipeline::{PipelineStats, ViolationKey},
    policy::{Policy, RuleId},
};

const RULES: &str = include_str!("../../../deploy/prometheus/sealwatch-rules.yaml");
const PROMETHEUS_RULE: &str = include_str!("../../../deploy/prometheus/prometheusrule.yaml");
const K8S_POLICY: &str = include_str!("../../../deploy/kubernetes/base/policy.yaml");
const RUNBOOKS: &str = include_str!("../../../docs/runbooks.md");
/// Where alerts' `runbook_url` points: docs/runbooks.md in the project's repository.
const RUNBOOK_BASE: &str = "https://github.com/sealwatch/sealwatch/blob/main/docs/runbooks.md";

fn rules() -> Vec<Value> {
    let file: Value = serde_yaml_ng::from_str(RULES).unwrap();
    file["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn prometheusrule_has_the_same_groups_as_the_rules_file() {
    let file: Value = serde_yaml_ng::from_str(RULES).unwrap();
    let manifest: Value = serde_yaml_ng::from_str(PROMETHEUS_RULE).unwrap();
    assert_eq!(manifest["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        manifest["spec"]["groups"], file["groups"],
        "deploy/prometheus/prometheusrule.yaml differs from sealwatch-rules.yaml: \
         run `sh deploy/prometheus/generate.sh`"
    );
}

/// `sealwatch_...` words of a PromQL expression, without recording rules (`sealwatch:...`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("sealwatch_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        names.insert(word);
    }
    names
}

#[test]
fn every_metric_an_alert_uses_is_exported() {
    // A family without samples is not printed at all: give violations one.
    let metrics = Metrics::new();
    let key = ViolationKey {
        rule: "drift-exec",
        severity: "critical",
        pod_namespace: None,
    };
    let stats = PipelineStats {
        violations: 1,
        violations_by: [(key, 1)].into_iter().collect(),
        ..PipelineStats::default()
    };
    metrics.publish(&PipelineView {
        stats: &stats,
        processes: 0,
        containers: 0,
        held: 0,
    });
    // Sink families have samples once a sink runs.
    metrics.publish_sinks(&[crate::output::sink::SinkStatus {
        name: "otlp",
        dropped: 0,
        exported: 0,
        queued_bytes: 0,
    }]);
    let exposition = metrics.encode().unwrap();
    // Sample names by family type (a family without samples yet, like violations, counts too).
    let exported: BTreeSet<String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|rest| match rest.split_once(' ').unwrap() {
            (family, "counter") => format!("{family}_total"),
            (family, "info") => format!("{family}_info"),
            (family, _) => family.to_owned(),
        })
        .collect();
    let mut used = BTreeSet::new();
    for rule in rules() {
        used.extend(metric_names(rule["expr"].as_str().unwrap()));
    }
    assert!(used.len() >= 8, "found only {used:?}");
    for name in &used {
        assert!(
            exported.contains(name),
            "the alert rules use {name}, which sealwatch does not export; exported: {exported:?}"
        );
    }
}

#[test]
fn every_rule_id_has_an_alert_and_alerts_are_documented() {
    let rules = rules();
    let alerts: Vec<&Value> = rules.iter().filter(|r| r.get("alert").is_some()).collect();
    for id in RuleId::ALL {
        let covered = alerts
            .iter()
            .any(|a| a["expr"].as_str().unwrap().contains(id.as_str()));
        assert!(covered, "no alert covers rule {id}");
    }
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        for key in ["summary", "description", "runbook"] {
            let text = alert["annotations"][key].as_str().unwrap_or("");
            assert!(!text.is_empty(), "alert {name} lacks annotation {key}");
        }
        let expr = alert["expr"].as_str().unwrap();
        // Violation alerts take Alertmanager's severity and the rule's own from the series.
        let has_severity = alert["labels"]["severity"].as_str().is_some()
            || (expr.contains("sealwatch:violations_alerting:new5m")
                && expr.contains(" severity, rule_severity,"));
        assert!(has_severity, "alert {name} has no severity label");
        if let Some(severity) = alert["labels"]["severity"].as_str() {
            assert!(
                ["critical", "warning", "info"].contains(&severity),
                "alert {name}: severity {severity} is not one Alertmanager routes on"
            );
        }
        let anchor = name.to_lowercase();
        assert_eq!(
            alert["annotations"]["runbook_url"].as_str(),
            Some(format!("{RUNBOOK_BASE}#{anchor}").as_str()),
            "alert {name}: runbook_url"
        );
        assert!(
            RUNBOOKS.lines().any(|line| line == format!("## {name}")),
            "docs/runbooks.md has no section {name}"
        );
    }
    let docs = include_str!("../../../docs/sre.md");
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        assert!(docs.contains(name), "docs/sre.md does not mention {name}");
    }
}

#[test]
fn every_exported_metric_is_documented() {
    let docs = include_str!("../../../docs/sre.md");
    let exposition = Metrics::new().encode().unwrap();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap();
            assert!(
                docs.contains(&format!("`{family}")),
                "docs/sre.md does not document {family}"
            );
        }
    }
}

#[test]
fn the_kubernetes_policy_is_valid() {
    Policy::parse(K8S_POLICY, "deploy/kubernetes/base/policy.yaml").unwrap();
}
