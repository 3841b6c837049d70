//! The `network:` section of the policy: which peers each workload may talk to, and on which
//! ports it may listen.
//!
//! A container is one workload: the first of `workloads` whose `match` fits it, else the default
//! one. A flow is allowed when one entry of its direction covers the peer (address, CIDR, set,
//! or a host name the container resolved to that address) on the port and protocol. Everything
//! here is pure: the daemon supplies the node's environment ([`NetEnvironment`]) and the names
//! it learned from DNS answers.

mod compile;
mod file;
mod kernel;
mod model;
mod peer;
mod ports;
mod sets;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

use ipnet::IpNet;

pub use kernel::{KernelAllow, KernelLimitError, KERNEL_MAX_PORT_RULES};
pub use ports::PortRule;
pub use sets::NetEnvironment;

pub(crate) use compile::compile;
pub(crate) use file::{declared_sets, KnownSets, NetworkFile, NetworkSeed};

use crate::net::{Direction, Flow, Protocol};
use model::Workload;

/// The name events give the default workload; no workload of the policy may take it.
pub const DEFAULT_WORKLOAD_NAME: &str = "default";

/// A workload of one loaded policy: its position in `workloads`, or [`WorkloadId::DEFAULT`].
/// Ids of one policy mean nothing to another (a reload renumbers them).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WorkloadId(pub u32);

impl WorkloadId {
    /// The default workload, for containers no workload matches.
    pub const DEFAULT: WorkloadId = WorkloadId(u32::MAX);
}

/// What a workload's `match` is judged on (`None` = unknown, which a given field never matches).
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkloadSubject<'a> {
    pub image: Option<&'a str>,
    pub container_name: Option<&'a str>,
    pub pod_namespace: Option<&'a str>,
}

/// What happens to a flow a workload does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetAction {
    /// Report it only.
    Alert,
    /// Deny it in the kernel (egress the kernel can judge) and report it.
    Block,
}

impl NetAction {
    /// The name as written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            NetAction::Alert => "alert",
            NetAction::Block => "block",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<NetAction> {
        match name {
            "alert" => Some(NetAction::Alert),
            "block" => Some(NetAction::Block),
            _ => None,
        }
    }
}

/// The loaded `network:` section.
#[derive(Debug, Clone)]
pub struct NetworkPolicy {
    default: Workload,
    workloads: Vec<Workload>,
    /// No `network:` section: connections and listeners are observed (events, `learn`) and only
    /// the always-suspicious is judged (a container reaching `set:cloud-metadata`), as a fresh
    /// cluster's every DNS lookup, API call and listener would otherwise be a violation.
    observing: bool,
}

impl Default for NetworkPolicy {
    /// The policy without a `network:` section: no workloads, observing.
    fn default() -> Self {
        NetworkPolicy {
            default: compile::builtin_default(),
            workloads: Vec::new(),
            observing: true,
        }
    }
}

impl NetworkPolicy {
    /// Whether the policy has no `network:` section: the network rules wait for declared
    /// workloads and judge only access to the cloud metadata service.
    pub fn is_observing(&self) -> bool {
        self.observing
    }

    pub(crate) fn declared(default: Workload, workloads: Vec<Workload>) -> Self {
        NetworkPolicy {
            default,
            workloads,
            observing: false,
        }
    }

    /// The workload of a container: the first whose `match` fits, in file order, else the default.
    pub fn select(&self, subject: &WorkloadSubject<'_>) -> WorkloadId {
        self.workloads
            .iter()
            .position(|workload| {
                workload
                    .matcher
                    .as_ref()
                    .is_some_and(|matcher| matcher.matches(subject))
            })
            .and_then(|index| u32::try_from(index).ok())
            .map_or(WorkloadId::DEFAULT, WorkloadId)
    }

    /// The workload's name as events report it; [`DEFAULT_WORKLOAD_NAME`] for the default.
    pub fn workload_name(&self, id: WorkloadId) -> &str {
        &self.workload(id).name
    }

    /// What to do with a flow the workload does not allow.
    pub fn action(&self, id: WorkloadId) -> NetAction {
        self.workload(id).action
    }

