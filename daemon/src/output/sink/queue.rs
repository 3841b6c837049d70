//! A sink's bounded queue between the daemon's loop (one producer) and the sink's thread (one
//! consumer). The loop never waits on it: lines of a turn are collected locally and handed over
//! with one lock at the end of the turn; a line that would take the queue past its bound (lines
//! or bytes, counting lines still being delivered) is dropped and counted. The sink's thread is
//! woken only when its wait ends: a first line after an empty queue, or a full batch (waking it
//! every turn cost a context switch per turn per sink).
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

/// One JSON line (no newline), shared by every sink that takes it.
pub type Line = Arc<str>;

/// What a sink did, readable from any thread (metrics, `loss` lines, exit).
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Lines dropped: queue full, refused by the collector, or still queued at exit.
    pub dropped: AtomicU64,
    /// Lines delivered (written to the file, accepted by the collector).
    pub exported: AtomicU64,
    /// Lines and bytes queued or being delivered.
    pub queued_lines: AtomicUsize,
    pub queued_bytes: AtomicUsize,
}

impl SinkCounters {
    fn fits(&self, lines: usize, bytes: usize, bound: Bound) -> bool {
        self.queued_lines.load(Ordering::Relaxed) + lines <= bound.lines
            && self.queued_bytes.load(Ordering::Relaxed) + bytes <= bound.bytes
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub lines: usize,
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Shared {
    lines: VecDeque<Line>,
    closed: bool,
    /// A batch's worth of lines: the sink's thread waits for that many, or for its linger time.
    batch_lines: usize,
}

/// The loop's end.
pub struct Producer {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    counters: Arc<SinkCounters>,
    bound: Bound,
    pending: Vec<Line>,
    pending_bytes: usize,
}

/// The sink thread's end.
pub struct Consumer {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    counters: Arc<SinkCounters>,
}

/// A queue of at most `bound`, whose consumer takes batches of `batch_lines`.
pub fn bounded(bound: Bound, batch_lines: usize) -> (Producer, Consumer, Arc<SinkCounters>) {
    let shared = Arc::new((
        Mutex::new(Shared {
            batch_lines,
            ..Shared::default()
        }),
        Condvar::new(),
    ));
    let counters = Arc::new(SinkCounters::default());
    (
        Producer {
            shared: shared.clone(),
            counters: counters.clone(),
            bound,
            pending: Vec::new(),
            pending_bytes: 0,
        },
        Consumer {
            shared,
            counters: counters.clone(),
        },
        counters,
    )
}

impl Producer {
    /// Queues `line`, or drops and counts it when the queue is full. `loss` lines pass the bound
    /// (at most one per tick): the count of what a sink lost must reach its reader.
    pub fn push(&mut self, line: &Line, loss: bool) {
        let bytes = line.len() + 1;
        let fits = self.counters.fits(
            self.pending.len() + 1,
            self.pending_bytes + bytes,
            self.bound,
        );
        if !fits && !loss {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.pending.push(line.clone());
        self.pending_bytes += bytes;
    }

    /// Hands this turn's lines to the sink thread.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.counters
            .queued_bytes
            .fetch_add(self.pending_bytes, Ordering::Relaxed);
        self.counters
            .queued_lines
            .fetch_add(self.pending.len(), Ordering::Relaxed);
        self.pending_bytes = 0;
        let (lock, wake) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let before = shared.lines.len();
        shared.lines.extend(self.pending.drain(..));
        let wanted = before == 0
            || (before < shared.batch_lines && shared.lines.len() >= shared.batch_lines);
        drop(shared);
        if wanted {
            wake.notify_one();
        }
    }

    /// No more lines: the sink thread delivers what is queued and stops.
    pub fn close(&mut self) {
        self.flush();
        let (lock, wake) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        wake.notify_one();
    }
}

/// What the sink thread takes next.
pub enum Next {
    Lines(Vec<Line>),
    /// Nothing came for the linger time (time-based rotation may be due).
    Idle,
    /// Closed and empty: the thread ends.
    Closed,
}

impl Consumer {
    /// Up to a batch of lines (and about `max_bytes`); once the first line is there, waits up to
    /// `linger` for more to fill the batch. `Idle` when nothing came for `linger`. The lines stay
    /// counted as queued until [`Self::done`].
    pub fn next(&self, max_bytes: usize, linger: Duration) -> Next {
        let (lock, wake) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let max_lines = shared.batch_lines;
        // A first line, then company for it.
        for wants_more in [false, true] {
            let deadline = Instant::now() + linger;
            loop {
                let done = if wants_more {
                    shared.lines.len() >= max_lines
                } else {
                    !shared.lines.is_empty()
                };
                let now = Instant::now();
                if done || shared.closed || now >= deadline {
                    break;
                }
                shared = wake
                    .wait_timeout(shared, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if shared.lines.is_empty() || shared.closed {
                break;
            }
        }
        if shared.lines.is_empty() {
            return if shared.closed {
                Next::Closed
            } else {
                Next::Idle
            };
        }
        let mut batch = Vec::with_capacity(shared.lines.len().min(max_lines));
        let mut bytes = 0;
        while let Some(line) = shared.lines.front() {
            if batch.len() == max_lines || (!batch.is_empty() && bytes + line.len() > max_bytes) {
                break;
            }
            bytes += line.len() + 1;
            batch.extend(shared.lines.pop_front());
        }
        Next::Lines(batch)
    }

    /// Whether the producer closed the queue (shutdown: retrying may stop sooner).
    pub fn is_closed(&self) -> bool {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed
    }

    /// `lines` left the queue: delivered (`delivered`) or given up (counted as dropped).
    pub fn done(&self, lines: &[Line], delivered: bool) {
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        self.counters
            .queued_bytes
            .fetch_sub(bytes, Ordering::Relaxed);
        self.counters
            .queued_lines
            .fetch_sub(lines.len(), Ordering::Relaxed);
        let count = if delivered {
            &self.counters.exported
        } else {
            &self.counters.dropped
        };
        count.fetch_add(lines.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Arc::from(text)
    }

    #[test]
    fn a_full_queue_drops_and_counts_but_passes_loss_lines() {
        let (mut producer, consumer, counters) = bounded(
            Bound {
                lines: 2,
                bytes: 1 << 20,
            },
            10,
        );
        for text in ["a", "b", "c"] {
            producer.push(&line(text), false);
        }
        producer.push(&line("loss"), true);
        producer.flush();
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        let Next::Lines(batch) = consumer.next(1 << 20, Duration::ZERO) else {
            panic!("lines expected");
        };
        let texts: Vec<&str> = batch.iter().map(|l| &**l).collect();
        assert_eq!(texts, ["a", "b", "loss"]);
        // Still counted until delivered: the queue stays full meanwhile.
        producer.push(&line("d"), false);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 2);
        consumer.done(&batch, true);
        assert_eq!(counters.exported.load(Ordering::Relaxed), 3);
        assert_eq!(counters.queued_bytes.load(Ordering::Relaxed), 0);
        producer.push(&line("e"), false);
        producer.close();
        let Next::Lines(rest) = consumer.next(1 << 20, Duration::ZERO) else {
            panic!("lines expected");
        };
        assert_eq!(&*rest[0], "e");
        consumer.done(&rest, false);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
        assert!(matches!(
            consumer.next(1 << 20, Duration::ZERO),
            Next::Closed
        ));
    }

    #[test]
    fn the_byte_bound_holds_and_batches_respect_it() {
        let (mut producer, consumer, counters) = bounded(
            Bound {
                lines: 100,
                bytes: 10,
            },
            10,
        );
        for text in ["aaaa", "bbbb", "cccc"] {
            producer.push(&line(text), false);
        }
        producer.flush();
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(counters.queued_bytes.load(Ordering::Relaxed), 10);
        let Next::Lines(batch) = consumer.next(5, Duration::ZERO) else {
            panic!("lines expected");
        };
        assert_eq!(batch.len(), 1, "a batch ends at its byte limit");
        assert!(matches!(
            consumer.next(5, Duration::from_millis(1)),
            Next::Lines(_)
        ));
        let _ = consumer.is_closed();
        drop(producer);
        let _ = counters;
        assert!(matches!(
            consumer.next(5, Duration::from_millis(1)),
            Next::Idle
        ));
    }
}
