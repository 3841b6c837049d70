//! Rules: verdicts as pure functions of an event, the state at that moment and the policy. The
//! only memory a rule keeps (e.g. "already reported for this container") is itself a function of
//! the events seen, so replay gives the same verdicts.
pub mod drift;
pub mod immutability;
pub mod network;
pub mod paths;
mod root_in_container;

use std::sync::Arc;

use crate::policy::{Policy, RuleId, Severity, Subject};

pub use root_in_container::RootInContainer;

/// A rule fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub rule: RuleId,
    pub severity: Severity,
    pub message: String,
    /// Network rules: `alert` or `blocked` (what was done about it).
    pub action: Option<&'static str>,
}

/// The facts about an exec that rules look at.
pub struct ExecFacts<'a> {
    pub uid: u32,
    pub exe: &'a str,
    pub args: &'a [String],
    pub container: Option<ContainerFacts<'a>>,
    pub exe_layer: drift::ExeLayer,
    /// Script run through an interpreter, and where it comes from.
    pub script: Option<(&'a str, crate::container::image_path::PathOrigin)>,
}

pub struct ContainerFacts<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub image: Option<&'a str>,
    pub pod_namespace: Option<&'a str>,
}

pub struct Detector {
    policy: Arc<Policy>,
    root_in_container: RootInContainer,
}

impl Detector {
    pub fn new(policy: Arc<Policy>) -> Self {
        Detector {
            policy,
            root_in_container: RootInContainer::default(),
        }
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Swaps the policy (reload); what rules remember is kept.
    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
    }

    pub fn on_exec(&mut self, facts: &ExecFacts<'_>) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let subject = subject(facts.exe, facts.args, facts.container.as_ref());
        if facts.container.is_some() {
            if let Some(message) = drift::judge(facts.exe, facts.exe_layer, facts.script) {
                self.decide(RuleId::DriftExec, &subject, message, &mut verdicts);
            }
        }
        if let Some(candidate) = self.root_in_container.check(facts) {
            self.decide(RuleId::RootInContainer, &subject, candidate, &mut verdicts);
        }
        verdicts
    }

    pub fn on_file(
        &mut self,
        facts: &immutability::FileFacts<'_>,
        exe: &str,
        args: &[String],
        container: Option<&ContainerFacts<'_>>,
    ) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        if let Some((rule, message)) = immutability::judge(facts) {
            let subject = subject(exe, args, container);
            self.decide(rule, &subject, message, &mut verdicts);
        }
        verdicts
    }

    /// A login (container exec, SSH, console, nsenter): the verdict of `rule` unless the policy
    /// disables or excepts it (exec probes are excepted by container, exe and args).
    pub fn on_login(
        &self,
        rule: RuleId,
        message: String,
        exe: &str,
        args: &[String],
        container: Option<&ContainerFacts<'_>>,
    ) -> Option<Verdict> {
        let mut verdicts = Vec::new();
        self.decide(rule, &subject(exe, args, container), message, &mut verdicts);
        verdicts.pop()
    }

    /// A network rule's candidate verdict (see [`network::judge`]), with what was done about it
    /// (`alert` or `blocked`), unless the policy disables or excepts the rule.
    pub fn on_network(
        &self,
        rule: RuleId,
        message: String,
        action: &'static str,
        exe: &str,
        args: &[String],
        container: Option<&ContainerFacts<'_>>,
    ) -> Option<Verdict> {
        self.on_login(rule, message, exe, args, container)
            .map(|verdict| Verdict {
                action: Some(action),
                ..verdict
            })
    }

    /// True when the policy wants host writes reported (the kernel then sends them).
    pub fn host_watch(&self) -> bool {
        self.policy.rule(RuleId::HostFileModified).enabled
    }

    /// Applies the policy (enabled, severity, exceptions) to a rule's candidate verdict.
    fn decide(&self, rule: RuleId, subject: &Subject<'_>, message: String, out: &mut Vec<Verdict>) {
        let settings = self.policy.rule(rule);
        if !settings.enabled {
            return;
        }
        if self.policy.is_excepted(rule, subject) {
            return;
        }
        out.push(Verdict {
            rule,
            severity: settings.severity,
            message,
            action: None,
        });
    }
}

fn subject<'a>(
    exe: &'a str,
    args: &'a [String],
    container: Option<&ContainerFacts<'a>>,
) -> Subject<'a> {
    Subject {
        image: container.and_then(|c| c.image),
        container_name: container.and_then(|c| c.name),
        pod_namespace: container.and_then(|c| c.pod_namespace),
        exe: Some(exe),
        args,
    }
}
