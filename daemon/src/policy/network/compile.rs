//! From the `network:` section as written to the policy the daemon judges with: sets resolved,
//! the default workload filled in, kernel limits checked.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::file::{unknown_set, DefaultFile, EntryFile, NetworkFile};
use super::kernel::check_kernel_limits;
use super::model::{Entry, Workload};
use super::peer::{Peer, SetRef};
use super::ports::Ports;
use super::sets::{Builtin, NetEnvironment};
use super::{NetAction, NetworkPolicy, DEFAULT_WORKLOAD_NAME};

/// The network policy of `file`, or why it cannot be used (no place in the file to point at).
pub(crate) fn compile(file: NetworkFile) -> Result<NetworkPolicy, String> {
    let sets: BTreeMap<String, Vec<IpNet>> = file.sets.into_iter().collect();
    let entries = |list: Vec<EntryFile>| -> Result<Vec<Entry>, String> {
        list.into_iter()
            .map(|entry| resolve(entry, &sets))
            .collect()
    };
    let DefaultFile {
        action,
        egress,
        ingress,
        listen,
    } = file.default;
    let builtin = builtin_default();
    let default = Workload {
        name: DEFAULT_WORKLOAD_NAME.to_owned(),
        matcher: None,
        action: action.unwrap_or(builtin.action),
        egress: egress.map_or(Ok(builtin.egress), entries)?,
        ingress: ingress.map_or(Ok(builtin.ingress), entries)?,
        listen: listen.unwrap_or(builtin.listen),
    };
    let workloads = file
        .workloads
        .into_iter()
        .map(|workload| {
            Ok(Workload {
                name: workload.name,
                matcher: Some(workload.matcher),
                action: workload.action,
                egress: entries(workload.egress)?,
                ingress: entries(workload.ingress)?,
                listen: workload.listen,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let policy = NetworkPolicy::declared(default, workloads);
    // With no environment, the sets it fills are empty: a policy over the limit on every node
    // fails here; the daemon checks again with its environment (`check_environment`).
    check_kernel_limits(&policy, &NetEnvironment::default()).map_err(|e| e.to_string())?;
    Ok(policy)
}

/// The default workload when the policy does not configure it: alert; egress to and ingress
/// from loopback on any port; no listening port.
pub(crate) fn builtin_default() -> Workload {
    let loopback = || Entry {
        nets: Builtin::Loopback.fixed().unwrap_or_default().to_vec(),
        env_sets: Vec::new(),
        names: Vec::new(),
        ports: Ports::ANY,
    };
    Workload {
        name: DEFAULT_WORKLOAD_NAME.to_owned(),
        matcher: None,
        action: NetAction::Alert,
        egress: vec![loopback()],
        ingress: vec![loopback()],
        listen: Vec::new(),
    }
}

/// An entry with its `set:` references replaced by their members.
fn resolve(entry: EntryFile, sets: &BTreeMap<String, Vec<IpNet>>) -> Result<Entry, String> {
    let mut resolved = Entry {
        nets: Vec::new(),
        env_sets: Vec::new(),
        names: Vec::new(),
        ports: entry.ports,
    };
    for peer in entry.peers {
        match peer {
            Peer::Net(net) => resolved.nets.push(net),
            Peer::Name(name) => resolved.names.push(name),
            Peer::Set(SetRef::Builtin(builtin)) => match builtin.fixed() {
                Some(members) => resolved.nets.extend_from_slice(members),
                None => resolved.env_sets.push(builtin),
            },
            Peer::Set(SetRef::Defined(name)) => match sets.get(&name) {
                Some(members) => resolved.nets.extend_from_slice(members),
                None => return Err(unknown_set(&name, sets.keys().map(String::as_str))),
            },
        }
    }
    resolved.nets.sort_unstable();
    resolved.nets.dedup();
    resolved.env_sets.sort_unstable();
    resolved.env_sets.dedup();
    resolved.names.sort_unstable();
    resolved.names.dedup();
    Ok(resolved)
}
