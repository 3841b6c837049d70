//! The compiled network policy of one workload: who it is (`match`), what it may do, and how a
//! flow or a listening port is judged against it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::peer::NamePattern;
use super::ports::Ports;
use super::sets::{canonical_net, Builtin, NetEnvironment};
use super::{NetAction, WorkloadSubject};
use crate::net::Protocol;
use crate::policy::matcher::Glob;

/// One workload (or the default one, which has no `match`).
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub(crate) name: String,
    pub(crate) matcher: Option<WorkloadMatch>,
    pub(crate) action: NetAction,
    pub(crate) egress: Vec<Entry>,
    pub(crate) ingress: Vec<Entry>,
    pub(crate) listen: Vec<Ports>,
}

impl Workload {
    pub(crate) fn allows_listen(&self, protocol: Protocol, port: u16) -> bool {
        self.listen.iter().any(|ports| ports.allows(protocol, port))
    }
}

/// `match:` of a workload: every field given must match; at least one is given. A given field
/// never matches an unknown (`None`) value, as in rule exceptions.
#[derive(Debug, Clone)]
pub(crate) struct WorkloadMatch {
    pub(crate) image: Option<Glob>,
    pub(crate) container_name: Option<Glob>,
    pub(crate) pod_namespace: Option<Glob>,
}

impl WorkloadMatch {
    pub(crate) fn matches(&self, subject: &WorkloadSubject<'_>) -> bool {
        fn field(glob: Option<&Glob>, value: Option<&str>) -> bool {
            glob.is_none_or(|glob| value.is_some_and(|value| glob.is_match(value)))
        }
        field(self.image.as_ref(), subject.image)
            && field(self.container_name.as_ref(), subject.container_name)
            && field(self.pod_namespace.as_ref(), subject.pod_namespace)
    }
}

/// One `egress` or `ingress` entry with its sets resolved: the peers it covers and its ports.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Addresses, CIDRs and the members of fixed sets (`loopback`, `cloud-metadata`, defined
    /// ones), canonical (IPv4-mapped given as IPv4).
    pub(crate) nets: Vec<IpNet>,
    /// Built-in sets whose members come from the environment (`cluster`, `kubernetes-api`).
    pub(crate) env_sets: Vec<Builtin>,
    /// Host names (egress only).
    pub(crate) names: Vec<NamePattern>,
    pub(crate) ports: Ports,
}

impl Entry {
    /// Every network this entry covers on this node (names excluded).
    pub(crate) fn networks<'a>(
        &'a self,
        env: &'a NetEnvironment,
    ) -> impl Iterator<Item = IpNet> + 'a {
        let from_env = self
            .env_sets
            .iter()
            .flat_map(move |set| set.members(env).iter().copied().map(canonical_net));
        self.nets.iter().copied().chain(from_env)
    }

    /// Whether `peer` (canonical) is covered, by address or by one of the names the container
    /// learned for it.
    pub(crate) fn covers(&self, env: &NetEnvironment, peer: IpAddr, peer_names: &[&str]) -> bool {
        self.networks(env).any(|net| net.contains(&peer))
            || self
                .names
                .iter()
                .any(|pattern| peer_names.iter().any(|name| pattern.matches(name)))
    }
}
