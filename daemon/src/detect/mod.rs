//! Rules: verdicts as pure functions of an event, the state at that moment and the policy. The
//! only memory a rule keeps (e.g. "already reported for this container") is itself a function of
//! the events seen, so replay gives the same verdicts.
//!
//! Every rule, by its policy name, and where it is judged:
//!
//! | rule | file |
//! |---|---|
//! | `image-file-modified`, `new-executable`, `host-file-modified` | [`immutability`] |
//! | `drift-exec` | [`drift`] (which file an interpreter runs: [`scripts`]) |
//! | `container-exec`, `interactive-session-in-container`, `node-interactive-login` | [`logins`] |
//! | `unexpected-connection`, `unexpected-listener` (and which workload a container is) | [`network`] |
//! | `root-in-container` | `root_in_container` |
//!
//! Rules read facts ([`ExecFacts`], [`Actor`], [`ContainerFacts`], `FileFacts`, `LoginFacts`,
//! `NetFacts`) built from events and `state`, never from rendered output: the policy's exceptions
//! match the same text the JSON shows (`event::text`), rendered here only when a rule fires.
pub mod drift;
pub mod immutability;
pub mod logins;
pub mod network;
pub mod paths;
mod root_in_container;
pub mod scripts;

use std::{borrow::Cow, sync::Arc};

use crate::{
    event::{model::FileOp, text},
    policy::{Policy, RuleId, Severity, Subject},
    state::{ContainerEntry, MetaState},
};

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

/// Who did something: the process's executable and argv as the kernel reported them (bytes),
/// and its container. What the policy's exceptions are matched against.
pub struct Actor<'a> {
    pub exe: &'a [u8],
    pub args: &'a [Vec<u8>],
    pub container: Option<ContainerFacts<'a>>,
}

/// The facts about an exec that rules look at.
pub struct ExecFacts<'a> {
    pub uid: u32,
    pub actor: Actor<'a>,
    pub exe_layer: drift::ExeLayer,
    /// Script run through an interpreter, and where it comes from.
    pub script: Option<(&'a str, crate::container::image_path::PathOrigin)>,
}

/// A container as rules see it: its id and the metadata its runtime reported (None until known).
#[derive(Debug, Clone, Copy)]
pub struct ContainerFacts<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    pub image: Option<&'a str>,
    pub pod_namespace: Option<&'a str>,
}

impl<'a> ContainerFacts<'a> {
    /// The facts of a registry entry (name, image and namespace once metadata is known).
    pub fn of(entry: &'a ContainerEntry) -> Self {
        let meta = match &entry.meta {
            MetaState::Known(meta) => Some(meta),
            MetaState::Pending | MetaState::Unavailable => None,
        };
        ContainerFacts {
            id: &entry.info.id,
            name: meta.and_then(|m| m.name.as_deref()),
            image: meta.and_then(|m| m.image.as_deref()),
            pod_namespace: meta
                .and_then(|m| m.pod.as_ref())
                .and_then(|p| p.namespace.as_deref()),
        }
    }
}

/// Kernel bytes as the JSON shows them (escaped form for what is not UTF-8).
pub(crate) fn shown(bytes: &[u8]) -> Cow<'_, str> {
    text::render(bytes).0
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
        let actor = &facts.actor;
        if actor.container.is_some() {
            if let Some(message) = drift::judge(&shown(actor.exe), facts.exe_layer, facts.script) {
                verdicts.extend(self.decide(RuleId::DriftExec, actor, message));
            }
        }
        if let Some(candidate) = self.root_in_container.check(facts) {
            verdicts.extend(self.decide(RuleId::RootInContainer, actor, candidate));
        }
        verdicts
    }

    pub fn on_file(
        &mut self,
        facts: &immutability::FileFacts<'_>,
        actor: &Actor<'_>,
    ) -> Vec<Verdict> {
        let judged = match facts.op {
            FileOp::ScriptRead | FileOp::MapExec if actor.container.is_some() => {
                drift::judge_code(facts, actor).map(|message| (RuleId::DriftExec, message))
            }
            FileOp::ScriptRead | FileOp::MapExec => None,
            _ => immutability::judge(facts),
        };
        judged
            .and_then(|(rule, message)| self.decide(rule, actor, message))
            .into_iter()
            .collect()
    }

    /// True when the policy wants host writes reported (the kernel then sends them).
    pub fn host_watch(&self) -> bool {
        self.policy.rule(RuleId::HostFileModified).enabled
    }

    /// Applies the policy (enabled, severity, exceptions) to a rule's candidate verdict about
    /// what `actor` did. Its text is rendered only for an enabled rule.
    fn decide(&self, rule: RuleId, actor: &Actor<'_>, message: String) -> Option<Verdict> {
        if !self.policy.rule(rule).enabled {
            return None;
        }
        let exe = shown(actor.exe);
        let args: Vec<String> = actor.args.iter().map(|a| shown(a).into_owned()).collect();
        self.decide_for(
            rule,
            &subject(&exe, &args, actor.container.as_ref()),
            message,
        )
    }

    /// [`Detector::decide`] for a subject already in text form.
    fn decide_for(&self, rule: RuleId, subject: &Subject<'_>, message: String) -> Option<Verdict> {
        let settings = self.policy.rule(rule);
        if !settings.enabled || self.policy.is_excepted(rule, subject) {
            return None;
        }
        Some(Verdict {
            rule,
            severity: settings.severity,
            message,
            action: None,
        })
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
