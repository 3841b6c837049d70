//! The daemon's sink: every line to stdout (through its bounded writer), and to live tail
//! clients when any are connected. The line is serialised once for both.
use super::hub::TailHub;
use crate::output::{EventLine, LineSink, StdoutWriter};

pub struct TeeSink {
    stdout: StdoutWriter,
    hub: Option<TailHub>,
    /// `sealwatch learn`: network lines also go to the learner.
    learner: Option<crate::learn::Learner>,
}

impl TeeSink {
    pub fn new(stdout: StdoutWriter, hub: Option<TailHub>) -> Self {
        TeeSink {
            stdout,
            hub,
            learner: None,
        }
    }

    /// Also feeds every network line to `learner` (`sealwatch learn --duration`).
    pub fn with_learner(mut self, learner: crate::learn::Learner) -> Self {
        self.learner = Some(learner);
        self
    }

    /// The learner, with what it saw.
    pub fn take_learner(&mut self) -> Option<crate::learn::Learner> {
        self.learner.take()
    }

    /// Time passed: lets clients that caught up learn how many lines they missed.
    pub fn tick(&mut self) {
        if let Some(hub) = &mut self.hub {
            hub.flush_notices();
        }
    }

    /// Hands this turn's stdout lines to the writer thread in one go.
    pub fn end_batch(&mut self) {
        self.stdout.end_batch();
    }

    /// Disconnects tail clients (their tasks flush and close) and flushes stdout.
    pub fn finish(self, grace: std::time::Duration) -> std::io::Result<()> {
        drop(self.hub);
        self.stdout.finish(grace)
    }
}

impl LineSink for TeeSink {
    fn emit(&mut self, line: &EventLine) {
        let for_learner = self.learner.is_some() && line.network.is_some();
        let for_tail = self.hub.as_mut().is_some_and(TailHub::has_subscribers);
        if !for_learner && !for_tail {
            // Straight into stdout's batch, without a String of its own.
            self.stdout.emit(line);
            return;
        }
        let json = line.to_json();
        if let Some(learner) = &mut self.learner {
            if line.network.is_some() {
                learner.observe_line(&json);
            }
        }
        if let Some(hub) = &mut self.hub {
            hub.publish(line, &json);
        }
        self.stdout.emit_json(&json);
    }

    /// Only stdout's drops: a tail client's skipped lines are its own, reported to it.
    fn dropped(&self) -> u64 {
        self.stdout.dropped()
    }
}
