//! Every metric sealwatch exports, registered once, and how each gets its value.
//!
//! The pipeline stays deterministic and never touches this module: it keeps plain counters
//! (`PipelineStats`) and the run loop calls [`Metrics::publish`] on every tick, which copies the
//! totals into the registry. Loss metrics come from `PipelineStats::drops`, the very totals the
//! `loss` lines were computed from, so the metric equals the sum of the `loss` lines at all times.
//!
//! Label sets are bounded: rule and severity are enums, lanes and sensors are fixed lists, event
//! kinds are the decoder's kinds, and pod namespaces are capped ([`super::namespaces`]). No pids,
//! paths, container ids or image names ever become labels.

use std::{
    collections::HashMap,
    sync::{atomic::Ordering, Mutex, PoisonError},
};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, info::Info},
    registry::Registry,
};

use super::namespaces::{NamespaceCap, NAMESPACE_CAP};
use crate::{net::pending::Rejection, pipeline::PipelineStats};

/// Kernel event kinds (`KernelEvent::name`) whose series exist from the start.
const EVENT_KINDS: &[&str] = &["exec", "fork", "exit", "cgroup_mkdir", "cgroup_rmdir"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViolationLabels {
    rule: &'static str,
    severity: &'static str,
    /// Not `namespace`: Prometheus' Kubernetes discovery already sets that to sealwatch's own.
    pod_namespace: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SensorLabels {
    sensor: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_commit: &'static str,
}

/// What the run loop knows besides the pipeline's counters.
#[derive(Debug, Clone, Copy)]
pub struct PipelineView<'a> {
    pub stats: &'a PipelineStats,
    pub processes: usize,
    pub containers: usize,
    pub held: usize,
}

/// The registry and its families. Shared (`Arc`) between the run loop, which writes, and the
/// HTTP server, which encodes; every value is an atomic, so neither waits for the other.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    events: Family<KindLabels, Counter>,
    violations: Family<ViolationLabels, Counter>,
    repeats_suppressed: Counter,
    file_results_lost: Counter,
    path_lookups_unanswered: Counter,
    pid_namespaces_unlearned: Counter,
    kernel_drops: Family<LaneLabels, Counter>,
    budget_drops: Family<ClassLabels, Counter>,
    decode_drops: Counter,
    output_drops: Family<SinkLabels, Counter>,
    sink_exported: Family<SinkLabels, Counter>,
    sink_queue_bytes: Family<SinkLabels, Gauge>,
    capture_lost: Counter,
    output_lines: Counter,
    containers: Gauge,
    processes: Gauge,
    held_events: Gauge,
    metadata_pending: Gauge,
    metadata_failed: Counter,
    metadata_pending_events: Counter,
    attach_failures: Family<SensorLabels, Counter>,
    policy_reloads: Family<ResultLabels, Counter>,
    policy_last_reload_ok: Gauge,
    dns_rejected: Family<ReasonLabels, Counter>,
    dns_pending: Gauge,
    dns_pending_evicted: Counter,
    ready: Gauge,
    /// Namespace admission, and the violation total last published (skips idle ticks).
    violation_state: Mutex<(NamespaceCap, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family with its help text. One long table on purpose: each metric's
    /// name, help and handle sit together, in the order `/metrics` prints them.
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("sealwatch"),
            events: Family::default(),
            violations: Family::default(),
            repeats_suppressed: Counter::default(),
            file_results_lost: Counter::default(),
            path_lookups_unanswered: Counter::default(),
            pid_namespaces_unlearned: Counter::default(),
            kernel_drops: Family::default(),
            budget_drops: Family::default(),
            decode_drops: Counter::default(),
            output_drops: Family::default(),
            sink_exported: Family::default(),
            sink_queue_bytes: Family::default(),
            capture_lost: Counter::default(),
            output_lines: Counter::default(),
            containers: Gauge::default(),
            processes: Gauge::default(),
            held_events: Gauge::default(),
            metadata_pending: Gauge::default(),
            metadata_failed: Counter::default(),
            metadata_pending_events: Counter::default(),
            attach_failures: Family::default(),
            policy_reloads: Family::default(),
            policy_last_reload_ok: Gauge::default(),
            dns_rejected: Family::default(),
            dns_pending: Gauge::default(),
            dns_pending_evicted: Counter::default(),
            ready: Gauge::default(),
            violation_state: Mutex::new((NamespaceCap::new(NAMESPACE_CAP), u64::MAX)),
        };
        // Help texts get a trailing "." from the library.
        let r = &mut m.registry;
        r.register(
            "events",
            "Kernel events processed, by kind",
            m.events.clone(),
        );
        r.register(
            "violations",
            "Policy violations reported, by rule, severity and pod namespace (first 64 namespaces, then \"other\"; empty outside pods)",
            m.violations.clone(),
        );
        r.register(
            "violation_repeats_suppressed",
            "Identical violations (same container, rule, operation and path within 10 s) counted into a later line's violation.repeats instead of printed again",
            m.repeats_suppressed.clone(),
        );
        r.register(
            "file_results_lost",
            "Path-based file records (unlink, rename, chmod by path) given up because their syscall's result never came, or too many were waiting",
            m.file_results_lost.clone(),
        );
        r.register(
            "path_lookups_unanswered",
            "Changes of container files by path (rm, mv, chmod) whose origin could not be looked up (the container's layers unreachable from the daemon, its processes gone): not judged, logged with the layer tried",
            m.path_lookups_unanswered.clone(),
        );
        r.register(
            "pid_namespaces_unlearned",
            "Pid namespaces made in containers that were not learned because 65536 were known (processes entering them are then attributed by cgroup alone)",
            m.pid_namespaces_unlearned.clone(),
        );
        r.register(
            "kernel_drops",
            "Events dropped in the kernel because a ring buffer was full, by lane",
            m.kernel_drops.clone(),
        );
        r.register(
            "kernel_budget_drops",
            "Records the kernel dropped because their container was over its budget (--cgroup-budget-file, --cgroup-budget-network), by class; each container's share is on its loss lines",
            m.budget_drops.clone(),
        );
        r.register(
            "decode_drops",
            "Kernel records dropped in userspace because they could not be decoded",
            m.decode_drops.clone(),
        );
        r.register(
            "output_drops",
            "JSON lines dropped, by output (sink): stdout because its reader was too slow; file and otlp because their queue was full or the destination refused them",
            m.output_drops.clone(),
        );
        r.register(
            "sink_exported",
            "JSON lines a sink delivered: written to its file, accepted by the collector",
            m.sink_exported.clone(),
        );
        r.register(
            "sink_queue_bytes",
            "Bytes of JSON lines waiting in a sink's queue or being delivered (bounded by --output-queue-bytes)",
            m.sink_queue_bytes.clone(),
        );
        r.register(
            "capture_inputs_lost",
            "Inputs the capture (--capture) could not record: its writer's queue was full, or its disk refused writes (it resumes in a new file when it can)",
            m.capture_lost.clone(),
        );
        r.register(
            "output_lines",
            "JSON lines handed to the output",
            m.output_lines.clone(),
        );
        r.register(
            "containers",
            "Containers currently tracked",
            m.containers.clone(),
        );
        r.register(
            "processes",
            "Entries in the process table",
            m.processes.clone(),
        );
        r.register(
            "held_events",
            "Events waiting for their container's metadata",
            m.held_events.clone(),
        );
        r.register(
            "metadata_lookups_pending",
            "Container metadata lookups asked for and not answered yet",
            m.metadata_pending.clone(),
        );
        r.register(
            "metadata_lookups_failed",
            "Container metadata lookups that found no readable runtime state",
            m.metadata_failed.clone(),
        );
        r.register(
            "metadata_pending_events",
            "Events printed before their container's metadata arrived (metadata: pending)",
            m.metadata_pending_events.clone(),
        );
        r.register(
            "program_attach_failures",
            "Kernel programs that failed to load or attach, by sensor",
            m.attach_failures.clone(),
        );
        r.register(
            "policy_reloads",
            "Policy reloads (SIGHUP or file change), by result",
            m.policy_reloads.clone(),
        );
        r.register(
            "policy_last_reload_successful",
            "1 when the last policy reload succeeded (or none was tried), 0 when it failed and the previous policy is still in force",
            m.policy_last_reload_ok.clone(),
        );
        r.register(
            "dns_answers_rejected",
            "DNS answers that taught no name because they answer no query of their container, by reason (unsolicited: no query waits with that id on that port; loopback: from the container's own network namespace; mismatch: another server, port or question)",
            m.dns_rejected.clone(),
        );
        r.register(
            "dns_queries_pending",
            "DNS queries of containers waiting for their answer",
            m.dns_pending.clone(),
        );
        r.register(
            "dns_queries_evicted",
            "DNS queries pushed out of the pending table by its bounds (per container, then overall) before their answer came",
            m.dns_pending_evicted.clone(),
        );
        r.register(
            "ready",
            "1 once every kernel program is attached and every reader runs (what /readyz answers)",
            m.ready.clone(),
        );
        r.register(
            "build",
            "Version and git commit of this binary",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                git_commit: option_env!("SEALWATCH_GIT_COMMIT").unwrap_or("unknown"),
            }),
        );
        // Series that alerts use with increase() must exist before their first increment, or the
        // first drop or failure would be invisible.
        for kind in EVENT_KINDS {
            drop(m.events.get_or_create(&KindLabels { kind }));
        }
        for lane in ["critical", "bulk"] {
            drop(m.kernel_drops.get_or_create(&LaneLabels { lane }));
        }
        drop(m.output_drops.get_or_create(&SinkLabels { sink: "stdout" }));
        for class in ["file", "network"] {
            drop(m.budget_drops.get_or_create(&ClassLabels { class }));
        }
        // Every sensor of the registry has its attach-failure series from the start, at 0.
        for family in crate::sensors::families::FAMILIES {
            let sensor = family.sensor;
            drop(m.attach_failures.get_or_create(&SensorLabels { sensor }));
        }
        for result in ["success", "error"] {
            drop(m.policy_reloads.get_or_create(&ResultLabels { result }));
        }
        for rejection in Rejection::ALL {
            let reason = rejection.as_str();
            drop(m.dns_rejected.get_or_create(&ReasonLabels { reason }));
        }
        m.policy_last_reload_ok.set(1);
        m
    }

    /// Copies the pipeline's counters into the registry (every tick; cheap when nothing changed).
    pub fn publish(&self, view: &PipelineView<'_>) {
        let stats = view.stats;
        for (kind, total) in &stats.events_by_kind {
            store(&self.events.get_or_create(&KindLabels { kind }), *total);
        }
        self.publish_violations(stats);
        store(&self.repeats_suppressed, stats.repeats_suppressed);
        store(&self.file_results_lost, stats.file_results_lost);
        store(&self.path_lookups_unanswered, stats.path_lookups_unanswered);
        store(
            &self.pid_namespaces_unlearned,
            stats.pid_namespaces_unlearned,
        );
        let drops = stats.drops;
        let lane = |lane| self.kernel_drops.get_or_create(&LaneLabels { lane });
        store(&lane("critical"), drops.kernel_critical);
        store(&lane("bulk"), drops.kernel_bulk);
        let class = |class| self.budget_drops.get_or_create(&ClassLabels { class });
        store(&class("file"), stats.budget_drops.0);
        store(&class("network"), stats.budget_drops.1);
        store(&self.decode_drops, drops.decode);
        let sink = |sink| self.output_drops.get_or_create(&SinkLabels { sink });
        store(&sink("stdout"), drops.output);
        // A sink's series exists once it runs (`publish_sinks`) or drops.
        if drops.output_file > 0 {
            store(&sink("file"), drops.output_file);
        }
        if drops.output_otlp > 0 {
            store(&sink("otlp"), drops.output_otlp);
        }
        store(&self.capture_lost, drops.capture);
        store(&self.output_lines, stats.lines);
        store(&self.metadata_failed, stats.metadata_failed);
        store(&self.metadata_pending_events, stats.metadata_pending);
        set(
            &self.metadata_pending,
            stats
                .metadata_requested
                .saturating_sub(stats.metadata_answered),
        );
        for (rejection, total) in &stats.dns_rejected {
            let reason = rejection.as_str();
            store(
                &self.dns_rejected.get_or_create(&ReasonLabels { reason }),
                *total,
            );
        }
        set(&self.dns_pending, stats.dns_pending);
        store(&self.dns_pending_evicted, stats.dns_pending_evicted);
        set(&self.containers, view.containers as u64);
        set(&self.processes, view.processes as u64);
        set(&self.held_events, view.held as u64);
    }

    fn publish_violations(&self, stats: &PipelineStats) {
        let mut state = self
            .violation_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (namespaces, published) = &mut *state;
        if *published == stats.violations {
            return;
        }
        // Namespaces past the cap share "other", so totals are summed before they are stored.
        let mut totals: HashMap<ViolationLabels, u64> = HashMap::new();
        for (key, count) in &stats.violations_by {
            let labels = ViolationLabels {
                rule: key.rule,
                severity: key.severity,
                pod_namespace: namespaces.label(key.pod_namespace.as_deref()),
            };
            *totals.entry(labels).or_default() += count;
        }
        for (labels, total) in totals {
            store(&self.violations.get_or_create(&labels), total);
        }
        *published = stats.violations;
    }

    /// What the sinks delivered and hold (their drops come through `publish`, from the very
    /// totals the `loss` lines report).
    pub fn publish_sinks(&self, sinks: &[crate::output::sink::SinkStatus]) {
        for status in sinks {
            let labels = SinkLabels {
                sink: status.kind.as_str(),
            };
            drop(self.output_drops.get_or_create(&labels));
            store(&self.sink_exported.get_or_create(&labels), status.exported);
            set(
                &self.sink_queue_bytes.get_or_create(&labels),
                status.queued_bytes,
            );
        }
    }

    /// A kernel program of `sensor` failed to load or attach.
    pub fn attach_failed(&self, sensor: &'static str) {
        self.attach_failures
            .get_or_create(&SensorLabels { sensor })
            .inc();
    }

    /// A policy reload ended; `ok` false means the previous policy stays in force.
    pub fn policy_reloaded(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.policy_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
        self.policy_last_reload_ok.set(i64::from(ok));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.get() == 1
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(8 * 1024);
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Sets a counter to a total kept elsewhere (the pipeline's). Totals only grow, so the counter
/// stays monotonic.
fn store(counter: &Counter, total: u64) {
    counter.inner().store(total, Ordering::Relaxed);
}

fn set(gauge: &Gauge, value: u64) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}
