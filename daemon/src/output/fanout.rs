//! Where the daemon's lines go: stdout (through its bounded writer) and the sinks (file, OTLP),
//! each the lines its selection wants, and the taps that want them (the live tail's clients, the
//! learner of `sealwatch learn`). A line is serialised at most once for all of them, and not at
//! all beyond stdout's batch when nothing else wants it.
use std::{sync::Arc, time::Instant};

use super::{
    sink::{Sink, SinkKind, SinkStatus},
    EventLine, LineSink, Selection, StdoutWriter,
};

/// A consumer of lines besides stdout, fed their JSON text. Implemented where the consumer lives
/// (`tail::hub`, `learn`), so outputs know nothing of them.
pub trait Tap {
    /// Whether this line is wanted (cheap: when no tap wants a line, no text is made for it).
    fn wants(&mut self, line: &EventLine) -> bool;
    /// A line this tap wanted, with its JSON text (no newline).
    fn take(&mut self, line: &EventLine, json: &str);
    /// Time passed (the tail tells clients that caught up how many lines they missed).
    fn tick(&mut self) {}
}

impl<T: Tap + ?Sized> Tap for &mut T {
    fn wants(&mut self, line: &EventLine) -> bool {
        (**self).wants(line)
    }
    fn take(&mut self, line: &EventLine, json: &str) {
        (**self).take(line, json);
    }
    fn tick(&mut self) {
        (**self).tick();
    }
}

pub struct Fanout<'t> {
    stdout: StdoutWriter,
    stdout_selection: Selection,
    sinks: Vec<Sink>,
    taps: Vec<Box<dyn Tap + 't>>,
    /// Which taps, then which sinks, want the line being emitted (kept to spare an allocation
    /// per line).
    wanting: Vec<bool>,
    /// The line's text is written here first, then copied once into the shared `Arc<str>`.
    scratch: Vec<u8>,
}

/// Lines each output dropped since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputDrops {
    pub stdout: u64,
    pub file: u64,
    pub otlp: u64,
}

impl<'t> Fanout<'t> {
    pub fn new(stdout: StdoutWriter) -> Self {
        Fanout {
            stdout,
            stdout_selection: Selection::all(),
            sinks: Vec::new(),
            taps: Vec::new(),
            wanting: Vec::new(),
            scratch: Vec::with_capacity(4096),
        }
    }

    /// Stdout gets only the lines `selection` wants.
    pub fn with_stdout_selection(mut self, selection: Selection) -> Self {
        self.stdout_selection = selection;
        self
    }

    /// Also sends the lines `sink` selects to it.
    pub fn with_sink(mut self, sink: Sink) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Every sink's counts so far.
    pub fn sink_status(&self) -> Vec<SinkStatus> {
        self.sinks.iter().map(Sink::status).collect()
    }

    /// What each output dropped since start.
    pub fn drops(&self) -> OutputDrops {
        let mut drops = OutputDrops {
            stdout: self.stdout.dropped(),
            ..OutputDrops::default()
        };
        for sink in &self.sinks {
            let status = sink.status();
            match status.kind {
                SinkKind::File => drops.file += status.dropped,
                SinkKind::Otlp => drops.otlp += status.dropped,
            }
        }
        drops
    }

    /// Also feeds the lines `tap` wants to it.
    pub fn with_tap(mut self, tap: impl Tap + 't) -> Self {
        self.taps.push(Box::new(tap));
        self
    }

    /// Time passed: passed on to every tap.
    pub fn tick(&mut self) {
        for tap in &mut self.taps {
            tap.tick();
        }
    }

    /// Hands this turn's lines to the writer and sink threads in one go each.
    pub fn end_batch(&mut self) {
        self.stdout.end_batch();
        for sink in &mut self.sinks {
            sink.end_batch();
        }
    }

    /// Lets the taps go first (tail clients are disconnected: their tasks flush and close), then
    /// flushes stdout while the sinks drain on their threads, all within the one `grace`.
    pub fn finish(mut self, grace: std::time::Duration) -> std::io::Result<()> {
        drop(self.taps);
        let deadline = Instant::now() + grace;
        for sink in &mut self.sinks {
            sink.close();
        }
        let stdout = self.stdout.finish(grace);
        let mut lost = Vec::new();
        for sink in self.sinks {
            if let Err(err) = sink.finish(deadline) {
                lost.push(err);
            }
        }
        if !lost.is_empty() {
            tracing::error!(
                "{}: the collector or disk took nothing in the exit grace",
                lost.join("; ")
            );
        }
        stdout
    }
}

impl LineSink for Fanout<'_> {
    fn emit(&mut self, line: &EventLine) {
        let to_stdout = self.stdout_selection.matches(line);
        self.wanting.clear();
        let mut any = false;
        for tap in &mut self.taps {
            let wants = tap.wants(line);
            any |= wants;
            self.wanting.push(wants);
        }
        for sink in &self.sinks {
            let wants = sink.wants(line);
            any |= wants;
            self.wanting.push(wants);
        }
        if !any {
            if to_stdout {
                // Straight into stdout's batch, without a String of its own.
                self.stdout.emit(line);
            }
            return;
        }
        self.scratch.clear();
        line.write_json(&mut self.scratch);
        // serde_json and the hand-written parts write UTF-8 only.
        let json: Arc<str> = Arc::from(std::str::from_utf8(&self.scratch).unwrap_or_default());
        let (tap_wants, sink_wants) = self.wanting.split_at(self.taps.len());
        for (tap, wants) in self.taps.iter_mut().zip(tap_wants) {
            if *wants {
                tap.take(line, &json);
            }
        }
        for (sink, wants) in self.sinks.iter_mut().zip(sink_wants) {
            if *wants {
                sink.take(line, &json);
            }
        }
        if to_stdout {
            self.stdout.emit_json(&json);
        }
    }

    /// Only stdout's drops: a tail client's skipped lines are its own, reported to it.
    fn dropped(&self) -> u64 {
        self.stdout.dropped()
    }
}
