//! A sink's thread: takes batches from its queue and delivers them, retrying with backoff and
//! jitter while the destination fails, so its queue (never the daemon) absorbs an outage.
use std::{
    hash::{BuildHasher as _, RandomState},
    time::Duration,
};

use super::queue::{Consumer, Line, Next};

/// What became of a batch.
#[derive(Debug)]
pub enum Delivery {
    Delivered,
    /// Worth trying again (collector down, 503, 429, disk full); `after` is the destination's
    /// own wish (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will never be taken as it is (400, 401, 403, 413): dropped and counted, logged once.
    Rejected {
        reason: String,
    },
    /// Delivered except `rejected` lines the destination refused (OTLP partial success).
    Partial {
        rejected: u64,
        reason: String,
    },
}

/// Where a sink's lines go.
pub trait Destination: Send + 'static {
    /// Which sink this is: the `sink` label and the log field.
    fn kind(&self) -> super::SinkKind;
    /// Delivers `lines`. After `Retry`, the next call gets the same batch again.
    fn deliver(&mut self, lines: &[Line]) -> Delivery;
    /// Nothing came for a while (the file sink rotates by age).
    fn idle(&mut self) {}
}

/// How a sink batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    pub max_lines: usize,
    pub max_bytes: usize,
    /// How long a first line waits for company before its batch goes.
    pub linger: Duration,
}

/// Backoff between tries: doubling from `FIRST` to `MAX`, each wait drawn in [w/2, w) so that
/// the daemons of a fleet do not retry in step after a collector comes back.
struct Backoff {
    next: Duration,
    seed: RandomState,
    tries: u64,
}

const FIRST: Duration = Duration::from_millis(200);
const MAX: Duration = Duration::from_secs(30);

impl Backoff {
    fn new() -> Self {
        Backoff {
            next: FIRST,
            seed: RandomState::new(),
            tries: 0,
        }
    }

    fn wait(&mut self, wish: Option<Duration>) -> Duration {
        self.tries += 1;
        let span = self.next;
        self.next = (self.next * 2).min(MAX);
        // std's per-process random hash keys are the jitter's randomness: no rand crate needed
        // for spreading retries.
        let unit = (self.seed.hash_one(self.tries) >> 11) as f64 / (1u64 << 53) as f64;
        let jittered = span.mul_f64(0.5 + unit / 2.0);
        wish.map_or(jittered, |wish| wish.clamp(FIRST, MAX).max(jittered))
    }
}

/// Runs until the queue is closed and drained. A batch being retried when the queue closes
/// keeps trying until the caller's exit grace runs out (it then counts what is left).
pub fn run(mut destination: impl Destination, queue: Consumer, batching: Batching) {
    let sink = destination.kind().as_str();
    // The reason last logged: a failing destination is logged once per kind of failure, and
    // once when it recovers, never once per try.
    let mut failing: Option<String> = None;
    // Kept across batches while the destination fails: a collector refusing every batch (a bad
    // token) is asked ever less often, not once per batch at full speed.
    let mut backoff = Backoff::new();
    loop {
        let batch = match queue.next(batching.max_bytes, batching.linger) {
            Next::Lines(batch) => batch,
            Next::Idle => {
                destination.idle();
                continue;
            }
            Next::Closed => return,
        };
        loop {
            match destination.deliver(&batch) {
                Delivery::Delivered => {
                    backoff = Backoff::new();
                    if failing.take().is_some() {
                        tracing::info!(sink, "sink delivers again");
                    }
                    queue.done(&batch, true);
                    break;
                }
                Delivery::Partial { rejected, reason } => {
                    if failing.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(
                            sink,
                            rejected,
                            reason,
                            "sink refused part of a batch (dropped and counted; logged once)"
                        );
                        failing = Some(reason);
                    }
                    let rejected = (rejected as usize).min(batch.len());
                    let (refused, taken) = batch.split_at(rejected);
                    queue.done(refused, false);
                    queue.done(taken, true);
                    break;
                }
                Delivery::Rejected { reason } => {
                    if failing.as_deref() != Some(reason.as_str()) {
                        tracing::error!(sink, reason, "sink refuses lines: they are dropped and counted until this changes (logged once)");
                        failing = Some(reason);
                    }
                    queue.done(&batch, false);
                    // A refusal (a bad token) is not a reason to send the next batch at once.
                    std::thread::sleep(backoff.wait(None));
                    break;
                }
                Delivery::Retry { reason, after } => {
                    if failing.as_deref() != Some(reason.as_str()) {
                        tracing::warn!(sink, reason, "sink cannot deliver: retrying with backoff, queueing meanwhile (logged once)");
                        failing = Some(reason);
                    }
                    std::thread::sleep(backoff.wait(after));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_the_destinations_wish() {
        let mut backoff = Backoff::new();
        let first = backoff.wait(None);
        assert!(first >= FIRST / 2 && first < FIRST, "{first:?}");
        let second = backoff.wait(None);
        assert!(second >= FIRST && second < FIRST * 2, "{second:?}");
        for _ in 0..20 {
            assert!(backoff.wait(None) < MAX);
        }
        assert!(backoff.wait(Some(Duration::from_secs(3600))) == MAX);
        let mut fresh = Backoff::new();
        assert!(fresh.wait(Some(Duration::from_secs(1))) == Duration::from_secs(1));
    }
}
