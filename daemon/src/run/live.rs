//! The live kernel as a [`Source`] of the one driver: the readers' channel, the 100 ms tick,
//! policy reloads and signals become steps; the pipeline's requests go to the enforcer (on this
//! thread: it owns the programs) and the resolver (blocking pool); the recorder observes every
//! input; after each step the metrics, the capture's rotation and stdout's batch follow.
//!
//! Stopping (a signal, or the end of a learning run) drains: the readers do a last drain and
//! stop, in-flight lookups get [`SHUTDOWN_GRACE`] to come back, a last tick reports the losses,
//! and the source ends.
use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    signal::unix::Signal,
    sync::{mpsc, watch},
    task::JoinHandle,
    time::{Instant, Interval, Sleep},
};

use super::{enforcer::Enforcer, reload::PolicyReloader, resolver::Resolver};
use crate::{
    capture::Recorder,
    clock::now_boottime_ns,
    driver::{Source, Step},
    input::{DropCounts, Input, Request},
    metrics::{Metrics, PipelineView},
    output::{Fanout, LineSink},
    pipeline::Pipeline,
    policy::{NetEnvironment, Policy, RuleId},
    sensors::Sensors,
};

/// How often time advances in the pipeline (held events, loss reports, table sweeps).
pub const TICK: Duration = Duration::from_millis(100);
/// How long shutdown waits for in-flight lookups and the final drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Where the live loop is in its life.
enum Phase {
    /// The start-up snapshots go in first.
    Start(Vec<Input>),
    Running,
    /// Stopping: what the readers and resolvers still send, until the deadline.
    Draining {
        deadline: Instant,
    },
    /// The last tick went in.
    Done,
}

/// SIGTERM, SIGINT and SIGHUP, installed before the programs' events flow.
pub struct Signals {
    pub term: Signal,
    pub int: Signal,
    pub hup: Signal,
}

/// What the live loop is made of; built by `run` once the programs are attached.
pub struct LiveParts<'t> {
    pub rx: mpsc::Receiver<Vec<Input>>,
    pub sensors: Sensors,
    pub enforcer: Enforcer,
    /// Dropped when stopping: lookups answered after that could no longer be used.
    pub resolver: Option<Resolver>,
    pub recorder: Option<Recorder>,
    pub writer: Fanout<'t>,
    pub metrics: Arc<Metrics>,
    pub decode_errors: Arc<AtomicU64>,
    pub reloader: PolicyReloader,
    pub net_env: NetEnvironment,
    pub signals: Signals,
    pub shutdown_tx: watch::Sender<bool>,
    pub readers: Vec<JoinHandle<()>>,
    /// `sealwatch learn --duration`: stop after this long once ready.
    pub stop_after: Option<Duration>,
}

/// The live loop: its parts, and where it is in its life.
pub struct LiveSource<'t> {
    pub parts: LiveParts<'t>,
    phase: Phase,
    tick: Interval,
    policy_poll: Interval,
    stop_timer: Pin<Box<Sleep>>,
    /// A tick went in during this step: its follow-ups run after it.
    ticked: bool,
    announced: bool,
    /// Budget-drop totals at the last tick, and whether they had moved then.
    budget_totals: [u64; sealwatch_abi::budget::COUNT as usize],
    budget_moved: bool,
}

