//! The policy: which rules run, at what severity, and the documented exceptions to each; and
//! (`network:`) which peers and listening ports each workload may have.
//!
//! A policy is a YAML file (format: the comments in `default.yaml`, which is also the embedded
//! default). Loading is strict: unknown keys, unknown rule ids, wrong types, invalid globs and
//! undocumented exceptions are errors that name the file, line and column
//! (`policy.yaml:12:9: reason`); the daemon exits with [`PolicyError::EXIT_CODE`] on them.

mod error;
mod file;
mod keys;
mod matcher;
mod network;
mod rule_id;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeSeed;

pub use error::PolicyError;
pub use matcher::Subject;
pub use network::{
    KernelAllow, KernelLimitError, NetAction, NetEnvironment, NetworkPolicy, PortRule, WorkloadId,
    WorkloadSubject, DEFAULT_WORKLOAD_NAME, KERNEL_MAX_PORT_RULES,
};
pub use rule_id::{RuleId, Severity};

use file::{PolicyFile, PolicyFileSeed, SUPPORTED_VERSION};
use matcher::Exception;

/// The text of the embedded default policy.
pub const DEFAULT_POLICY_YAML: &str = include_str!("default.yaml");

/// The source name of the embedded default policy, as `Policy::source` reports it.
pub const DEFAULT_POLICY_SOURCE: &str = "<embedded default policy>";

/// Effective settings of one rule: the policy's, else the rule's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSettings {
    pub enabled: bool,
    pub severity: Severity,
}

impl RuleSettings {
    /// The settings a rule has when the policy does not mention it.
    pub fn default_for(id: RuleId) -> RuleSettings {
        RuleSettings {
            enabled: id.default_enabled(),
            severity: id.default_severity(),
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    settings: RuleSettings,
    exceptions: Vec<Exception>,
}

/// A loaded, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    text: String,
    rules: BTreeMap<RuleId, Rule>,
    network: NetworkPolicy,
}

impl Policy {
    /// The embedded default policy (`default.yaml`): every rule at its default settings, no
    /// exceptions.
    pub fn embedded_default() -> Policy {
        match Policy::parse(DEFAULT_POLICY_YAML, DEFAULT_POLICY_SOURCE) {
            Ok(policy) => policy,
            Err(error) => {
                // Unreachable: a unit test parses default.yaml. Should it ever happen, the
                // built-in defaults are what default.yaml says (the same test checks that).
                tracing::error!(%error, "embedded default policy does not parse; using built-in defaults");
                Policy {
                    source: DEFAULT_POLICY_SOURCE.to_owned(),
                    text: DEFAULT_POLICY_YAML.to_owned(),
                    rules: BTreeMap::new(),
                    network: NetworkPolicy::default(),
                }
            }
        }
    }

    /// Reads and parses the policy file at `path`; errors name the file as given.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::read(&source, e))?;
        Policy::parse(&text, &source)
    }

    /// Parses policy text; `source` names it in messages (usually the file name).
    pub fn parse(text: &str, source: &str) -> Result<Policy, PolicyError> {
        let known_sets = network::declared_sets(text);
        let seed = PolicyFileSeed {
            known_sets: network::KnownSets(known_sets.as_ref()),
        };
        let file: PolicyFile = seed
            .deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| PolicyError::from_yaml(source, &e))?;
        if file.version.is_none() {
            return Err(PolicyError::invalid(
                source,
                &format!(
                    "policy is empty; it must contain at least `version: {SUPPORTED_VERSION}`"
                ),
            ));
        }
        let rules = file
            .rules
            .into_iter()
            .map(|(id, rule)| {
                let defaults = RuleSettings::default_for(id);
                let settings = RuleSettings {
                    enabled: rule.enabled.unwrap_or(defaults.enabled),
                    severity: rule.severity.unwrap_or(defaults.severity),
                };
                let exceptions = rule.exceptions;
                (
                    id,
                    Rule {
                        settings,
                        exceptions,
                    },
                )
            })
            .collect();
        let network = match file.network {
            Some(section) => {
                network::compile(section).map_err(|reason| PolicyError::invalid(source, &reason))?
            }
            None => NetworkPolicy::default(),
        };
        Ok(Policy {
            source: source.to_owned(),
            text: text.to_owned(),
            rules,
            network,
        })
    }

    /// Where the policy came from: the path given to `load`, the `source` given to `parse`, or
    /// [`DEFAULT_POLICY_SOURCE`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The policy text exactly as loaded.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Effective settings of rule `id`.
    pub fn rule(&self, id: RuleId) -> RuleSettings {
        self.rules
            .get(&id)
            .map_or_else(|| RuleSettings::default_for(id), |rule| rule.settings)
    }

    /// The `network:` section; the built-in default workload alone when the policy has none.
    pub fn network(&self) -> &NetworkPolicy {
        &self.network
    }

    /// Checks the network policy against the node's environment (the members of `set:cluster`
    /// and `set:kubernetes-api`), which loading could not know: the daemon calls this once it
    /// knows them, and treats an error like any other invalid policy.
    pub fn check_network_environment(&self, env: &NetEnvironment) -> Result<(), PolicyError> {
        self.network
            .check_environment(env)
            .map_err(|error| PolicyError::invalid(&self.source, &error.to_string()))
    }

    /// Whether an exception of rule `id` matches `subject`.
    pub fn is_excepted(&self, id: RuleId, subject: &Subject<'_>) -> bool {
        self.exception_reason(id, subject).is_some()
    }

    /// The `reason` of the first exception of rule `id` that matches `subject`, if any.
    pub fn exception_reason(&self, id: RuleId, subject: &Subject<'_>) -> Option<&str> {
        self.rules
            .get(&id)?
            .exceptions
            .iter()
            .find(|exception| exception.matches(subject))
            .map(Exception::reason)
    }
}
