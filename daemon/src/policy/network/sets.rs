//! Sets of peers: the built-in ones (some from the daemon's environment) and what is needed to
//! resolve them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The sets every policy has. A policy cannot define a set with one of these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Builtin {
    Loopback,
    CloudMetadata,
    KubernetesApi,
    Cluster,
}

const LOOPBACK: [IpNet; 2] = [
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
    IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
];

const CLOUD_METADATA: [IpNet; 3] = [
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 169, 254), 32)),
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        128,
    )),
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(100, 100, 100, 200), 32)),
];

impl Builtin {
    pub(crate) const ALL: [Builtin; 4] = [
        Builtin::Loopback,
        Builtin::CloudMetadata,
        Builtin::KubernetesApi,
        Builtin::Cluster,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Builtin::Loopback => "loopback",
            Builtin::CloudMetadata => "cloud-metadata",
            Builtin::KubernetesApi => "kubernetes-api",
            Builtin::Cluster => "cluster",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.as_str() == name)
    }

    /// The fixed members of a set that does not depend on the environment, else `None`.
    pub(crate) fn fixed(self) -> Option<&'static [IpNet]> {
        match self {
            Builtin::Loopback => Some(&LOOPBACK),
            Builtin::CloudMetadata => Some(&CLOUD_METADATA),
            Builtin::KubernetesApi | Builtin::Cluster => None,
        }
    }

    /// The members of this set on this node.
    pub(crate) fn members(self, env: &NetEnvironment) -> &[IpNet] {
        match self {
            Builtin::Loopback => &LOOPBACK,
            Builtin::CloudMetadata => &CLOUD_METADATA,
            Builtin::KubernetesApi => &env.kubernetes_api,
            Builtin::Cluster => &env.cluster_cidrs,
        }
    }
}

/// What the node's configuration contributes to the built-in sets `cluster` and
/// `kubernetes-api`. Both are empty unless configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetEnvironment {
    /// `--cluster-cidr` (pod and service ranges): the members of `set:cluster`.
    pub cluster_cidrs: Vec<IpNet>,
    /// `--kubernetes-api`, else the daemon's own `KUBERNETES_SERVICE_HOST`: `set:kubernetes-api`.
    pub kubernetes_api: Vec<IpNet>,
}

impl NetEnvironment {
    /// The environment from the daemon's flags; when `kubernetes_api` is empty and the daemon
    /// runs in a pod, the API server is the `KUBERNETES_SERVICE_HOST` address.
    pub fn from_daemon_env(cluster_cidrs: Vec<IpNet>, kubernetes_api: Vec<IpNet>) -> Self {
        let host = std::env::var("KUBERNETES_SERVICE_HOST").ok();
        NetEnvironment::with_service_host(cluster_cidrs, kubernetes_api, host.as_deref())
    }

    /// `from_daemon_env` with the variable's value given (`None` = unset).
    pub(crate) fn with_service_host(
        cluster_cidrs: Vec<IpNet>,
        kubernetes_api: Vec<IpNet>,
        service_host: Option<&str>,
    ) -> Self {
        let mut env = NetEnvironment {
            cluster_cidrs: cluster_cidrs.into_iter().map(canonical_net).collect(),
            kubernetes_api: kubernetes_api.into_iter().map(canonical_net).collect(),
        };
        if env.kubernetes_api.is_empty() {
            if let Some(host) = service_host.map(str::trim).filter(|h| !h.is_empty()) {
                match host.parse::<IpAddr>() {
                    Ok(addr) => env.kubernetes_api.push(canonical_net(IpNet::from(addr))),
                    Err(_) => tracing::warn!(
                        host,
                        "KUBERNETES_SERVICE_HOST is not an address; set:kubernetes-api stays \
                         empty (use --kubernetes-api)"
                    ),
                }
            }
        }
        env
    }
}

/// The form a network is judged in: an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is
/// the IPv4 one (`10.0.0.0/8`), as flows give IPv4 peers of dual-stack sockets as IPv4.
/// IPv6 networks wider than the mapped range (`::/0`) stay IPv6 and never cover IPv4 peers.
/// Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
pub(crate) fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => match Ipv4Net::new(v4, v6.prefix_len() - 96) {
                Ok(v4net) => IpNet::V4(v4net),
                Err(_) => net,
            },
            None => net,
        },
        _ => net,
    }
}
