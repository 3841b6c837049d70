//! The deterministic heart: inputs in, JSON lines out. Live, inputs come from the kernel and the
//! resolvers; in replay, from a capture. Time comes only from event timestamps.
mod hold;
pub mod input;
mod render;

use std::{collections::HashSet, sync::Arc};

use hold::{Held, HoldQueue};
pub use input::{DropCounts, Input, Request};

use crate::{
    clock::BootClock,
    detect::{ContainerFacts, Detector, ExecFacts},
    event::{ExecRecord, KernelEvent},
    output::{EventLine, LineSink, LossJson, ViolationJson, SCHEMA},
    policy::Policy,
    state::{CgroupLookup, ContainerRegistry, MetaState, ProcessTable},
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
}

/// Counters for metrics and logs.
#[derive(Debug, Default, Clone)]
pub struct PipelineStats {
    pub events: u64,
    pub lines: u64,
    pub violations: u64,
    /// Events released with metadata still pending (timeout or hold queue full).
    pub metadata_pending: u64,
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
}

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

    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.detector.set_policy(policy);
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
            Input::Metadata { container_id, meta } => {
                self.containers.set_metadata(&container_id, meta);
                self.release(sink, |_| false);
            }
            Input::Tick { ktime_ns, drops } => {
                self.procs.sweep(ktime_ns);
                let hold_ns = self.config.hold_ns;
                self.release(sink, |held| {
                    ktime_ns.saturating_sub(held.exec.task.ktime_ns) >= hold_ns
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
        match event {
            KernelEvent::Exec(exec) => self.exec(exec, sink),
            KernelEvent::Fork { task, child_pid } => {
                self.procs.fork(task.pid, child_pid, &task.comm);
            }
            KernelEvent::Exit { task, .. } => self.procs.exit(task.pid, task.ktime_ns),
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
                self.release(sink, |held| held.exec.task.cgroup_id == id);
                self.containers.remove_cgroup(id);
            }
            KernelEvent::CgroupMkdir { .. } | KernelEvent::CgroupRmdir { .. } => {}
        }
    }

    fn add_cgroup(&mut self, id: u64, path: &str) {
        if let Some(container) = self.containers.add_cgroup(id, path) {
            self.requests.push(Request::Metadata(container));
        }
    }

    fn exec(&mut self, exec: ExecRecord, sink: &mut dyn LineSink) {
        let parent_exe = self.procs.get(exec.ppid).map(|p| p.exe.clone());
        self.procs
            .exec(exec.task.pid, exec.ppid, &exec.exe, &exec.task.comm);
        let cgroup_id = exec.task.cgroup_id;
        let must_wait = match self.containers.lookup(cgroup_id) {
            CgroupLookup::Unknown => {
                if self.asked_paths.insert(cgroup_id) {
                    self.requests.push(Request::CgroupPath(cgroup_id));
                }
                true
            }
            CgroupLookup::Container(entry) => entry.meta == MetaState::Pending,
            CgroupLookup::Host => false,
        };
        let held = Held { exec, parent_exe };
        // Later events of a cgroup wait behind earlier ones, so a container's lines stay in order.
        if must_wait || self.held.is_holding(cgroup_id) {
            if let Some(oldest) = self.held.push(held) {
                self.emit_exec(oldest, sink);
            }
        } else {
            self.emit_exec(held, sink);
        }
    }

    /// Emits held events that are resolved, or that `force` says must go now.
    fn release(&mut self, sink: &mut dyn LineSink, mut force: impl FnMut(&Held) -> bool) {
        if self.held.is_empty() {
            return;
        }
        let containers = &self.containers;
        let ready = self.held.take(|held| {
            let resolved = match containers.lookup(held.exec.task.cgroup_id) {
                CgroupLookup::Unknown => false,
                CgroupLookup::Container(entry) => entry.meta != MetaState::Pending,
                CgroupLookup::Host => true,
            };
            resolved || force(held)
        });
        for held in ready {
            self.emit_exec(held, sink);
        }
    }

    fn emit_exec(&mut self, held: Held, sink: &mut dyn LineSink) {
        let Held { exec, parent_exe } = held;
        let mut texts = crate::output::TextFields::default();
        let process = render::process_json(&exec, parent_exe.as_deref(), &mut texts);
        let container = match self.containers.lookup(exec.task.cgroup_id) {
            CgroupLookup::Container(entry) => Some(render::container_json(entry)),
            _ => None,
        };
        if container.as_ref().is_some_and(|c| c.metadata == "pending") {
            self.stats.metadata_pending += 1;
        }
        let verdicts = self.detector.on_exec(&ExecFacts {
            uid: exec.task.uid,
            exe: &process.exe,
            args: &process.args,
            container: container.as_ref().map(|c| ContainerFacts {
                id: &c.id,
                name: c.name.as_deref(),
                image: c.image.as_deref(),
                pod_namespace: c.pod.as_ref().and_then(|p| p.namespace.as_deref()),
            }),
        });
        let line = EventLine {
            schema: SCHEMA,
            time: self.config.clock.rfc3339(exec.task.ktime_ns),
            node: self.config.node.clone(),
            kind: "exec",
            process: Some(process),
            container,
            violation: None,
            loss: None,
            escaped: texts.into_escaped(),
        };
        if verdicts.is_empty() {
            self.write(&line, sink);
            return;
        }
        // One line per violation, each a complete event: alerting pipelines filter on one field.
        for verdict in verdicts {
            self.stats.violations += 1;
            let mut violating = line.clone();
            violating.violation = Some(ViolationJson {
                rule: verdict.rule.as_str(),
                severity: verdict.severity.as_str(),
                message: verdict.message,
            });
            self.write(&violating, sink);
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
        if loss.total() == 0 {
            return;
        }
        let line = EventLine {
            schema: SCHEMA,
            time: self.config.clock.rfc3339(ktime_ns),
            node: self.config.node.clone(),
            kind: "loss",
            process: None,
            container: None,
            violation: None,
            loss: Some(loss),
            escaped: Vec::new(),
        };
        self.write(&line, sink);
    }

    fn write(&mut self, line: &EventLine, sink: &mut dyn LineSink) {
        self.stats.lines += 1;
        sink.emit(line);
    }
}
