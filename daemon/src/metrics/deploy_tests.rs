//! The deployment files agree with the code: the PrometheusRule equals the plain rules file, every
//! metric an alert uses is exported, every rule family has an alert, every metric and label the
//! Grafana dashboard queries is exported, and the policy shipped in the Kubernetes ConfigMap is
//! valid.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::{BTreeSet, HashMap};

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
const GRAFANA: &str = include_str!("../../../deploy/grafana/sealwatch.json");
/// Labels Prometheus puts on every series from its target (`job`, `instance`, and `node` from
/// the ServiceMonitor's relabelling), not the daemon: a query may use them on any metric.
const TARGET_LABELS: &[&str] = &["instance", "job", "node"];
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

/// The exposition with a sample in every family: a family without samples is not printed at
/// all, so a violation is counted and a sink runs.
fn exposition_with_samples() -> String {
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
        kind: crate::output::sink::SinkKind::Otlp,
        dropped: 0,
        exported: 0,
        queued_bytes: 0,
    }]);
    metrics.encode().unwrap()
}

/// Label names of every sample, by sample name (`sealwatch_violations_total` → rule, ...).
fn labels_by_metric(exposition: &str) -> HashMap<String, BTreeSet<String>> {
    let mut by_metric: HashMap<String, BTreeSet<String>> = HashMap::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = by_metric.entry(line[..name_end].to_string()).or_default();
        if let Some(inner) = line[name_end..]
            .strip_prefix('{')
            .and_then(|rest| rest.split_once('}'))
        {
            // The test's label values hold no commas or equals signs.
            labels.extend(
                inner
                    .0
                    .split(',')
                    .filter_map(|pair| Some(pair.split_once('=')?.0.to_string())),
            );
        }
    }
    by_metric
}

/// Label names a PromQL expression uses: `by (...)` and `without (...)` lists, and matchers.
fn expr_labels(expr: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for keyword in ["by", "without"] {
        let mut rest = expr;
        while let Some(at) = rest.find(keyword) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + keyword.len()..];
            if before.is_some_and(is_name) {
                continue;
            }
            if let Some(list) = rest.trim_start().strip_prefix('(') {
                let list = list.split(')').next().unwrap_or_default();
                labels.extend(list.split(',').map(|l| l.trim().to_string()));
            }
        }
    }
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        for matcher in rest[open + 1..close].split(',') {
            let name: String = matcher.trim().chars().take_while(|c| is_name(*c)).collect();
            if !name.is_empty() {
                labels.insert(name);
            }
        }
        rest = &rest[close..];
    }
    labels.remove("");
    labels
}

#[test]
fn the_grafana_dashboard_queries_only_what_sealwatch_exports() {
    let dashboard: serde_json::Value = serde_json::from_str(GRAFANA).unwrap();
    let labels = labels_by_metric(&exposition_with_samples());
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .map(|target| target["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 15, "found only {exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let metrics = metric_names(expr);
        assert!(!metrics.is_empty(), "{expr} queries no sealwatch metric");
        for metric in &metrics {
            assert!(
                labels.contains_key(metric),
                "the dashboard queries {metric}, which sealwatch does not export ({expr})"
            );
        }
        for label in expr_labels(expr) {
            assert!(
                TARGET_LABELS.contains(&label.as_str())
                    || metrics.iter().any(|m| labels[m].contains(&label)),
                "the dashboard uses label {label} on {metrics:?}, which have {:?} ({expr})",
                metrics.iter().map(|m| &labels[m]).collect::<Vec<_>>()
            );
        }
        used.extend(metrics);
    }
    // What the dashboard is for: violations by rule and namespace, drops by lane and sink,
    // events per second, containers and processes, metadata failures, readiness per node.
    for metric in [
        "sealwatch_violations_total",
        "sealwatch_kernel_drops_total",
        "sealwatch_output_drops_total",
        "sealwatch_events_total",
        "sealwatch_containers",
        "sealwatch_processes",
        "sealwatch_metadata_lookups_failed_total",
        "sealwatch_ready",
    ] {
        assert!(used.contains(metric), "the dashboard lacks {metric}");
    }
    assert!(expr_labels("sum by (rule, pod_namespace) (x{node=~\"$n\"})").len() == 3);
}

#[test]
fn every_metric_an_alert_uses_is_exported() {
    let exposition = exposition_with_samples();
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

#[test]
fn the_kubernetes_policy_lets_sealwatch_tail_in_and_nothing_else() {
    use crate::policy::Subject;
    let policy = Policy::parse(K8S_POLICY, "deploy/kubernetes/base/policy.yaml").unwrap();
    let exec = |namespace: &str, exe: &str, args: &[String]| {
        policy.is_excepted(
            RuleId::ContainerExec,
            &Subject {
                image: Some("localhost/sealwatch:0.1.0"),
                container_name: Some("sealwatch"),
                pod_namespace: Some(namespace),
                exe: Some(exe),
                args,
            },
        )
    };
    let tail = ["sealwatch".to_string(), "tail".to_string()];
    assert!(exec("sealwatch", "/usr/bin/sealwatch", &tail));
    assert!(
        !exec("shop", "/usr/bin/sealwatch", &tail),
        "another namespace"
    );
    assert!(
        !exec("sealwatch", "/bin/sh", &["sh".to_string()]),
        "a shell"
    );
    let run = ["sealwatch".to_string(), "run".to_string()];
    assert!(!exec("sealwatch", "/usr/bin/sealwatch", &run), "not tail");
    // The network rules wait for declared workloads there too.
    assert!(policy.network().is_observing());
}
