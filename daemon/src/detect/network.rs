//! `unexpected-connection` and `unexpected-listener`: a workload's network activity judged
//! against its allowlist in the policy's `network:` section. Also which workload a container is,
//! and whether the kernel must enforce its egress (`action: block`).
use super::{Actor, ContainerFacts, Detector, Verdict};
use crate::{
    event::{NetOp, NetRecord},
    net::{Direction, Flow, Protocol, SocketText},
    policy::{NetAction, NetEnvironment, NetworkPolicy, RuleId, WorkloadId, WorkloadSubject},
};

/// What a container did on the network.
#[derive(Debug, Clone, Copy)]
pub enum Activity {
    Flow(Flow),
    Listen { protocol: Protocol, port: u16 },
}

/// The rule `activity` breaks and why, or None when the workload's entries allow it.
pub fn judge(
    policy: &NetworkPolicy,
    env: &NetEnvironment,
    workload: WorkloadId,
    activity: &Activity,
    names: &[&str],
) -> Option<(RuleId, String)> {
    let name = policy.workload_name(workload);
    match activity {
        Activity::Flow(flow) => {
            if policy.allows_flow(workload, env, flow, names) {
                return None;
            }
            let peer = SocketText(flow.peer, flow.peer_port);
            let known_as = match names.first() {
                Some(host) => format!(" ({host})"),
                None => String::new(),
            };
            let message = match flow.direction {
                Direction::Egress => format!(
                    "{} connection to {peer}{known_as} is not allowed for workload `{name}`",
                    flow.protocol.as_str()
                ),
                Direction::Ingress => format!(
                    "{} connection from {peer} to local port {} is not allowed for workload `{name}`",
                    flow.protocol.as_str(),
                    flow.local_port
                ),
            };
            Some((RuleId::UnexpectedConnection, message))
        }
        Activity::Listen { protocol, port } => {
            if policy.allows_listen(workload, *protocol, *port) {
                return None;
            }
            Some((
                RuleId::UnexpectedListener,
                format!(
                    "listening on {} port {port}, which workload `{name}` does not declare",
                    protocol.as_str()
                ),
            ))
        }
    }
}

/// What a network record is, for the rules (and the line's `kind`): a flow out or in, or a
/// listener.
pub fn activity(net: &NetRecord, protocol: Protocol) -> (&'static str, Activity) {
    let flow = |direction| {
        Activity::Flow(Flow {
            protocol,
            direction,
            peer: net.peer,
            peer_port: net.peer_port,
            local: net.local,
            local_port: net.local_port,
        })
    };
    match net.op {
        NetOp::Connect | NetOp::Send => ("connect", flow(Direction::Egress)),
        NetOp::Accept => ("accept", flow(Direction::Ingress)),
        NetOp::Listen | NetOp::Bind => (
            "listen",
            Activity::Listen {
                protocol,
                port: net.local_port,
            },
        ),
    }
}

/// The workload a container belongs to under `policy`: chosen by image, name and namespace.
pub fn workload(policy: &NetworkPolicy, container: &ContainerFacts<'_>) -> WorkloadId {
    policy.select(&WorkloadSubject {
        image: container.image,
        container_name: container.name,
        pod_namespace: container.pod_namespace,
    })
}

/// The workload whose egress allowlist the kernel must enforce on the container, if its action
/// is `block`.
pub fn enforced_workload(
    policy: &NetworkPolicy,
    container: &ContainerFacts<'_>,
) -> Option<WorkloadId> {
    let workload = workload(policy, container);
    (policy.action(workload) == NetAction::Block).then_some(workload)
}

/// A network record of a container, with what the rules need to judge it.
pub struct NetFacts<'a> {
    pub record: &'a NetRecord,
    pub protocol: Protocol,
    pub workload: WorkloadId,
    pub activity: Activity,
    /// DNS names the container learned for the peer.
    pub names: &'a [&'a str],
}

impl Detector {
    /// The verdict on a network record, with what was done about it (`alert`, or `blocked` when
    /// the kernel denied it), unless the policy disables or excepts the rule.
    pub fn on_network(
        &self,
        env: &NetEnvironment,
        facts: &NetFacts<'_>,
        actor: &Actor<'_>,
    ) -> Option<Verdict> {
        let policy = self.policy.network();
        let net = facts.record;
        let mut candidate = judge(policy, env, facts.workload, &facts.activity, facts.names);
        if net.blocked && candidate.is_none() {
            // The kernel's allowlist lagged the policy (a DNS answer learned too late): the
            // block still happened and must not go unreported.
            candidate = Some((
                RuleId::UnexpectedConnection,
                format!(
                    "{} connection to {} was blocked in the kernel although workload \
                     `{}` allows it (the allowlist was not updated in time)",
                    facts.protocol.as_str(),
                    SocketText(net.peer, net.peer_port),
                    policy.workload_name(facts.workload),
                ),
            ));
        }
        let (rule, message) = candidate?;
        let action = if net.blocked { "blocked" } else { "alert" };
        self.decide(rule, actor, message).map(|verdict| Verdict {
            action: Some(action),
            ..verdict
        })
    }
}
