//! The deterministic heart: inputs in, JSON lines out. Live, inputs come from the kernel and the
//! resolvers; in replay, from a capture. Time comes only from event timestamps.
mod events;
#[cfg(test)]
mod fragment_tests;
mod hold;

#[cfg(test)]
mod line_cost;
mod logins;
#[cfg(test)]
mod loss_tests;
mod network;
#[cfg(test)]
mod network_tests;
mod render;
#[cfg(test)]
mod repeat_tests;
pub mod sessions;
mod snapshot;
#[cfg(test)]
mod test_support;

use std::{collections::BTreeMap, sync::Arc};

use crate::container::image_path::PathOrigin;
use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use hold::HoldQueue;
// The pipeline's inputs and requests are a contract of their own (captures record them).
pub use crate::input::{DropCounts, Enforce, Input, Request};

use crate::{
    clock::BootClock,
    detect::Detector,
    event::KernelEvent,
    output::{EventLine, LineSink, LossJson, SCHEMA},
    policy::Policy,
    state::{CgroupLookup, ContainerRegistry, ProcessTable},
};

/// `cgroup_root.hierarchy_id` of the cgroup v2 (default) hierarchy: the kernel allocates it first,
/// as 0. v1 hierarchies (hybrid hosts) get 1 and up; their mkdirs are ignored.
pub const CGROUP_V2_HIERARCHY_ID: u32 = 0;

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub node: Arc<str>,
    pub clock: BootClock,
    /// How long an event may wait for its container's metadata before it goes out marked pending.
    pub hold_ns: u64,
    /// Mount namespace of the host's init: a task in a container's cgroup that still has it is
    /// the runtime setting the container up (runc init), not the workload.
    pub host_mnt_ns: u32,
    /// What the policy's built-in network sets stand for on this node (cluster CIDRs, the
    /// Kubernetes API address).
    pub net_env: crate::policy::NetEnvironment,
}

#[cfg(test)]
impl PipelineConfig {
    /// For unit tests: node `n1`, boot time at the Unix epoch, metadata held 1 s, no host mount
    /// namespace, no cluster network.
    pub(crate) fn for_tests() -> Self {
        PipelineConfig {
            node: "n1".into(),
            clock: BootClock { boot_to_unix_ns: 0 },
            hold_ns: 1_000_000_000,
            host_mnt_ns: 0,
            net_env: crate::policy::NetEnvironment::default(),
        }
    }
}

/// Counters for metrics and logs.
#[derive(Debug, Default, Clone)]
pub struct PipelineStats {
    pub events: u64,
    pub lines: u64,
    pub violations: u64,
    /// Identical file violations (same container, rule, operation and path within
    /// `REPEAT_WINDOW_NS`) counted but not printed again.
    pub repeats_suppressed: u64,
    /// Events released with metadata still pending (timeout or hold queue full).
    pub metadata_pending: u64,
    /// Kernel events by kind (`KernelEvent::name`).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Violation lines by rule, severity and pod namespace.
    pub violations_by: BTreeMap<ViolationKey, u64>,
    /// Container metadata lookups asked for, answered, and answered "unavailable".
    pub metadata_requested: u64,
    pub metadata_answered: u64,
    pub metadata_failed: u64,
    /// Loss totals as of the last tick: exactly what the `loss` lines so far add up to, so a
    /// metric copied from here always agrees with the stream.
    pub drops: DropCounts,
    /// DNS answers learned from, and received answers that could not be parsed.
    pub dns_answers: u64,
    pub dns_unparsed: u64,
}

/// What violations are counted by (bounded: rule and severity are enums; namespaces are capped
/// where they become metric labels).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViolationKey {
    pub rule: &'static str,
    pub severity: &'static str,
    /// None outside a Kubernetes pod (host process, plain container).
    pub pod_namespace: Option<String>,
}

