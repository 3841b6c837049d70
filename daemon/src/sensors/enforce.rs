//! In-kernel egress enforcement: the `cgroup/connect4|6` and `cgroup/sendmsg4|6` hooks attached
//! to the cgroups of containers whose workload blocks, and the allowlists they consult.
//!
//! Hooks are attached through BPF links, which the kernel always attaches as `BPF_F_ALLOW_MULTI`:
//! other tools' programs on the same cgroup keep working, and the links close with the daemon's
//! file descriptors, so no program outlives the daemon, however it ends.
use std::{collections::HashMap, fs::File, net::Ipv6Addr, path::Path};

use aya::{
    maps::{lpm_trie::Key, HashMap as BpfHashMap, LpmTrie, MapData},
    programs::{cgroup_sock_addr::CgroupSockAddrLinkId, CgroupAttachMode, CgroupSockAddr},
    Ebpf,
};
use sealwatch_abi::{names, AllowKey, AllowRules, PortRule, PORT_RULES_MAX};
use thiserror::Error;

use super::families::enforce::hooks;

#[derive(Debug, Error)]
pub enum EnforceError {
    #[error("in-kernel blocking is unavailable: {0}")]
    Unavailable(String),
    #[error("opening cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("attaching {program} to cgroup {path}: {reason}")]
    Attach {
        program: &'static str,
        path: String,
        /// The error with its causes (aya's top-level message omits the errno).
        reason: String,
    },
    #[error("updating {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// One prefix of an allowlist: an IPv6 prefix (IPv4 as IPv4-mapped) and its port rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowPrefix {
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    pub rules: Vec<PortRule>,
}

pub struct Enforcement {
    workloads: BpfHashMap<MapData, u64, u32>,
    allow: LpmTrie<MapData, AllowKey, AllowRules>,
    /// cgroup id → the hooks attached to it.
    links: HashMap<u64, Vec<(&'static str, CgroupSockAddrLinkId)>>,
    /// Keys present in the allowlist trie, per workload key.
    entries: HashMap<u32, Vec<AllowKeyOwned>>,
}

/// `Key<AllowKey>` is packed (no derives): kept as its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AllowKeyOwned {
    prefix_len: u32,
    key: AllowKey,
}

