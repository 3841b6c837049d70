//! The daemon's sink: every line to stdout (through its bounded writer), and to the taps that
//! want it (the live tail's clients, the learner of `sealwatch learn`). A line is serialised at
//! most once for all of them, and not at all beyond stdout's batch when no tap wants it.
use super::{EventLine, LineSink, StdoutWriter};

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
    taps: Vec<Box<dyn Tap + 't>>,
    /// Which taps want the line being emitted (kept to spare an allocation per line).
    wanting: Vec<bool>,
}

impl<'t> Fanout<'t> {
    pub fn new(stdout: StdoutWriter) -> Self {
        Fanout {
            stdout,
            taps: Vec::new(),
            wanting: Vec::new(),
        }
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

    /// Hands this turn's stdout lines to the writer thread in one go.
    pub fn end_batch(&mut self) {
        self.stdout.end_batch();
    }

    /// Lets the taps go first (tail clients are disconnected: their tasks flush and close), then
    /// flushes stdout.
    pub fn finish(self, grace: std::time::Duration) -> std::io::Result<()> {
        drop(self.taps);
        self.stdout.finish(grace)
    }
}

impl LineSink for Fanout<'_> {
    fn emit(&mut self, line: &EventLine) {
        self.wanting.clear();
        let mut any = false;
        for tap in &mut self.taps {
            let wants = tap.wants(line);
            any |= wants;
            self.wanting.push(wants);
        }
        if !any {
            // Straight into stdout's batch, without a String of its own.
            self.stdout.emit(line);
            return;
        }
        let json = line.to_json();
        for (tap, wants) in self.taps.iter_mut().zip(&self.wanting) {
            if *wants {
                tap.take(line, &json);
            }
        }
        self.stdout.emit_json(&json);
    }

    /// Only stdout's drops: a tail client's skipped lines are its own, reported to it.
    fn dropped(&self) -> u64 {
        self.stdout.dropped()
    }
}