pub struct Pipeline {
    config: PipelineConfig,
    procs: ProcessTable,
    containers: ContainerRegistry,
    detector: Detector,
    held: HoldQueue,
    /// cgroup ids whose path was already asked for.
    asked_paths: HashSet<u64>,
    requests: Vec<Request>,
    last_drops: DropCounts,
    stats: PipelineStats,
    /// Path-based file records waiting for their syscall's result, by thread id.
    pending_files: HashMap<u32, crate::event::FileRecord>,
    /// Where container paths come from (answers of the resolver), per container.
    origins: HashMap<String, HashMap<Vec<u8>, PathOrigin>>,
    /// (container, path) lookups already asked for.
    asked_origins: HashSet<(String, Vec<u8>)>,
    /// Last time each (container, rule, op, path) file violation was printed, and how many
    /// repeats were held back since.
    repeats: HashMap<RepeatKey, (u64, u64)>,
    sessions: sessions::SessionTracker,
    /// Latest tick time (boot-time ns): file events wait for the critical lane to catch up.
    now_ns: u64,
    /// Pid namespace → a cgroup of the container that owns it, learned from the container's own
    /// processes: attributes processes that joined its namespaces without its cgroup (nsenter).
    pidns_container: HashMap<u32, u64>,
    /// DNS names each container resolved, by address.
    names: crate::net::names::NameCache,
    /// Container cgroups whose egress the kernel enforces, and for which workload.
    enforced: HashMap<u64, crate::policy::WorkloadId>,
}

/// (container id, rule, operation, path) of a file violation.
type RepeatKey = (String, &'static str, &'static str, Vec<u8>);

impl Pipeline {
    pub fn new(config: PipelineConfig, policy: Arc<Policy>) -> Self {
        Pipeline {
            config,
            procs: ProcessTable::default(),
            containers: ContainerRegistry::default(),
            detector: Detector::new(policy),
            held: HoldQueue::default(),
            asked_paths: HashSet::new(),
            requests: Vec::new(),
            last_drops: DropCounts::default(),
            stats: PipelineStats::default(),
            pending_files: HashMap::new(),
            origins: HashMap::new(),
            asked_origins: HashSet::new(),
            repeats: HashMap::new(),
            sessions: sessions::SessionTracker::default(),
            now_ns: 0,
            pidns_container: HashMap::new(),
            names: crate::net::names::NameCache::default(),
            enforced: HashMap::new(),
        }
    }

    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    pub fn process_count(&self) -> usize {
        self.procs.len()
    }

