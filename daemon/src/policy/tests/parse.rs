//! Valid policies: the embedded default, the example, overrides, loading from a file.

use std::path::{Path, PathBuf};

use super::super::{RuleId, RuleSettings, Severity, DEFAULT_POLICY_SOURCE, DEFAULT_POLICY_YAML};
use super::{Policy, VALID_EXAMPLE};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/policy/examples")
}

#[test]
fn embedded_default_parses_and_states_every_default() {
    // Parse directly, so a broken default.yaml fails here rather than falling back.
    let policy = Policy::parse(DEFAULT_POLICY_YAML, DEFAULT_POLICY_SOURCE).unwrap();
    for id in RuleId::ALL {
        assert_eq!(policy.rule(id), RuleSettings::default_for(id), "{id}");
        // default.yaml lists every rule explicitly, so it documents all of them.
        assert!(
            DEFAULT_POLICY_YAML.contains(&format!("\n  {}:\n", id.as_str())),
            "{id}"
        );
    }
    let embedded = Policy::embedded_default();
    assert_eq!(embedded.source(), DEFAULT_POLICY_SOURCE);
    assert_eq!(embedded.text(), DEFAULT_POLICY_YAML);
}

#[test]
fn documented_defaults() {
    let expected = [
        (RuleId::RootInContainer, true, Severity::Medium),
        (RuleId::ImageFileModified, true, Severity::Critical),
        (RuleId::DriftExec, true, Severity::Critical),
        (RuleId::NewExecutable, true, Severity::High),
        (RuleId::HostFileModified, false, Severity::High),
        (RuleId::ContainerExec, true, Severity::High),
        (
            RuleId::InteractiveSessionInContainer,
            true,
            Severity::Critical,
        ),
        (RuleId::NodeInteractiveLogin, true, Severity::Critical),
        (RuleId::UnexpectedConnection, true, Severity::High),
        (RuleId::UnexpectedListener, true, Severity::High),
    ];
    assert_eq!(expected.map(|(id, ..)| id), RuleId::ALL);
    for (id, enabled, severity) in expected {
        assert_eq!(id.default_enabled(), enabled, "{id}");
        assert_eq!(id.default_severity(), severity, "{id}");
    }
}

#[test]
fn names_round_trip_through_serde() {
    for id in RuleId::ALL {
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.as_str()));
        assert_eq!(RuleId::from_name(id.as_str()), Some(id));
    }
    for severity in Severity::ALL {
        let json = serde_json::to_string(&severity).unwrap();
        assert_eq!(json, format!("\"{}\"", severity.as_str()));
    }
    assert_eq!(
        RuleId::InteractiveSessionInContainer.as_str(),
        "interactive-session-in-container"
    );
    assert!(Severity::Low < Severity::Critical);
}

#[test]
fn minimal_policy_keeps_defaults() {
    for text in [
        "version: 1\n",
        "version: 1\nrules:\n",
        "version: 1\nrules: {}\n",
    ] {
        let policy = Policy::parse(text, "p.yaml").unwrap();
        for id in RuleId::ALL {
            assert_eq!(
                policy.rule(id),
                RuleSettings::default_for(id),
                "{text:?} {id}"
            );
        }
    }
}

#[test]
fn rule_settings_override_only_what_is_given() {
    let text = "version: 1\nrules:\n  root-in-container:\n    enabled: false\n  \
                drift-exec:\n    severity: low\n  host-file-modified:\n    enabled: true\n";
    let policy = Policy::parse(text, "p.yaml").unwrap();
    let settings = |enabled, severity| RuleSettings { enabled, severity };
    assert_eq!(
        policy.rule(RuleId::RootInContainer),
        settings(false, Severity::Medium)
    );
    assert_eq!(
        policy.rule(RuleId::DriftExec),
        settings(true, Severity::Low)
    );
    assert_eq!(
        policy.rule(RuleId::HostFileModified),
        settings(true, Severity::High)
    );
    assert_eq!(
        policy.rule(RuleId::ContainerExec),
        settings(true, Severity::High)
    );
}

#[test]
fn valid_example_parses() {
    let policy = Policy::parse(VALID_EXAMPLE, "valid.yaml").unwrap();
    let root = policy.rule(RuleId::RootInContainer);
    assert_eq!(
        root,
        RuleSettings {
            enabled: true,
            severity: Severity::High
        }
    );
    assert!(policy.rule(RuleId::HostFileModified).enabled);
    let exec = policy.rule(RuleId::ContainerExec);
    assert_eq!(
        exec,
        RuleSettings {
            enabled: false,
            severity: Severity::Low
        }
    );
}

#[test]
fn load_reads_the_file_and_records_source_and_text() {
    let path = examples_dir().join("valid.yaml");
    let policy = Policy::load(&path).unwrap();
    assert_eq!(policy.source(), path.display().to_string());
    assert_eq!(policy.text(), VALID_EXAMPLE);
}

#[test]
fn load_error_names_the_file_and_line() {
    let path = examples_dir().join("invalid.yaml");
    let error = Policy::load(&path).unwrap_err();
    let prefix = format!(
        "{}:7:9: rules.root-in-container.exceptions[0]: ",
        path.display()
    );
    assert!(error.to_string().starts_with(&prefix), "{error}");
    assert_eq!(error.file(), path.display().to_string());
    assert_eq!(error.location(), Some((7, 9)));
    assert!(
        error.reason().contains("unknown field `contianer_name`"),
        "{error}"
    );
}

#[test]
fn unreadable_file_is_one_line_without_location() {
    let path = examples_dir().join("no-such-policy.yaml");
    let error = Policy::load(&path).unwrap_err();
    let expected = format!("{}: cannot read: No such file or directory", path.display());
    assert_eq!(error.to_string(), expected);
    assert_eq!(error.location(), None);
    assert_eq!(super::super::PolicyError::EXIT_CODE, 64);
}
