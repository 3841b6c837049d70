//! Draining one ring buffer: wake on readiness, decode every record, hand batches to the
//! pipeline. Decoding never panics; a bad record is counted and reported as loss.
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, watch},
};

use crate::{event::decode, pipeline::Input};

/// Records per batch sent to the pipeline: amortises channel costs under load.
const BATCH: usize = 256;
/// Longest a record submitted without a wake-up waits in the ring (the kernel paces wake-ups,
/// see `ebpf/probes/src/emit.rs`): 50 wake-ups a second per ring when idle.
const SWEEP: std::time::Duration = std::time::Duration::from_millis(20);

pub fn spawn(
    lane: u32,
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Vec<Input>>,
    decode_errors: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    // SAFETY: the ring buffer owns its fd and the AsyncFd owns the ring buffer, so the fd stays
    // open for as long as it is registered.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(|err| err.into_parts().1)?;
    Ok(tokio::spawn(async move {
        // Records submitted without a wake-up (fork, exit, paced ones) are drained at the next wake-up or
        // by this timer, whichever comes first.
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sweep.tick() => {
                    for batch in drain(fd.get_mut(), &decode_errors, lane) {
                        if tx.send(batch).await.is_err() {
                            return;
                        }
                    }
                }
                ready = fd.readable_mut() => {
                    let Ok(mut guard) = ready else { break };
                    let batches = drain(guard.get_inner_mut(), &decode_errors, lane);
                    guard.clear_ready();
                    for batch in batches {
                        if tx.send(batch).await.is_err() {
                            return;
                        }
                    }
                }
                _ = shutdown.changed() => {
                    // Whatever the kernel delivered before shutdown still goes out.
                    for batch in drain(fd.get_mut(), &decode_errors, lane) {
                        let _ = tx.send(batch).await;
                    }
                    return;
                }
            }
        }
    }))
}

fn drain(ring: &mut RingBuf<MapData>, decode_errors: &AtomicU64, lane: u32) -> Vec<Vec<Input>> {
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(record) = ring.next() {
        match decode(&record) {
            Ok(event) => batch.push(Input::Kernel(event)),
            Err(err) => {
                if decode_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(lane, %err, "undecodable kernel record (further ones are only counted)");
                }
            }
        }
        if batch.len() == BATCH {
            batches.push(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}