impl<'t> LiveSource<'t> {
    /// `snapshot`: processes and cgroups that existed when the programs were attached, which the
    /// pipeline sees first.
    pub fn new(parts: LiveParts<'t>, snapshot: Vec<Input>) -> Self {
        let interval = |period| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        };
        LiveSource {
            parts,
            phase: Phase::Start(snapshot),
            tick: interval(TICK),
            policy_poll: interval(super::reload::POLL),
            // Armed when the daemon is ready (learning time starts then).
            stop_timer: Box::pin(tokio::time::sleep(Duration::from_secs(u64::MAX >> 2))),
            ticked: false,
            announced: false,
            budget_totals: [0; sealwatch_abi::budget::COUNT as usize],
            budget_moved: false,
        }
    }

    /// Waits for the next thing that happens while running.
    async fn running(&mut self) -> Step {
        tokio::select! {
            () = &mut self.stop_timer, if self.parts.stop_after.is_some() => {
                self.stop("learning time is up").await
            }
            _ = self.parts.signals.term.recv() => self.stop("SIGTERM").await,
            _ = self.parts.signals.int.recv() => self.stop("SIGINT").await,
            _ = self.parts.signals.hup.recv() => self.reload("SIGHUP"),
            _ = self.policy_poll.tick() => {
                if self.parts.reloader.changed() {
                    self.reload("policy file changed")
                } else {
                    Step::Idle
                }
            }
            _ = self.tick.tick() => {
                self.parts.enforcer.expire(&mut self.parts.sensors, std::time::Instant::now());
                self.ticked = true;
                Step::Inputs(self.tick_inputs())
            }
            Some(batch) = self.parts.rx.recv() => Step::Inputs(batch),
        }
    }

    fn reload(&mut self, trigger: &str) -> Step {
        match self
            .parts
            .reloader
            .reload(trigger, &self.parts.net_env, &self.parts.metrics)
        {
            Some(policy) => Step::Policy(Arc::new(policy)),
            None => Step::Idle,
        }
    }

    /// Readers do a last drain and stop; lookups in flight get the grace period to answer.
    async fn stop(&mut self, why: &str) -> Step {
        tracing::info!("{why}: stopping");
        self.parts.metrics.set_ready(false);
        let _ = self.parts.shutdown_tx.send(true);
        for reader in self.parts.readers.drain(..) {
            let _ = reader.await;
        }
        self.parts.resolver = None;
        self.phase = Phase::Draining {
            deadline: Instant::now() + SHUTDOWN_GRACE,
        };
        Step::Idle
    }

    /// Time now and the loss counters as they stand, after the per-container budget drops when
    /// they moved since the last tick (and once more after they stopped, for the last ones).
    fn tick_inputs(&mut self) -> Vec<Input> {
        let mut inputs = Vec::with_capacity(2);
        let budget_totals = self.parts.sensors.budget_drop_totals();
        let moved = budget_totals != self.budget_totals;
        if moved || self.budget_moved {
            inputs.push(Input::BudgetDrops {
                drops: self.parts.sensors.budget_drops(),
            });
        }
        self.budget_totals = budget_totals;
        self.budget_moved = moved;
        inputs.push(self.tick_input());
        inputs
    }

    /// Time now, and the loss counters as they stand.
    fn tick_input(&self) -> Input {
        let [kernel_critical, kernel_bulk] = self.parts.sensors.kernel_drops();
        let output = self.parts.writer.drops();
        Input::Tick {
            ktime_ns: now_boottime_ns(),
            drops: DropCounts {
                kernel_critical,
                kernel_bulk,
                decode: self.parts.decode_errors.load(Ordering::Relaxed),
                output: output.stdout,
                output_file: output.file,
                output_otlp: output.otlp,
                capture: self.parts.recorder.as_ref().map_or(0, Recorder::lost),
            },
        }
    }

    /// Once, after the start-up snapshots went in: the daemon is ready.
    fn announce(&mut self, pipeline: &Pipeline) {
        self.announced = true;
        tracing::info!(
            policy = pipeline.policy().source(),
            processes = pipeline.process_count(),
            containers = pipeline.container_count(),
            "sealwatch ready: all programs attached, readers running"
        );
        if pipeline.policy().network().is_observing() {
            tracing::info!(
                "the policy has no `network:` section: connections and listeners are observed \
                 (events, `sealwatch learn`) and only access to the cloud metadata service is \
                 judged; the network rules wait for declared workloads"
            );
        }
        publish(&self.parts.metrics, pipeline);
        self.parts
            .metrics
            .publish_sinks(&self.parts.writer.sink_status());
        self.parts.metrics.set_ready(true);
        crate::memory::release_free_heap();
        if let Some(duration) = self.parts.stop_after {
            tracing::info!(duration = %humantime::format_duration(duration), "learning network behaviour");
            self.stop_timer.as_mut().reset(Instant::now() + duration);
        }
    }
}

