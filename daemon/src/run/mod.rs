//! `sealwatch run`: the live daemon. Wires sensors → readers → pipeline → stdout, answers the
//! pipeline's lookups off the event path, and shuts down cleanly on SIGINT/SIGTERM.
mod enforcer;
mod reload;
mod resolver;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context as _;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
};

use crate::{
    capture::{self, Recorder},
    cli::RunArgs,
    clock::{now_boottime_ns, BootClock},
    container::{cgroup2_mount, scan_cgroups, MetadataResolver, RuntimeRoots},
    metrics::{self, Metrics, PipelineView},
    output::{LineSink, StdoutWriter},
    pipeline::{DropCounts, Input, Pipeline, PipelineConfig},
    policy::Policy,
    reader,
    sensors::{LoadOptions, SensorError, Sensors},
    state::seed::scan_proc,
    tail::{self, tee::TeeSink, TailError},
};

/// How often time advances in the pipeline (held events, loss reports, table sweeps).
const TICK: Duration = Duration::from_millis(100);
/// How long shutdown waits for in-flight lookups and the final drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long shutdown waits for a reader of stdout that takes nothing before giving up its lines.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

pub fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    Ok(match path {
        Some(path) => Policy::load(path)?,
        None => Policy::embedded_default(),
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    run_until(args, None).map(|_| ())
}

/// `sealwatch learn --duration`: the daemon as `run`, stopped after `duration` (or a signal),
/// with every network line fed to a learner, which is returned.
pub fn run_for_learning(
    args: RunArgs,
    duration: Duration,
) -> anyhow::Result<crate::learn::Learner> {
    run_until(args, Some(duration))?.context("the learner was lost (a bug: please report it)")
}

fn run_until(
    args: RunArgs,
    learn_for: Option<Duration>,
) -> anyhow::Result<Option<crate::learn::Learner>> {
    crate::memory::single_malloc_arena();
    let policy = Arc::new(load_policy(args.policy.as_deref())?);
    // One thread for readers, pipeline and servers: a record reaches the pipeline without waking
    // another thread (cross-thread wake-ups were most of the daemon's CPU per event). Blocking
    // lookups run on tokio's blocking pool, stdout on its own writer thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("sealwatch")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, policy, learn_for))
}

async fn run_async(
    args: RunArgs,
    policy: Arc<Policy>,
    learn_for: Option<Duration>,
) -> anyhow::Result<Option<crate::learn::Learner>> {
    // Served from before the programs load, so /healthz answers and /readyz says 503 meanwhile.
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr.0 {
        let listener = metrics::http::bind(addr).await?;
        let local = listener
            .local_addr()
            .context("reading the metrics address")?;
        tracing::info!(addr = %local, "metrics endpoint: http://{local}/metrics, /healthz, /readyz");
        metrics::http::spawn(listener, metrics.clone());
    }
    // Loading (BTF parsing, verification) takes a while: off the runtime's only thread, so the
    // metrics endpoint keeps answering (/readyz 503) meanwhile.
    let options = LoadOptions {
        ring_critical_bytes: args.ring_critical_bytes,
        ring_bulk_bytes: args.ring_bulk_bytes,
        wakeup_pace_ns: args.wakeup_pace_us * 1000,
    };
    let mut sensors = tokio::task::spawn_blocking(move || Sensors::load(options))
        .await
        .context("the program loader stopped unexpectedly")?
        .inspect_err(|err| {
            if let SensorError::Program { sensor, .. } = err {
                metrics.attach_failed(sensor);
            }
        })?;
    for failure in sensors.attach_failures() {
        metrics.attach_failed(failure.sensor);
    }
    let cgroup_root = cgroup2_mount().context("finding the cgroup v2 mount")?;
    let node: Arc<str> = match &args.node {
        Some(node) => node.as_str().into(),
        None => nix::unistd::gethostname()
            .context("reading the host name (or pass --node)")?
            .to_string_lossy()
            .into(),
    };
    let hold = Duration::from_millis(args.hold_metadata_ms);
    let mut pipeline = Pipeline::new(
        PipelineConfig {
            node,
            clock: BootClock::measure(),
            hold_ns: hold.as_nanos() as u64,
            host_mnt_ns: host_mnt_ns(),
            net_env: args.network.environment(),
        },
        policy.clone(),
    );
    // The flight recorder starts before the first input, so a capture holds all of them.
    let mut recorder = match args.capture.recorder_options() {
        Some(opts) => Some(
            Recorder::start(opts, pipeline.config(), &policy).context("starting the capture")?,
        ),
        None => None,
    };

    let host_watch = policy.rule(crate::policy::RuleId::HostFileModified).enabled;
    sensors
        .set_host_watch(host_watch)
        .context("configuring the file sensor")?;
    let (tx, mut rx) = mpsc::channel::<Vec<Input>>(1024);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let decode_errors = Arc::new(AtomicU64::new(0));

    // The programs are attached, so nothing that starts from here on is missed; what started
    // before is in these snapshots, which the pipeline sees first.
    let snapshot = vec![
        Input::ProcSnapshot { procs: scan_proc() },
        Input::CgroupSnapshot {
            cgroups: scan_cgroups(&cgroup_root),
        },
    ];
    let drain_options = reader::DrainOptions {
        pace: Duration::from_micros(args.wakeup_pace_us),
        windows: sensors.drain_windows(),
    };
    let mut readers = Vec::new();
    for (lane, ring) in sensors.take_rings() {
        readers.push(
            reader::spawn(
                lane,
                ring,
                tx.clone(),
                decode_errors.clone(),
                drain_options.clone(),
                shutdown_rx.clone(),
            )
            .context("watching a ring buffer")?,
        );
    }
    let roots = match &args.host_root {
        Some(prefix) => RuntimeRoots::with_prefix(prefix),
        None => RuntimeRoots::default(),
    };
    let mut enforcer = enforcer::Enforcer::new(
        policy.clone(),
        pipeline.config().net_env.clone(),
        cgroup_root.clone(),
    );
    let resolver =
        resolver::Resolver::new(MetadataResolver::new(roots), cgroup_root, hold, tx.clone());
    drop(tx);

    let (tail_server, tail_hub) = start_tail(&args.tail)?;
    let mut writer = TeeSink::new(
        StdoutWriter::spawn(args.output_queue, args.output_queue_bytes)
            .context("starting the output writer")?,
        tail_hub,
    );
    if learn_for.is_some() {
        writer = writer.with_learner(crate::learn::Learner::new());
    }
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut reloader = reload::PolicyReloader::new(args.policy.as_deref());
    let mut policy_poll = tokio::time::interval(reload::POLL);
    policy_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    for input in snapshot {
        capture::feed(&mut pipeline, recorder.as_mut(), input, &mut writer);
    }
    dispatch(&mut pipeline, &resolver, &mut enforcer, &mut sensors);
    tracing::info!(
        policy = policy.source(),
        processes = pipeline.process_count(),
        containers = pipeline.container_count(),
        "sealwatch ready: all programs attached, readers running"
    );
    publish(&metrics, &pipeline);
    metrics.set_ready(true);
    crate::memory::release_free_heap();
    // Learning ends after its duration; a plain run never does by itself.
    let learning_ends = tokio::time::sleep(learn_for.unwrap_or(Duration::from_secs(u64::MAX >> 2)));
    tokio::pin!(learning_ends);
    if let Some(duration) = learn_for {
        tracing::info!(duration = %humantime::format_duration(duration), "learning network behaviour");
    }

    loop {
        tokio::select! {
            () = &mut learning_ends, if learn_for.is_some() => {
                tracing::info!("learning time is up: stopping");
                break;
            }
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = sighup.recv() => {
                if reloader.reload("SIGHUP", &mut pipeline, &metrics) {
                    policy_changed(&mut sensors, &mut enforcer, pipeline.policy(), recorder.as_mut());
                    dispatch(&mut pipeline, &resolver, &mut enforcer, &mut sensors);
                }
            }
            _ = policy_poll.tick() => {
                if reloader.changed()
                    && reloader.reload("policy file changed", &mut pipeline, &metrics)
                {
                    policy_changed(&mut sensors, &mut enforcer, pipeline.policy(), recorder.as_mut());
                    dispatch(&mut pipeline, &resolver, &mut enforcer, &mut sensors);
                }
            }
            _ = tick.tick() => {
                let input = tick_input(&sensors, &decode_errors, &writer, recorder.as_ref());
                capture::feed(&mut pipeline, recorder.as_mut(), input, &mut writer);
                enforcer.expire(&mut sensors, std::time::Instant::now());
                dispatch(&mut pipeline, &resolver, &mut enforcer, &mut sensors);
                writer.tick();
                if let Some(recorder) = recorder.as_mut().filter(|r| r.wants_rotation()) {
                    recorder.rotate(pipeline.snapshot());
                }
                publish(&metrics, &pipeline);
            }
            Some(batch) = rx.recv() => {
                for input in batch {
                    capture::feed(&mut pipeline, recorder.as_mut(), input, &mut writer);
                }
                dispatch(&mut pipeline, &resolver, &mut enforcer, &mut sensors);
            }
        }
        writer.end_batch();
    }

    metrics.set_ready(false);
    // Stop the readers after a last drain, finish in-flight lookups, then flush.
    let _ = shutdown_tx.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    drop(resolver);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while let Ok(Some(batch)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        for input in batch {
            capture::feed(&mut pipeline, recorder.as_mut(), input, &mut writer);
        }
    }
    let input = tick_input(&sensors, &decode_errors, &writer, recorder.as_ref());
    capture::feed(&mut pipeline, recorder.as_mut(), input, &mut writer);
    pipeline.finish(&mut writer);
    if let Some(Err(err)) = recorder.take().map(Recorder::finish) {
        let err = capture::describe(&err);
        tracing::error!(err, "capture: closing the last file failed");
    }
    let stats = pipeline.stats().clone();
    let learner = writer.take_learner();
    // Programs detach first: the kernel stops paying for them even if stdout is slow to drain.
    drop(sensors);
    drop(tail_server);
    let flushed = writer.finish(OUTPUT_GRACE);
    tracing::info!(
        events = stats.events,
        lines = stats.lines,
        violations = stats.violations,
        "stopped; programs detached"
    );
    flushed.context("flushing stdout")?;
    Ok(learner)
}

/// Hands the pipeline's requests out: enforcement to the kernel now (on this thread: it owns the
/// programs), lookups to the resolver's blocking pool.
fn dispatch(
    pipeline: &mut Pipeline,
    resolver: &resolver::Resolver,
    enforcer: &mut enforcer::Enforcer,
    sensors: &mut Sensors,
) {
    let mut lookups = Vec::new();
    for request in pipeline.take_requests() {
        match request {
            crate::pipeline::Request::Enforce(enforce) => enforcer.apply(sensors, enforce),
            lookup => lookups.push(lookup),
        }
    }
    resolver.dispatch(lookups);
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

fn tick_input(
    sensors: &Sensors,
    decode_errors: &AtomicU64,
    writer: &dyn LineSink,
    recorder: Option<&Recorder>,
) -> Input {
    let [kernel_critical, kernel_bulk] = sensors.kernel_drops();
    Input::Tick {
        ktime_ns: now_boottime_ns(),
        drops: DropCounts {
            kernel_critical,
            kernel_bulk,
            decode: decode_errors.load(Ordering::Relaxed),
            // The capture is an output too: inputs it could not record count here.
            output: writer.dropped() + recorder.map_or(0, Recorder::lost),
        },
    }
}

/// The live tail socket, unless `--tail-socket none`. A socket another sealwatch serves is left
/// to it (logged): this daemon then runs without live tail.
fn start_tail(
    args: &tail::TailServerArgs,
) -> anyhow::Result<(Option<tail::server::TailServer>, Option<tail::hub::TailHub>)> {
    let Some(path) = args.socket() else {
        return Ok((None, None));
    };
    match tail::server::start(&path, args.tail_queue) {
        Ok((server, hub)) => Ok((Some(server), Some(hub))),
        Err(err @ TailError::InUse(_)) => {
            tracing::warn!(%err, "live tail disabled for this daemon (pass another --tail-socket)");
            Ok((None, None))
        }
        Err(err) => Err(err).context("starting the live tail socket (or pass --tail-socket none)"),
    }
}

/// Inode of the host's mount namespace (that of pid 1, which `hostPID` makes the node's init in a
/// DaemonSet). 0 when unreadable: runtime set-up processes are then judged like any other.
fn host_mnt_ns() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/1/ns/mnt")
        .map(|meta| meta.ino() as u32)
        .unwrap_or(0)
}

/// What a new policy changes outside the pipeline: the kernel's host-write reporting and the
/// capture's record of the policy in force.
fn policy_changed(
    sensors: &mut Sensors,
    enforcer: &mut enforcer::Enforcer,
    policy: &Arc<Policy>,
    recorder: Option<&mut capture::Recorder>,
) {
    enforcer.policy_changed(sensors, policy.clone());
    let host_watch = policy.rule(crate::policy::RuleId::HostFileModified).enabled;
    if let Err(err) = sensors.set_host_watch(host_watch) {
        tracing::error!(%err, "could not apply host-file-modified to the file sensor");
    }
    if let Some(recorder) = recorder {
        recorder.policy_changed(policy);
    }
}
