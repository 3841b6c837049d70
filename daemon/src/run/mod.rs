//! `sealwatch run`: the live daemon. Sets up sensors → readers → the one driver (fed by
//! [`live::LiveSource`]) → stdout and its taps, answers the pipeline's lookups off the event
//! path, and shuts down cleanly on SIGINT/SIGTERM.
mod args;
mod enforcer;
mod learned;
mod live;
mod outputs;
mod reload;
mod resolver;

use std::{
    path::Path,
    sync::{atomic::AtomicU64, Arc},
    time::Duration,
};

use anyhow::Context as _;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::{mpsc, watch},
};

pub use args::{MetricsAddr, NetworkArgs, RunArgs};

use crate::{
    capture::{self, Recorder},
    clock::BootClock,
    container::{
        cgroup2_mount, layer_access::LayerAccess, scan_cgroups, MetadataResolver, RuntimeRoots,
    },
    driver::{recording::config_record, Driver},
    input::Input,
    metrics::{self, Metrics},
    output::{sink::Bound, Fanout, StdoutWriter, Tap},
    pipeline::{Pipeline, PipelineConfig},
    policy::Policy,
    reader,
    sensors::{LoadOptions, SensorError, Sensors},
    state::seed::scan_proc,
    tail::{self, TailError},
};

/// How long shutdown waits for a reader of stdout that takes nothing before giving up its lines.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

pub fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    Ok(match path {
        Some(path) => Policy::load(path)?,
        None => Policy::embedded_default(),
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    run_with(args, None, None)
}

/// `sealwatch learn --duration`: the daemon as `run`, stopped after `duration` (or a signal),
/// with `tap` (the learner) fed from its output.
pub fn run_for(args: RunArgs, duration: Duration, tap: &mut dyn Tap) -> anyhow::Result<()> {
    run_with(args, Some(duration), Some(tap))
}

fn run_with(
    args: RunArgs,
    stop_after: Option<Duration>,
    tap: Option<&mut dyn Tap>,
) -> anyhow::Result<()> {
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
    runtime.block_on(run_async(args, policy, stop_after, tap))
}

/// Sets the live daemon up around the one driver, runs it, and takes it down. One straight
/// sequence (longer than most functions here) because its order is the point: metrics served
/// before the programs load, the recorder started before the first input, the snapshots taken
/// after the programs attach, readers before the loop; and on the way down, programs detached
/// before stdout drains.
async fn run_async(
    args: RunArgs,
    policy: Arc<Policy>,
    stop_after: Option<Duration>,
    tap: Option<&mut dyn Tap>,
) -> anyhow::Result<()> {
    let node = node_name(args.node.as_deref())?;
    // Before the programs load: a file that cannot be written or a bad CA file ends the start.
    let sinks = outputs::start_sinks(
        &args.outputs,
        &node,
        Bound {
            lines: args.output_queue,
            bytes: args.output_queue_bytes,
        },
    )?;
    let metrics = serve_metrics(&args).await?;
    let mut sensors = load_sensors(&args, &metrics).await?;
    let cgroup_root = cgroup2_mount().context("finding the cgroup v2 mount")?;
    let hold = Duration::from_millis(args.hold_metadata_ms);
    let pipeline = Pipeline::new(
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
    let recorder = match args.capture.recorder_options() {
        Some(opts) => Some(
            Recorder::start(opts, config_record(pipeline.config()), &policy)
                .context("starting the capture")?,
        ),
        None => None,
    };
    sensors
        .set_host_watch(policy.rule(crate::policy::RuleId::HostFileModified).enabled)
        .context("configuring the file sensor")?;
    let (tx, rx) = mpsc::channel::<Vec<Input>>(1024);
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
    let enforcer = enforcer::Enforcer::new(
        policy.clone(),
        pipeline.config().net_env.clone(),
        cgroup_root.clone(),
    );
    let resolver = resolver::Resolver::new(
        MetadataResolver::new(roots),
        LayerAccess::new(args.host_root.as_deref()),
        cgroup_root,
        hold,
        tx.clone(),
    );
    drop(tx);

    let (tail_server, tail_hub) = start_tail(&args.tail)?;
    let mut writer = Fanout::new(
        StdoutWriter::spawn(args.output_queue, args.output_queue_bytes)
            .context("starting the output writer")?,
    )
    .with_stdout_selection(args.outputs.stdout_events.clone());
    for sink in sinks {
        writer = writer.with_sink(sink);
    }
    if let Some(hub) = tail_hub {
        writer = writer.with_tap(hub);
    }
    if let Some(tap) = tap {
        writer = writer.with_tap(tap);
    }
    let parts = live::LiveParts {
        rx,
        sensors,
        enforcer,
        resolver: Some(resolver),
        recorder,
        writer,
        metrics,
        decode_errors,
        reloader: reload::PolicyReloader::new(args.policy.as_deref()),
        net_env: pipeline.config().net_env.clone(),
        signals: live::Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        },
        shutdown_tx,
        readers,
        stop_after,
    };
    let mut source = live::LiveSource::new(parts, snapshot);

    let Ok(pipeline) = Driver::new(pipeline).run(&mut source).await;
    let stats = pipeline.map(|p| p.stats().clone()).unwrap_or_default();
    if let Some(Err(err)) = source.parts.recorder.take().map(Recorder::finish) {
        let err = capture::describe(&err);
        tracing::error!(err, "capture: closing the last file failed");
    }
    let live::LiveParts {
        sensors, writer, ..
    } = source.parts;
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
    flushed.context("flushing stdout")
}

/// The metrics endpoint, served from before the programs load, so /healthz answers and /readyz
/// says 503 meanwhile.
async fn serve_metrics(args: &RunArgs) -> anyhow::Result<Arc<Metrics>> {
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr.0 {
        let listener = metrics::http::bind(addr).await?;
        let local = listener
            .local_addr()
            .context("reading the metrics address")?;
        tracing::info!(addr = %local, "metrics endpoint: http://{local}/metrics, /healthz, /readyz");
        metrics::http::spawn(listener, metrics.clone());
    }
    Ok(metrics)
}

/// A per-second budget as the kernel counts it (per `budget::WINDOW_NS`); 0 stays unlimited.
fn per_window(per_sec: u32) -> u32 {
    let windows_per_sec = (1_000_000_000 / sealwatch_abi::budget::WINDOW_NS) as u32;
    if per_sec == 0 {
        0
    } else {
        per_sec.div_ceil(windows_per_sec)
    }
}

/// Loads and attaches the programs. Loading (BTF parsing, verification) takes a while: off the
/// runtime's only thread, so the metrics endpoint keeps answering (/readyz 503) meanwhile.
async fn load_sensors(args: &RunArgs, metrics: &Metrics) -> anyhow::Result<Sensors> {
    let options = LoadOptions {
        ring_critical_bytes: args.ring_critical_bytes,
        ring_bulk_bytes: args.ring_bulk_bytes,
        wakeup_pace_ns: args.wakeup_pace_us * 1000,
        budgets: [
            per_window(args.cgroup_budget_file),
            per_window(args.cgroup_budget_network),
        ],
    };
    let sensors = tokio::task::spawn_blocking(move || Sensors::load(options))
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
    Ok(sensors)
}

/// `--node`, or the host name.
fn node_name(node: Option<&str>) -> anyhow::Result<Arc<str>> {
    Ok(match node {
        Some(node) => node.into(),
        None => nix::unistd::gethostname()
            .context("reading the host name (or pass --node)")?
            .to_string_lossy()
            .into(),
    })
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