impl Enforcement {
    /// Loads the hooks (not attached yet) and takes their maps out of the object.
    pub fn load(ebpf: &mut Ebpf) -> Result<Enforcement, EnforceError> {
        for name in hooks() {
            let program: &mut CgroupSockAddr = ebpf
                .program_mut(name)
                .ok_or_else(|| EnforceError::Unavailable(format!("the object has no {name}")))?
                .try_into()
                .map_err(|e| EnforceError::Unavailable(format!("{name}: {e}")))?;
            program
                .load()
                .map_err(|e| EnforceError::Unavailable(format!("{name} does not load: {e}")))?;
        }
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| EnforceError::Unavailable(format!("the object has no map {name}")))
        };
        let workloads =
            BpfHashMap::try_from(take(ebpf, names::BLOCK_WORKLOAD)?).map_err(|source| {
                EnforceError::Map {
                    map: names::BLOCK_WORKLOAD,
                    source,
                }
            })?;
        let allow = LpmTrie::try_from(take(ebpf, names::BLOCK_ALLOW)?).map_err(|source| {
            EnforceError::Map {
                map: names::BLOCK_ALLOW,
                source,
            }
        })?;
        Ok(Enforcement {
            workloads,
            allow,
            links: HashMap::new(),
            entries: HashMap::new(),
        })
    }

    /// Cgroups currently enforced.
    pub fn enforced(&self) -> usize {
        self.links.len()
    }

    /// Enforces workload `key` on the cgroup at `dir` (attaching the hooks once).
    pub fn attach(
        &mut self,
        ebpf: &mut Ebpf,
        cgroup_id: u64,
        dir: &Path,
        key: u32,
    ) -> Result<(), EnforceError> {
        // The map entry first: from the moment a hook is attached it must know the workload.
        self.workloads
            .insert(cgroup_id, key, 0)
            .map_err(|source| EnforceError::Map {
                map: names::BLOCK_WORKLOAD,
                source,
            })?;
        if self.links.contains_key(&cgroup_id) {
            return Ok(());
        }
        let path = dir.display().to_string();
        let cgroup = File::open(dir).map_err(|source| EnforceError::Cgroup {
            path: path.clone(),
            source,
        })?;
        let mut attached = Vec::new();
        for name in hooks() {
            let result = ebpf
                .program_mut(name)
                .ok_or(aya::programs::ProgramError::NotLoaded)
                .and_then(<&mut CgroupSockAddr>::try_from)
                // Through a BPF link (Linux 5.7+) the kernel always attaches as ALLOW_MULTI and
                // refuses any flag, so the mode must be `Single` (no flag) here.
                .and_then(|p| p.attach(&cgroup, CgroupAttachMode::Single));
            match result {
                Ok(link) => attached.push((name, link)),
                Err(source) => {
                    detach_all(ebpf, attached);
                    let _ = self.workloads.remove(&cgroup_id);
                    return Err(EnforceError::Attach {
                        program: name,
                        path,
                        reason: with_causes(&source),
                    });
                }
            }
        }
        self.links.insert(cgroup_id, attached);
        Ok(())
    }

    /// Stops enforcing a cgroup (it may already be gone: then the kernel dropped the hooks).
    pub fn detach(&mut self, ebpf: &mut Ebpf, cgroup_id: u64) {
        let _ = self.workloads.remove(&cgroup_id);
        if let Some(links) = self.links.remove(&cgroup_id) {
            detach_all(ebpf, links);
        }
    }

    /// Replaces the allowlist of workload `key`.
    pub fn set_allowlist(
        &mut self,
        key: u32,
        prefixes: &[AllowPrefix],
    ) -> Result<(), EnforceError> {
        for old in self.entries.remove(&key).unwrap_or_default() {
            let _ = self.allow.remove(&Key::new(old.prefix_len, old.key));
        }
        for prefix in prefixes {
            self.insert(key, prefix)?;
        }
        Ok(())
    }

    /// Adds (or replaces) one prefix of workload `key`'s allowlist.
    pub fn insert(&mut self, key: u32, prefix: &AllowPrefix) -> Result<(), EnforceError> {
        let entry = AllowKeyOwned {
            prefix_len: 32 + u32::from(prefix.prefix_len),
            key: AllowKey {
                workload: key.to_be_bytes(),
                addr: prefix.prefix.octets(),
            },
        };
        let mut value = AllowRules::default();
        for (slot, rule) in value
            .rules
            .iter_mut()
            .zip(prefix.rules.iter().take(PORT_RULES_MAX))
        {
            *slot = *rule;
        }
        value.count = prefix.rules.len().min(PORT_RULES_MAX) as u32;
        self.allow
            .insert(&Key::new(entry.prefix_len, entry.key), value, 0)
            .map_err(|source| EnforceError::Map {
                map: names::BLOCK_ALLOW,
                source,
            })?;
        let known = self.entries.entry(key).or_default();
        if !known.contains(&entry) {
            known.push(entry);
        }
        Ok(())
    }

    /// Removes one prefix of workload `key`'s allowlist.
    pub fn remove(&mut self, key: u32, addr: Ipv6Addr, prefix_len: u8) {
        let entry = AllowKeyOwned {
            prefix_len: 32 + u32::from(prefix_len),
            key: AllowKey {
                workload: key.to_be_bytes(),
                addr: addr.octets(),
            },
        };
        let _ = self.allow.remove(&Key::new(entry.prefix_len, entry.key));
        if let Some(known) = self.entries.get_mut(&key) {
            known.retain(|k| *k != entry);
        }
    }

    /// Empties every allowlist (a new policy: they are rebuilt for the workloads in use).
    pub fn clear_allowlists(&mut self) {
        let keys: Vec<u32> = self.entries.keys().copied().collect();
        for key in keys {
            let _ = self.set_allowlist(key, &[]);
        }
    }
}

fn detach_all(ebpf: &mut Ebpf, links: Vec<(&'static str, CgroupSockAddrLinkId)>) {
    for (name, link) in links {
        let detached = ebpf
            .program_mut(name)
            .ok_or(aya::programs::ProgramError::NotLoaded)
            .and_then(<&mut CgroupSockAddr>::try_from)
            .and_then(|p| p.detach(link));
        if let Err(err) = detached {
            tracing::debug!(program = name, %err, "detach (the cgroup may be gone already)");
        }
    }
}

/// `error: cause: cause`, for errors whose Display leaves the cause out.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
