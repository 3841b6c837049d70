//! The deterministic heart: inputs in, JSON lines out. Live, inputs come from the kernel and the
//! resolvers; in replay, from a capture. Time comes only from event timestamps.
//!
//! The pipeline is plumbing around the one-way flow: an input updates `state` ([`NodeState`]),
//! an event waits (`hold`) until the facts its verdict needs are known, `detect` judges it,
//! `render` makes its line (`objects` reads state for it), and `emit` prints it, once per
//! violation, through the gate of `repeats`. One file per kind of event: `kernel` dispatches to
//! `exec`, `file`, `network`, and `logins` handles the sessions logins open.
mod budget;
mod emit;
mod exec;
mod file;
#[cfg(test)]
mod fragment_tests;
mod hold;
mod kernel;
#[cfg(test)]
mod line_cost;
#[cfg(test)]
mod lineage_tests;
mod logins;
#[cfg(test)]
mod loss_tests;
mod network;
#[cfg(test)]
mod network_tests;
mod objects;
#[cfg(test)]
mod origin_tests;
mod render;
#[cfg(test)]
mod repeat_tests;
mod repeats;
mod snapshot;
#[cfg(test)]
mod test_support;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

/// Login sessions are state; this path is kept for the modules that name it.
pub use crate::state::sessions;
use hold::HoldQueue;
// The pipeline's inputs and requests are a contract of their own (captures record them).
use crate::input::BudgetClass;
pub use crate::input::{DropCounts, Enforce, Input, Request};
use render::RenderCache;
use repeats::RepeatGate;

use crate::{
    clock::BootClock, detect::Detector, net::pending::Rejection, output::LineSink, policy::Policy,
    state::NodeState,
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
    /// Records the kernel dropped over containers' budgets, as the per-container `loss` lines so
    /// far add up to: (file, network).
    pub budget_drops: (u64, u64),
    /// Path-based file records given up because their syscall's result never came (or the
    /// table of records waiting for one was full).
    pub file_results_lost: u64,
    /// Changes of container files whose origin (image, container, volume) the look-up could not
    /// answer (layers unreachable from the daemon, the container's processes gone): not judged.
    pub path_lookups_unanswered: u64,
    /// Pid namespaces of containers not learned because the state knew its maximum of them.
    pub pid_namespaces_unlearned: u64,
    /// DNS answers learned from, and received answers that could not be parsed.
    pub dns_answers: u64,
    pub dns_unparsed: u64,
    /// DNS answers that taught nothing because they answer no query of their container, by why.
    pub dns_rejected: BTreeMap<Rejection, u64>,
    /// DNS queries waiting for their answer, and those pushed out by the bounds before it came.
    pub dns_pending: u64,
    pub dns_pending_evicted: u64,
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

/// Configuration, what the node is known to be, the rules, the events waiting for facts, the
/// requests for the driver, and counters.
pub struct Pipeline {
    config: PipelineConfig,
    state: NodeState,
    detector: Detector,
    held: HoldQueue,
    requests: Vec<Request>,
    stats: PipelineStats,
    /// Loss totals the `loss` lines so far add up to.
    last_drops: DropCounts,
    repeats: RepeatGate,
    /// Process and container objects reused across lines.
    render: RenderCache,
    /// Per cgroup and class, the kernel's budget-drop total the `loss` lines so far account for.
    budget_seen: HashMap<(u64, BudgetClass), u64>,
}

impl Pipeline {
    pub fn new(config: PipelineConfig, policy: Arc<Policy>) -> Self {
        Pipeline {
            config,
            state: NodeState::default(),
            detector: Detector::new(policy),
            held: HoldQueue::default(),
            requests: Vec::new(),
            stats: PipelineStats::default(),
            last_drops: DropCounts::default(),
            repeats: RepeatGate::default(),
            render: RenderCache::default(),
            budget_seen: HashMap::new(),
        }
    }

    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    pub fn process_count(&self) -> usize {
        self.state.procs.len()
    }

    /// Events waiting for container metadata.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    pub fn container_count(&self) -> usize {
        self.state.containers.container_count()
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
            Input::ProcSnapshot { procs } => self.state.procs.seed(&procs),
            Input::CgroupSnapshot { cgroups } => {
                for (id, path) in cgroups {
                    self.add_cgroup(id, &path);
                }
                self.release(sink, |_| false);
            }
            Input::CgroupPath { id, path } => {
                match path {
                    Some(path) => self.add_cgroup(id, &path),
                    None => self.state.containers.mark_host(id),
                }
                self.release(sink, |_| false);
            }
            Input::PathOrigins {
                container_id,
                origins,
                canonical,
            } => {
                self.state
                    .origins
                    .learn(container_id.clone(), origins, canonical);
                self.release(sink, |_| false);
                self.settle_origins(&container_id);
            }
            Input::Metadata { container_id, meta } => {
                self.stats.metadata_answered += 1;
                self.stats.metadata_failed += u64::from(meta.is_none());
                self.state.containers.set_metadata(&container_id, meta);
                self.update_enforcement();
                self.release(sink, |_| false);
            }
            Input::Tick { ktime_ns, drops } => self.tick(ktime_ns, drops, sink),
            Input::BudgetDrops { drops } => self.budget_drops(drops, sink),
        }
    }

    /// Emits everything still held (shutdown, end of replay).
    pub fn finish(&mut self, sink: &mut dyn LineSink) {
        self.release(sink, |_| true);
    }

    /// Time passes: state ages, held events whose wait is over go out, loss is reported.
    fn tick(&mut self, ktime_ns: u64, drops: DropCounts, sink: &mut dyn LineSink) {
        let state = &mut self.state;
        state.procs.sweep(ktime_ns);
        state.names.expire(ktime_ns);
        state.dns_queries.expire(ktime_ns);
        self.stats.dns_pending = state.dns_queries.len() as u64;
        self.stats.dns_pending_evicted = state.dns_queries.evicted();
        state.now_ns = state.now_ns.max(ktime_ns);
        self.render.forget(
            &state.procs.take_retired(),
            &state.containers.take_retired(),
        );
        self.stats.pid_namespaces_unlearned = self.state.pid_namespaces_unlearned;
        self.flush_repeats(ktime_ns, sink);
        let hold_ns = self.config.hold_ns;
        self.release(sink, |held| {
            ktime_ns.saturating_sub(held.ktime_ns) >= hold_ns
        });
        self.report_loss(ktime_ns, drops, sink);
    }
}
