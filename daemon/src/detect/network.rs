//! `unexpected-connection` and `unexpected-listener`: a workload's network activity judged
//! against its allowlist in the policy's `network:` section.
use crate::{
    net::{Direction, Flow, Protocol, SocketText},
    policy::{NetEnvironment, NetworkPolicy, RuleId, WorkloadId},
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
