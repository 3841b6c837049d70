//! `sealwatch run`: the live daemon. Wires sensors → readers → pipeline → stdout, answers the
//! pipeline's lookups off the event path, and shuts down cleanly on SIGINT/SIGTERM.
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
    cli::RunArgs,
    clock::{now_boottime_ns, BootClock},
    container::{cgroup2_mount, scan_cgroups, MetadataResolver, RuntimeRoots},
    output::{LineSink, StdoutWriter},
    pipeline::{DropCounts, Input, Pipeline, PipelineConfig},
    policy::Policy,
    reader,
    sensors::{LoadOptions, Sensors},
    state::seed::scan_proc,
};

/// How often time advances in the pipeline (held events, loss reports, table sweeps).
const TICK: Duration = Duration::from_millis(100);
/// How long shutdown waits for in-flight lookups and the final drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

pub fn load_policy(path: Option<&Path>) -> anyhow::Result<Policy> {
    Ok(match path {
        Some(path) => Policy::load(path)?,
        None => Policy::embedded_default(),
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let policy = Arc::new(load_policy(args.policy.as_deref())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("sealwatch")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(args, policy))
}

async fn run_async(args: RunArgs, policy: Arc<Policy>) -> anyhow::Result<()> {
    let mut sensors = Sensors::load(LoadOptions {
        ring_critical_bytes: args.ring_critical_bytes,
        ring_bulk_bytes: args.ring_bulk_bytes,
    })?;
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
        },
        policy.clone(),
    );

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
    let mut readers = Vec::new();
    for (lane, ring) in sensors.take_rings() {
        readers.push(
            reader::spawn(
                lane,
                ring,
                tx.clone(),
                decode_errors.clone(),
                shutdown_rx.clone(),
            )
            .context("watching a ring buffer")?,
        );
    }
    let roots = match &args.host_root {
        Some(prefix) => RuntimeRoots::with_prefix(prefix),
        None => RuntimeRoots::default(),
    };
    let resolver =
        resolver::Resolver::new(MetadataResolver::new(roots), cgroup_root, hold, tx.clone());
    drop(tx);

    let mut writer =
        StdoutWriter::spawn(args.output_queue).context("starting the output writer")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    for input in snapshot {
        pipeline.handle(input, &mut writer);
    }
    resolver.dispatch(pipeline.take_requests());
    tracing::info!(
        policy = policy.source(),
        processes = pipeline.process_count(),
        containers = pipeline.container_count(),
        "sealwatch ready: all programs attached, readers running"
    );

    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = tick.tick() => {
                let input = tick_input(&sensors, &decode_errors, &writer);
                pipeline.handle(input, &mut writer);
            }
            Some(batch) = rx.recv() => {
                for input in batch {
                    pipeline.handle(input, &mut writer);
                }
                resolver.dispatch(pipeline.take_requests());
            }
        }
    }

    // Stop the readers after a last drain, finish in-flight lookups, then flush.
    let _ = shutdown_tx.send(true);
    for reader in readers {
        let _ = reader.await;
    }
    drop(resolver);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while let Ok(Some(batch)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        for input in batch {
            pipeline.handle(input, &mut writer);
        }
    }
    let input = tick_input(&sensors, &decode_errors, &writer);
    pipeline.handle(input, &mut writer);
    pipeline.finish(&mut writer);
    let stats = pipeline.stats().clone();
    writer.finish().context("flushing stdout")?;
    drop(sensors);
    tracing::info!(
        events = stats.events,
        lines = stats.lines,
        violations = stats.violations,
        "stopped; programs detached"
    );
    Ok(())
}

fn tick_input(sensors: &Sensors, decode_errors: &AtomicU64, writer: &StdoutWriter) -> Input {
    let [kernel_critical, kernel_bulk] = sensors.kernel_drops();
    Input::Tick {
        ktime_ns: now_boottime_ns(),
        drops: DropCounts {
            kernel_critical,
            kernel_bulk,
            decode: decode_errors.load(Ordering::Relaxed),
            output: writer.dropped(),
        },
    }
}
