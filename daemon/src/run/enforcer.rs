//! Carries out the pipeline's enforcement requests on the kernel: which container cgroups have
//! the blocking hooks, and what each blocking workload's allowlist holds.
use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use super::learned::{LearnedAddresses, WorkloadKey};

use crate::{
    pipeline::Enforce,
    policy::{KernelAllow, NetEnvironment, Policy, PortRule, WorkloadId},
    sensors::{enforce::AllowPrefix, Sensors},
};

pub struct Enforcer {
    policy: Arc<Policy>,
    env: NetEnvironment,
    cgroup_root: PathBuf,
    /// Workloads whose allowlist is in the kernel under the current policy.
    installed: HashSet<WorkloadId>,
    /// Addresses learned from DNS answers, by expiry.
    learned: LearnedAddresses,
    /// Enforced cgroups and their workload.
    attached: HashMap<u64, WorkloadId>,
}

impl Enforcer {
    pub fn new(policy: Arc<Policy>, env: NetEnvironment, cgroup_root: PathBuf) -> Self {
        Enforcer {
            policy,
            env,
            cgroup_root,
            installed: HashSet::new(),
            learned: LearnedAddresses::default(),
            attached: HashMap::new(),
        }
    }

    pub fn apply(&mut self, sensors: &mut Sensors, request: Enforce) {
        match request {
            Enforce::Cgroup {
                cgroup_id,
                workload: None,
                ..
            } => {
                if self.attached.remove(&cgroup_id).is_some() {
                    sensors.release_cgroup(cgroup_id);
                    tracing::info!(cgroup_id, "network blocking released");
                }
            }
            Enforce::Cgroup {
                cgroup_id,
                path,
                workload: Some(workload),
            } => {
                self.install(sensors, workload);
                let dir = self.cgroup_root.join(path.trim_start_matches('/'));
                match sensors.enforce_cgroup(cgroup_id, &dir, key(workload)) {
                    Ok(()) => {
                        self.attached.insert(cgroup_id, workload);
                        tracing::info!(
                            cgroup = %dir.display(),
                            workload = self.policy.network().workload_name(workload),
                            "network blocking enforced"
                        );
                    }
                    Err(err) => tracing::error!(
                        %err,
                        "network blocking NOT enforced for this container: its connections are \
                         still judged and reported"
                    ),
                }
            }
            Enforce::Address {
                workload,
                names,
                addr,
                ttl_secs,
            } => self.allow_learned(sensors, workload, &names, addr, ttl_secs),
        }
    }

    /// A new policy: every allowlist is rebuilt for the workloads still in use.
    pub fn policy_changed(&mut self, sensors: &mut Sensors, policy: Arc<Policy>) {
        self.policy = policy;
        sensors.clear_allowlists();
        self.installed.clear();
        self.learned.clear();
        let in_use: HashSet<WorkloadId> = self.attached.values().copied().collect();
        for workload in in_use {
            self.install(sensors, workload);
        }
    }

    /// Forgets learned addresses whose TTL ran out. An address the policy itself lists keeps
    /// the policy's entry.
    pub fn expire(&mut self, sensors: &mut Sensors, now: Instant) {
        for (workload, addr) in self.learned.take_expired(now) {
            let listed = self
                .policy
                .network()
                .kernel_allowlist(WorkloadId(workload), &self.env)
                .into_iter()
                .find(|entry| entry.prefix == addr && entry.prefix_len == 128);
            match listed {
                Some(entry) => {
                    let prefix = allow_prefix(&entry);
                    if let Err(err) = sensors.set_allowlist(workload, &[prefix], true) {
                        tracing::error!(%err, "restoring a policy address in the kernel failed");
                    }
                }
                None => {
                    sensors.remove_allowed(workload, addr, 128);
                    tracing::debug!(%addr, "learned address expired: removed from the kernel");
                }
            }
        }
    }

    fn install(&mut self, sensors: &mut Sensors, workload: WorkloadId) {
        if !self.installed.insert(workload) {
            return;
        }
        let prefixes: Vec<AllowPrefix> = self
            .policy
            .network()
            .kernel_allowlist(workload, &self.env)
            .iter()
            .map(allow_prefix)
            .collect();
        if let Err(err) = sensors.set_allowlist(key(workload), &prefixes, false) {
            tracing::error!(%err, "loading a network allowlist into the kernel failed");
        }
    }

    /// Adds an address a DNS answer gave for an allowed name, with the ports the name's entries
    /// allow plus those of the prefixes around it (the trie matches the longest prefix only).
    fn allow_learned(
        &mut self,
        sensors: &mut Sensors,
        workload: WorkloadId,
        names: &[String],
        addr: IpAddr,
        ttl_secs: u32,
    ) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let Some(entry) = self
            .policy
            .network()
            .kernel_allow_for_learned(workload, &self.env, addr, &names)
        else {
            return;
        };
        let mapped = entry.prefix;
        let prefix = allow_prefix(&entry);
        match sensors.set_allowlist(key(workload), std::slice::from_ref(&prefix), true) {
            Ok(()) => {
                self.learned
                    .learned(key(workload), mapped, ttl_secs, Instant::now());
                tracing::debug!(?names, %addr, "learned address allowed in the kernel");
            }
            Err(err) => tracing::error!(%err, ?names, %addr, "allowing a learned address failed"),
        }
    }
}

fn key(workload: WorkloadId) -> WorkloadKey {
    workload.0
}

fn allow_prefix(entry: &KernelAllow) -> AllowPrefix {
    AllowPrefix {
        prefix: entry.prefix,
        prefix_len: entry.prefix_len,
        rules: entry.ports.iter().map(|r| kernel_rule(*r)).collect(),
    }
}

fn kernel_rule(rule: PortRule) -> sealwatch_abi::PortRule {
    sealwatch_abi::PortRule {
        lo: rule.lo,
        hi: rule.hi,
        protocols: u32::from(rule.tcp) * sealwatch_abi::PORT_RULE_TCP
            + u32::from(rule.udp) * sealwatch_abi::PORT_RULE_UDP,
    }
}
