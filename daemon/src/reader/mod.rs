//! Draining one ring buffer: on the kernel's wake-up, on a timer of its own while records flow
//! (so the traced tasks need not pay for wake-ups, `schedule.rs`), and on a slow sweep; decode
//! every record, hand batches to the pipeline. Decoding never panics; a bad record is counted
//! and reported as loss.
mod schedule;
mod timer;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::unix::AsyncFd,
    sync::{mpsc, watch},
};

use crate::{clock::now_boottime_ns, event::decode, pipeline::Input, sensors::DrainWindows};
use schedule::DrainSchedule;
use timer::DrainTimer;

/// Records per batch sent to the pipeline: amortises channel costs under load.
const BATCH: usize = 256;
/// Records one drain takes at most before the reader yields: a ring that refills as fast as it
/// is read (a flood) must not keep the other lane's reader, the pipeline and the output, which
/// share the thread, from their turn. The rest is taken right after.
const DRAIN_MAX: usize = 16 * BATCH;
/// Longest a record submitted without a wake-up waits in the ring outside a draining window
/// (fork and exit records, and a rare one that lost the race with a window's last drain): 50
/// drains a second per ring when idle.
const SWEEP: Duration = Duration::from_millis(20);

/// Shortest interval between two timer drains, whatever the pace: a shorter one would spend the
/// daemon's CPU on empty drains.
const DRAIN_INTERVAL_MIN: Duration = Duration::from_micros(50);

/// How a reader drains on its own while records flow (see `schedule.rs`).
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// The kernel's wake-up pace (`--wakeup-pace-us`), zero for none. It is also the interval of
    /// the timer drains (`schedule.rs`).
    pub pace: Duration,
    /// The kernel's copy of the windows.
    pub windows: DrainWindows,
}

pub fn spawn(
    lane: u32,
    ring: RingBuf<MapData>,
    tx: mpsc::Sender<Vec<Input>>,
    decode_errors: Arc<AtomicU64>,
    drain_options: DrainOptions,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    // SAFETY: the ring buffer owns its fd and the AsyncFd owns the ring buffer, so the fd stays
    // open for as long as it is registered.
    let mut fd = unsafe { AsyncFd::register(ring) }.map_err(|err| err.into_parts().1)?;
    let interval = drain_options.pace.max(DRAIN_INTERVAL_MIN);
    let interval_ns = if drain_options.pace.is_zero() {
        0
    } else {
        u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX)
    };
    let mut schedule = DrainSchedule::new(interval_ns);
    let mut timer = DrainTimer::new(interval)?;
    let mut own_drains = OwnDrains {
        lane,
        windows: drain_options.windows,
        failed: false,
    };
    Ok(tokio::spawn(async move {
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (drained, woken) = tokio::select! {
                // While the timer drains every interval, a sweep would only add a drain.
                _ = sweep.tick(), if !timer.running() => {
                    (drain(fd.get_mut(), &decode_errors, lane, DRAIN_MAX), false)
                }
                ready = fd.readable_mut() => {
                    let Ok(mut guard) = ready else { break };
                    let drained = drain(guard.get_inner_mut(), &decode_errors, lane, DRAIN_MAX);
                    // Stopped at the limit: the ring is still readable, for the next turn.
                    if drained.1 < DRAIN_MAX {
                        guard.clear_ready();
                    }
                    (drained, true)
                }
                tick = timer.tick(), if timer.running() => {
                    if let Err(err) = tick {
                        own_drains.fail(&err);
                        timer.stop();
                    }
                    (drain(fd.get_mut(), &decode_errors, lane, DRAIN_MAX), false)
                }
                _ = shutdown.changed() => {
                    // Whatever the kernel delivered before shutdown still goes out.
                    for batch in drain(fd.get_mut(), &decode_errors, lane, usize::MAX).0 {
                        let _ = tx.send(batch).await;
                    }
                    return;
                }
            };
            let (batches, records) = drained;
            if !own_drains.failed {
                let decision = schedule.after_drain(now_boottime_ns(), records, woken);
                own_drains.follow(decision, &mut timer);
            }
            for batch in batches {
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
            if records >= DRAIN_MAX {
                tokio::task::yield_now().await;
            }
        }
    }))
}

/// Carries out the schedule's decisions. Should the timer or the map ever fail, the reader
/// stops draining on its own and publishes no more windows: the kernel's paced wake-ups and the
/// sweep still deliver every record, later.
struct OwnDrains {
    lane: u32,
    windows: DrainWindows,
    failed: bool,
}

impl OwnDrains {
    fn follow(&mut self, decision: schedule::Decision, timer: &mut DrainTimer) {
        if let Some(until) = decision.publish {
            if let Err(err) = self.windows.publish(self.lane, until) {
                self.fail(&err);
                timer.stop();
                return;
            }
        }
        if !decision.keep_draining {
            timer.stop();
        } else if let Err(err) = timer.start() {
            self.fail(&err);
        }
    }

    fn fail(&mut self, err: &dyn std::fmt::Display) {
        if !self.failed {
            tracing::warn!(lane = self.lane, %err, "draining the ring on a timer failed: records now wait for the kernel's paced wake-ups");
            self.failed = true;
        }
    }
}

/// What is in the ring, at most `max` records, in batches, and how many records that was.
fn drain(
    ring: &mut RingBuf<MapData>,
    decode_errors: &AtomicU64,
    lane: u32,
    max: usize,
) -> (Vec<Vec<Input>>, usize) {
    let mut batches = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut records = 0;
    while records < max {
        let Some(record) = ring.next() else {
            break;
        };
        records += 1;
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
    (batches, records)
}