    /// Every workload, in file order, then the default.
    pub fn workload_ids(&self) -> impl Iterator<Item = WorkloadId> + '_ {
        (0..self.workloads.len())
            .filter_map(|index| u32::try_from(index).ok())
            .map(WorkloadId)
            .chain([WorkloadId::DEFAULT])
    }

    /// Whether the workload may have `flow`: egress judged on the peer's port, ingress on the
    /// local port it was accepted on. `peer_names` are the DNS names this container learned for
    /// `flow.peer` (lowercase, no trailing dot; others are tolerated). An IPv4-mapped IPv6
    /// peer is judged as IPv4.
    pub fn allows_flow(
        &self,
        id: WorkloadId,
        env: &NetEnvironment,
        flow: &Flow,
        peer_names: &[&str],
    ) -> bool {
        let workload = self.workload(id);
        let peer: IpAddr = flow.peer.to_canonical();
        if self.observing {
            // Everything but reaching for the node's cloud credentials.
            return flow.direction == Direction::Ingress
                || !sets::Builtin::CloudMetadata
                    .members(env)
                    .iter()
                    .any(|net| net.contains(&peer));
        }
        let (entries, port) = match flow.direction {
            Direction::Egress => (&workload.egress, flow.peer_port),
            Direction::Ingress => (&workload.ingress, flow.local_port),
        };
        entries.iter().any(|entry| {
            entry.ports.allows(flow.protocol, port) && entry.covers(env, peer, peer_names)
        })
    }

    /// Whether the workload may listen on (TCP) or bind (UDP) `port`.
    pub fn allows_listen(&self, id: WorkloadId, protocol: Protocol, port: u16) -> bool {
        self.observing || self.workload(id).allows_listen(protocol, port)
    }

    /// The workload's egress for in-kernel blocking: every address, CIDR and set member (host
    /// names excluded, see [`Self::egress_names`]) as one entry per distinct prefix, ordered by
    /// prefix. Each entry's rules include those of every wider prefix containing it, since the
    /// kernel uses only the longest match. At most [`KERNEL_MAX_PORT_RULES`] rules per entry:
    /// loading checks this without an environment and [`Self::check_environment`] with one; an
    /// entry still over it allows any port in the kernel (and is logged).
    pub fn kernel_allowlist(&self, id: WorkloadId, env: &NetEnvironment) -> Vec<KernelAllow> {
        let workload = self.workload(id);
        kernel::allowlist(workload, env)
            .into_iter()
            .map(|(net, rules)| {
                let (prefix, prefix_len) = kernel::mapped(net);
                KernelAllow {
                    prefix,
                    prefix_len,
                    ports: kernel::bounded(&workload.name, &net.to_string(), rules),
                }
            })
            .collect()
    }

    /// The kernel entry for `addr`, an address the container learned for `names`: a host
    /// prefix (/128, IPv4 as mapped) with the rules of the name entries matching one of
    /// `names` and of every prefix containing `addr`. `None` when none of them allows it.
    pub fn kernel_allow_for_learned(
        &self,
        id: WorkloadId,
        env: &NetEnvironment,
        addr: IpAddr,
        names: &[&str],
    ) -> Option<KernelAllow> {
        let workload = self.workload(id);
        let rules = kernel::learned(workload, env, addr, names)?;
        let (prefix, prefix_len) = kernel::mapped(IpNet::from(addr.to_canonical()));
        Some(KernelAllow {
            prefix,
            prefix_len,
            ports: kernel::bounded(&workload.name, &addr.to_string(), rules),
        })
    }

    /// The host name patterns of the workload's egress (`api.example.com`, `*.example.com`), each
    /// once, sorted, with the port rules of the entries that name it.
    pub fn egress_names(&self, id: WorkloadId) -> Vec<(String, Vec<PortRule>)> {
        kernel::names(self.workload(id))
    }

    /// Whether `name` (any case, trailing dot or not) matches a host name pattern of the
    /// workload's egress: DNS answers for other names do not matter to it.
    pub fn wants_name(&self, id: WorkloadId, name: &str) -> bool {
        self.workload(id)
            .egress
            .iter()
            .flat_map(|entry| &entry.names)
            .any(|pattern| pattern.matches(name))
    }

    /// Whether any workload, the default included, names hosts in its egress.
    pub fn uses_names(&self) -> bool {
        self.workloads
            .iter()
            .chain([&self.default])
            .any(|workload| workload.egress.iter().any(|entry| !entry.names.is_empty()))
    }

    /// Checks the kernel allowlist limit against the node's environment (`set:cluster` and
    /// `set:kubernetes-api` may add prefixes and rules); loading checked it without one.
    pub fn check_environment(&self, env: &NetEnvironment) -> Result<(), KernelLimitError> {
        kernel::check_kernel_limits(self, env)
    }

    /// The workload `id` names; an id this policy did not give out is the default's.
    fn workload(&self, id: WorkloadId) -> &Workload {
        usize::try_from(id.0)
            .ok()
            .and_then(|index| self.workloads.get(index))
            .unwrap_or(&self.default)
    }
}