    /// Events waiting for container metadata.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    pub fn container_count(&self) -> usize {
        self.containers.container_count()
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        self.detector.policy()
    }

    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.detector.set_policy(policy);
        self.update_enforcement();
    }

    /// Lookups to perform for the pipeline (live only; replay ignores them).
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.requests)
    }

    pub fn handle(&mut self, input: Input, sink: &mut dyn LineSink) {
        match input {
            Input::Kernel(event) => self.kernel(event, sink),
            Input::ProcSnapshot { procs } => self.procs.seed(&procs),
            Input::CgroupSnapshot { cgroups } => {
                for (id, path) in cgroups {
                    self.add_cgroup(id, &path);
                }
                self.release(sink, |_| false);
            }
            Input::CgroupPath { id, path } => {
                match path {
                    Some(path) => self.add_cgroup(id, &path),
                    None => self.containers.mark_host(id),
                }
                self.release(sink, |_| false);
            }
            Input::PathOrigins {
                container_id,
                origins,
            } => {
                let known = self.origins.entry(container_id).or_default();
                // Bounded: a container that touches very many paths starts a fresh cache.
                if known.len() > 16_384 {
                    known.clear();
                }
                known.extend(origins);
                self.release(sink, |_| false);
            }
            Input::Metadata { container_id, meta } => {
                self.stats.metadata_answered += 1;
                self.stats.metadata_failed += u64::from(meta.is_none());
                self.containers.set_metadata(&container_id, meta);
                self.update_enforcement();
                self.release(sink, |_| false);
            }
            Input::Tick { ktime_ns, drops } => {
                self.procs.sweep(ktime_ns);
                self.names.expire(ktime_ns);
                self.now_ns = self.now_ns.max(ktime_ns);
                // A held-back count stays until the next identical violation prints it; only
                // quiet entries age out (and a cap keeps the map bounded whatever happens).
                self.repeats.retain(|_, (last, held_back)| {
                    *held_back > 0 || ktime_ns.saturating_sub(*last) < events::REPEAT_WINDOW_NS
                });
                if self.repeats.len() > events::REPEAT_KEYS_MAX {
                    self.repeats.clear();
                }
                let hold_ns = self.config.hold_ns;
                self.release(sink, |held| {
                    ktime_ns.saturating_sub(held.ktime_ns) >= hold_ns
                });
                self.report_loss(ktime_ns, drops, sink);
            }
        }
    }

    /// Emits everything still held (shutdown, end of replay).
    pub fn finish(&mut self, sink: &mut dyn LineSink) {
        self.release(sink, |_| true);
    }

    fn kernel(&mut self, event: KernelEvent, sink: &mut dyn LineSink) {
        self.stats.events += 1;
        *self.stats.events_by_kind.entry(event.name()).or_default() += 1;
        match event {
            KernelEvent::Exec(exec) => self.exec(exec, sink),
            KernelEvent::Fork { task, child_pid } => {
                self.procs.fork(task.pid, child_pid, &task.comm);
                self.sessions.fork(task.pid, child_pid);
            }
            KernelEvent::Exit { task, .. } => {
                self.procs.exit(task.pid, task.ktime_ns);
                self.session_exit(task.pid, task.ktime_ns, sink);
            }
            KernelEvent::File(file) => self.file(file, sink),
            KernelEvent::SyscallResult { task, ret } => {
                if let Some(file) = self.pending_files.remove(&task.tid) {
                    if ret == 0 {
                        self.file_done(file, sink);
                    }
                }
            }
            KernelEvent::CgroupMkdir {
                id,
                hierarchy_id,
                path,
                ..
            } if hierarchy_id == CGROUP_V2_HIERARCHY_ID => {
                self.add_cgroup(id, &String::from_utf8_lossy(&path));
            }
            KernelEvent::CgroupRmdir {
                id, hierarchy_id, ..
            } if hierarchy_id == CGROUP_V2_HIERARCHY_ID => {
                // Whatever still waits for this cgroup goes out now, with what is known.
                self.release(sink, |held| held.cgroup_id == id);
                self.cgroup_gone(id);
                if let CgroupLookup::Container(entry) = self.containers.lookup(id) {
                    let container_id = entry.info.id.clone();
                    self.containers.remove_cgroup(id);
                    if matches!(self.containers.lookup(id), CgroupLookup::Unknown)
                        && !self.containers.has_container(&container_id)
                    {
                        self.origins.remove(&container_id);
                        self.names.forget_container(&container_id);
                        self.asked_origins.retain(|(c, _)| c != &container_id);
                    }
                } else {
                    self.containers.remove_cgroup(id);
                }
            }
            KernelEvent::CgroupMkdir { .. } | KernelEvent::CgroupRmdir { .. } => {}
            KernelEvent::Net(net) => self.net(net, sink),
            KernelEvent::Dns(dns) => self.dns(dns),
        }
    }

    fn add_cgroup(&mut self, id: u64, path: &str) {
        if let Some(container) = self.containers.add_cgroup(id, path) {
            self.stats.metadata_requested += 1;
            self.requests.push(Request::Metadata(container));
        }
    }

    fn report_loss(&mut self, ktime_ns: u64, drops: DropCounts, sink: &mut dyn LineSink) {
        let last = self.last_drops;
        let loss = LossJson {
            kernel_critical: drops.kernel_critical.saturating_sub(last.kernel_critical),
            kernel_bulk: drops.kernel_bulk.saturating_sub(last.kernel_bulk),
            decode: drops.decode.saturating_sub(last.decode),
            output: drops.output.saturating_sub(last.output),
        };
        self.last_drops = drops;
        self.stats.drops = drops;
        if loss.total() == 0 {
            return;
        }
        let line = EventLine {
            schema: SCHEMA,
            time: self.config.clock.wall(ktime_ns),
            node: self.config.node.clone(),
            kind: "loss",
            process: None,
            container: None,
            file: None,
            network: None,
            session: None,
            violation: None,
            loss: Some(loss),
            escaped: Vec::new(),
        };
        let dropped_before = sink.dropped();
        self.write(&line, sink);
        if sink.dropped() != dropped_before {
            // The loss line was itself dropped (stdout stalled): the next tick reports these
            // counts again, plus this line, rather than lose them with it.
            self.last_drops = last;
        }
    }

    fn write(&mut self, line: &EventLine, sink: &mut dyn LineSink) {
        self.stats.lines += 1;
        sink.emit(line);
    }
}
