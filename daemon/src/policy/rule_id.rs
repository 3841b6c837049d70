//! Rule identifiers and severities: the stable names a policy file and every event use.

use std::fmt;

/// Every rule sealwatch knows. The kebab-case name (`as_str`) is the id in policy files, events and
/// metrics; it never changes meaning once released.
///
/// Only `root-in-container` is implemented by the detector today; the other ids are reserved for
/// the rules later work implements, and a policy may already configure them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    RootInContainer,
    ImageFileModified,
    DriftExec,
    NewExecutable,
    HostFileModified,
    ContainerExec,
    InteractiveSessionInContainer,
    NodeInteractiveLogin,
    UnexpectedConnection,
    UnexpectedListener,
}

impl RuleId {
    /// All rule ids, in declaration order.
    pub const ALL: [RuleId; 10] = [
        RuleId::RootInContainer,
        RuleId::ImageFileModified,
        RuleId::DriftExec,
        RuleId::NewExecutable,
        RuleId::HostFileModified,
        RuleId::ContainerExec,
        RuleId::InteractiveSessionInContainer,
        RuleId::NodeInteractiveLogin,
        RuleId::UnexpectedConnection,
        RuleId::UnexpectedListener,
    ];

    /// The id as written in policy files and events, e.g. `"root-in-container"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleId::RootInContainer => "root-in-container",
            RuleId::ImageFileModified => "image-file-modified",
            RuleId::DriftExec => "drift-exec",
            RuleId::NewExecutable => "new-executable",
            RuleId::HostFileModified => "host-file-modified",
            RuleId::ContainerExec => "container-exec",
            RuleId::InteractiveSessionInContainer => "interactive-session-in-container",
            RuleId::NodeInteractiveLogin => "node-interactive-login",
            RuleId::UnexpectedConnection => "unexpected-connection",
            RuleId::UnexpectedListener => "unexpected-listener",
        }
    }

    /// The rule whose id is `name`, if any.
    pub fn from_name(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|id| id.as_str() == name)
    }

    /// Severity when the policy does not set one.
    pub fn default_severity(&self) -> Severity {
        match self {
            RuleId::RootInContainer => Severity::Medium,
            RuleId::ImageFileModified
            | RuleId::DriftExec
            | RuleId::InteractiveSessionInContainer
            | RuleId::NodeInteractiveLogin => Severity::Critical,
            RuleId::NewExecutable
            | RuleId::HostFileModified
            | RuleId::ContainerExec
            | RuleId::UnexpectedConnection
            | RuleId::UnexpectedListener => Severity::High,
        }
    }

    /// Whether the rule is on when the policy does not say. Only `host-file-modified` is off: it
    /// needs a list of watched host paths to be useful.
    pub fn default_enabled(&self) -> bool {
        !matches!(self, RuleId::HostFileModified)
    }

    /// The known ids as a comma-separated list, for error messages.
    pub(crate) fn known_list() -> String {
        RuleId::ALL.map(|id| id.as_str()).join(", ")
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a violation is. Ordered: `Low < Medium < High < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name as written in policy files and events, e.g. `"medium"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity whose name is `name`, if any.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
