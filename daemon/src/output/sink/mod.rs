//! Outputs besides stdout (`--file`, `--otlp-endpoint`): each with its own selection of lines,
//! its own bounded queue and its own thread, so one slow or failing destination never slows
//! another or the daemon. A sink drops a line only when its queue is full (or the destination
//! refuses it), and every drop is counted: per sink in the `loss` lines and in
//! `sealwatch_output_drops_total{sink}`.
pub mod file;
pub mod otlp;
pub mod queue;
pub mod worker;

use std::{
    sync::{atomic::Ordering, Arc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{EventLine, Selection};
pub use queue::{Bound, Line, SinkCounters};
pub use worker::{Batching, Destination};

/// The sinks there are (stdout is not one: it has its own writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    File,
    Otlp,
}

impl SinkKind {
    /// The `sink` label of metrics and the name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::File => "file",
            SinkKind::Otlp => "otlp",
        }
    }
}

/// A running sink, as the daemon's loop holds it.
pub struct Sink {
    kind: SinkKind,
    selection: Selection,
    producer: queue::Producer,
    counters: Arc<SinkCounters>,
    thread: Option<JoinHandle<()>>,
}

/// What a sink did so far (for metrics and `loss` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkStatus {
    pub kind: SinkKind,
    pub dropped: u64,
    pub exported: u64,
    pub queued_bytes: u64,
}

impl Sink {
    /// Starts the sink's thread.
    pub fn spawn(
        destination: impl Destination,
        selection: Selection,
        bound: Bound,
        batching: Batching,
    ) -> std::io::Result<Sink> {
        let kind = destination.kind();
        let name = kind.as_str();
        let (producer, consumer, counters) = queue::bounded(bound, batching.max_lines);
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || worker::run(destination, consumer, batching))?;
        tracing::info!(sink = name, events = %selection, "sink started");
        Ok(Sink {
            kind,
            selection,
            producer,
            counters,
            thread: Some(thread),
        })
    }

    pub fn kind(&self) -> SinkKind {
        self.kind
    }

    pub fn wants(&self, line: &EventLine) -> bool {
        self.selection.matches(line)
    }

    /// Queues the line's text (dropped and counted when the queue is full).
    pub fn take(&mut self, line: &EventLine, json: &Line) {
        self.producer.push(json, line.kind == "loss");
    }

    /// End of the loop's turn: the turn's lines go to the sink's thread at once.
    pub fn end_batch(&mut self) {
        self.producer.flush();
    }

    pub fn status(&self) -> SinkStatus {
        SinkStatus {
            kind: self.kind,
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            exported: self.counters.exported.load(Ordering::Relaxed),
            queued_bytes: self.counters.queued_bytes.load(Ordering::Relaxed) as u64,
        }
    }

    /// No more lines: the sink's thread delivers what is queued and ends. Returns at once.
    pub fn close(&mut self) {
        self.producer.close();
    }

    /// Waits, until `deadline` at most, for the thread to deliver what was queued when the sink
    /// was closed; what is still queued then is lost, and the error says how much.
    pub fn finish(mut self, deadline: Instant) -> Result<(), String> {
        self.producer.close();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                let lines = self.counters.queued_lines.load(Ordering::Relaxed);
                return Err(format!(
                    "sink {}: {lines} lines not delivered before exit",
                    self.kind.as_str()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        thread
            .join()
            .map_err(|_| format!("sink {}: its thread panicked", self.kind.as_str()))
    }
}