impl Source for LiveSource<'_> {
    type Error = std::convert::Infallible;

    async fn next(&mut self, _pipeline: Option<&Pipeline>) -> Result<Step, Self::Error> {
        Ok(match std::mem::replace(&mut self.phase, Phase::Running) {
            Phase::Start(snapshot) => Step::Inputs(snapshot),
            Phase::Running => self.running().await,
            Phase::Draining { deadline } => {
                match tokio::time::timeout_at(deadline, self.parts.rx.recv()).await {
                    Ok(Some(batch)) => {
                        self.phase = Phase::Draining { deadline };
                        Step::Inputs(batch)
                    }
                    // Every sender is gone, or the grace period is over: a last tick.
                    _ => {
                        self.phase = Phase::Done;
                        Step::Inputs(self.tick_inputs())
                    }
                }
            }
            Phase::Done => {
                self.phase = Phase::Done;
                Step::End
            }
        })
    }

    fn sink(&mut self) -> &mut dyn LineSink {
        &mut self.parts.writer
    }

    fn observe(&mut self, input: &Input) {
        if let Some(recorder) = &mut self.parts.recorder {
            recorder.record(input);
        }
    }

    fn violations(&mut self, count: u64) {
        if let Some(recorder) = &mut self.parts.recorder {
            recorder.violations(count);
        }
    }

    /// Enforcement to the kernel now, lookups to the resolver's blocking pool; nothing once
    /// stopping (the answers could no longer be used).
    fn route(&mut self, requests: Vec<Request>) {
        let Some(resolver) = &self.parts.resolver else {
            return;
        };
        let mut lookups = Vec::new();
        for request in requests {
            match request {
                Request::Enforce(enforce) => {
                    self.parts.enforcer.apply(&mut self.parts.sensors, enforce)
                }
                Request::ContainerCgroup { cgroup_id, present } => {
                    if let Err(err) = self.parts.sensors.mark_container_cgroup(cgroup_id, present) {
                        tracing::warn!(
                            cgroup_id,
                            %err,
                            "could not mark a container cgroup in the kernel: its processes are \
                             judged while their root is the container's, not after a chroot"
                        );
                    }
                }
                lookup => lookups.push(lookup),
            }
        }
        resolver.dispatch(lookups);
    }

    /// What a new policy changes outside the pipeline: the enforcer, the kernel's host-write
    /// reporting and the capture's record of the policy in force.
    fn policy_changed(&mut self, policy: &Arc<Policy>) {
        self.parts
            .enforcer
            .policy_changed(&mut self.parts.sensors, policy.clone());
        let host_watch = policy.rule(RuleId::HostFileModified).enabled;
        if let Err(err) = self.parts.sensors.set_host_watch(host_watch) {
            tracing::error!(%err, "could not apply host-file-modified to the file sensor");
        }
        if let Some(recorder) = &mut self.parts.recorder {
            recorder.policy_changed(policy);
        }
    }

    fn after_step(&mut self, pipeline: &Pipeline) {
        if !self.announced {
            self.announce(pipeline);
        }
        if std::mem::take(&mut self.ticked) {
            self.parts.writer.tick();
            if let Some(recorder) = self.parts.recorder.as_mut().filter(|r| r.wants_rotation()) {
                recorder.rotate(pipeline.snapshot());
            }
            publish(&self.parts.metrics, pipeline);
            self.parts
                .metrics
                .publish_sinks(&self.parts.writer.sink_status());
        }
        self.parts.writer.end_batch();
    }
}

/// Copies the pipeline's counters into the metrics (the pipeline never sees the metrics).
fn publish(metrics: &Metrics, pipeline: &Pipeline) {
    metrics.publish(&PipelineView {
        stats: pipeline.stats(),
        processes: pipeline.process_count(),
        containers: pipeline.container_count(),
        held: pipeline.held_count(),
    });
}
