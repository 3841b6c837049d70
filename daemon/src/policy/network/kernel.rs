//! The kernel's view of a workload's egress: address prefixes, each with the port rules that
//! allow a connection to it. The kernel looks a peer up by longest prefix match and never sees
//! host names, so every entry carries the rules of the wider prefixes that contain it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use super::model::Workload;
use super::ports::{normalize, PortRule};
use super::sets::{canonical_net, NetEnvironment};
use super::NetworkPolicy;

/// Most port rules one kernel allowlist entry holds: the size of the kernel map's value. A
/// policy that needs more for one prefix (its own rules plus those of every wider prefix that
/// contains it, after merging overlapping and adjacent ranges) is refused when it is loaded.
pub const KERNEL_MAX_PORT_RULES: usize = 16;

/// One kernel allowlist entry: a prefix in IPv6 form (IPv4 as IPv4-mapped, `prefix_len` + 96)
/// and the port rules that allow egress to it. `ports` is empty only for the IPv4 catch-all
/// `::ffff:0.0.0.0/96` added when an IPv6 prefix such as `::/0` would otherwise cover IPv4
/// peers in the kernel: in the policy an IPv6 CIDR never covers IPv4 peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelAllow {
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    pub ports: Vec<PortRule>,
}

/// A workload needs more port rules for one prefix than a kernel allowlist entry holds.
#[derive(Debug, thiserror::Error)]
#[error(
    "network workload `{workload}`: {prefix} needs {rules} port rules in the kernel allowlist, \
     more than the {KERNEL_MAX_PORT_RULES} it holds per prefix (its own ports plus those of the \
     wider CIDRs and sets that contain it); use port ranges or fewer distinct ports"
)]
pub struct KernelLimitError {
    pub workload: String,
    /// The prefix (or, for a host name, the name) that needs too many rules.
    pub prefix: String,
    pub rules: usize,
}

/// Every prefix of `workload`'s egress with its full port rules, in a fixed order; the rules
/// may exceed [`KERNEL_MAX_PORT_RULES`].
pub(crate) fn allowlist(workload: &Workload, env: &NetEnvironment) -> Vec<(IpNet, Vec<PortRule>)> {
    // Canonical nets: IPv4 and IPv6 ones never contain each other, as in the policy.
    let mut own: BTreeMap<IpNet, Vec<PortRule>> = BTreeMap::new();
    for entry in &workload.egress {
        let rules = entry.ports.rules();
        for net in entry.networks(env) {
            own.entry(canonical_net(net))
                .or_default()
                .extend_from_slice(&rules);
        }
    }
    let all_v4 = IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0));
    if own.keys().any(|net| net.contains(&mapped_range())) {
        own.entry(all_v4).or_default();
    }
    let mut list: Vec<(IpNet, Vec<PortRule>)> = own
        .keys()
        .map(|&net| {
            // The prefixes containing `net` (itself included) are its truncations: one lookup
            // per length, not a scan of every prefix (learned policies list many addresses).
            let rules = (0..=net.prefix_len())
                .filter_map(|len| IpNet::new(net.addr(), len).ok())
                .filter_map(|wider| own.get(&wider.trunc()))
                .flat_map(|rules| rules.iter().copied());
            (net, normalize(rules))
        })
        .collect();
    list.sort_by_key(|(net, _)| mapped(*net));
    list
}

/// The rules for one learned host address: those of the name entries matching one of `names`
/// and of every prefix that contains it. `None` when nothing allows egress to it.
pub(crate) fn learned(
    workload: &Workload,
    env: &NetEnvironment,
    addr: IpAddr,
    names: &[&str],
) -> Option<Vec<PortRule>> {
    let addr = addr.to_canonical();
    let mut rules = Vec::new();
    for entry in &workload.egress {
        let by_name = entry
            .names
            .iter()
            .any(|pattern| names.iter().any(|name| pattern.matches(name)));
        if by_name || entry.networks(env).any(|net| net.contains(&addr)) {
            rules.extend(entry.ports.rules());
        }
    }
    (!rules.is_empty()).then(|| normalize(rules))
}

/// Each host name pattern of `workload`'s egress with the rules of the entries naming it, by name.
pub(crate) fn names(workload: &Workload) -> Vec<(String, Vec<PortRule>)> {
    let mut by_name: BTreeMap<String, Vec<PortRule>> = BTreeMap::new();
    for entry in &workload.egress {
        for pattern in &entry.names {
            by_name
                .entry(pattern.to_string())
                .or_default()
                .extend(entry.ports.rules());
        }
    }
    by_name
        .into_iter()
        .map(|(name, rules)| (name, normalize(rules)))
        .collect()
}

/// Fails when a prefix or host name of some workload needs more than [`KERNEL_MAX_PORT_RULES`].
pub(crate) fn check_kernel_limits(
    policy: &NetworkPolicy,
    env: &NetEnvironment,
) -> Result<(), KernelLimitError> {
    for workload in policy.workloads.iter().chain([&policy.default]) {
        let over = |prefix: String, rules: &[PortRule]| {
            (rules.len() > KERNEL_MAX_PORT_RULES).then(|| KernelLimitError {
                workload: workload.name.clone(),
                prefix,
                rules: rules.len(),
            })
        };
        for (net, rules) in allowlist(workload, env) {
            if let Some(error) = over(net.to_string(), &rules) {
                return Err(error);
            }
        }
        for (name, rules) in names(workload) {
            if let Some(error) = over(name, &rules) {
                return Err(error);
            }
        }
    }
    Ok(())
}

/// The rules as a kernel entry holds them: when over the limit (an environment the policy was
/// not checked against), any port, so the kernel never blocks what the policy allows; the
/// daemon still judges, and reports, every flow in user space.
pub(crate) fn bounded(workload: &str, what: &str, rules: Vec<PortRule>) -> Vec<PortRule> {
    if rules.len() <= KERNEL_MAX_PORT_RULES {
        return rules;
    }
    tracing::warn!(
        workload,
        prefix = what,
        rules = rules.len(),
        limit = KERNEL_MAX_PORT_RULES,
        "too many port rules for one kernel allowlist entry; allowing any port in the kernel"
    );
    vec![PortRule::ANY]
}

/// `net` as a kernel key: IPv6, IPv4 as IPv4-mapped.
pub(crate) fn mapped(net: IpNet) -> (Ipv6Addr, u8) {
    match net {
        IpNet::V4(v4) => (v4.network().to_ipv6_mapped(), v4.prefix_len() + 96),
        IpNet::V6(v6) => (v6.network(), v6.prefix_len()),
    }
}

/// `::ffff:0:0/96`, the IPv4-mapped addresses.
fn mapped_range() -> IpNet {
    let start = Ipv4Addr::UNSPECIFIED.to_ipv6_mapped();
    IpNet::V6(ipnet::Ipv6Net::new_assert(start, 96))
}
