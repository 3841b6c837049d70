//! `loss` lines: counts since the previous line, and never lost with a loss line the output had
//! to drop.
#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::sync::Arc;

use super::{DropCounts, Input, Pipeline, PipelineConfig};
use crate::{
    output::{EventLine, LineSink},
    policy::Policy,
};

/// A stdout whose reader stalls until `open`: lines are dropped and counted meanwhile.
#[derive(Default)]
struct StallingSink {
    open: bool,
    lines: Vec<EventLine>,
    dropped: u64,
}

impl LineSink for StallingSink {
    fn emit(&mut self, line: &EventLine) {
        if self.open {
            self.lines.push(line.clone());
        } else {
            self.dropped += 1;
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

fn pipeline() -> Pipeline {
    Pipeline::new(
        PipelineConfig::for_tests(),
        Arc::new(Policy::embedded_default()),
    )
}

fn tick(p: &mut Pipeline, sink: &mut StallingSink, at_ms: u64, critical: u64) {
    let drops = DropCounts {
        kernel_critical: critical,
        output: sink.dropped,
        ..DropCounts::default()
    };
    p.handle(
        Input::Tick {
            ktime_ns: at_ms * 1_000_000,
            drops,
        },
        sink,
    );
}

fn losses(lines: &[EventLine]) -> Vec<(u64, u64)> {
    lines
        .iter()
        .filter_map(|l| l.loss.as_ref())
        .map(|l| (l.kernel_critical, l.output))
        .collect()
}

#[test]
fn counts_of_a_dropped_loss_line_come_out_in_the_next_one() {
    let mut p = pipeline();
    let mut sink = StallingSink {
        dropped: 40,
        ..StallingSink::default()
    };
    // Stalled: both loss lines are dropped (and counted as output drops themselves).
    tick(&mut p, &mut sink, 100, 3);
    tick(&mut p, &mut sink, 200, 5);
    assert_eq!(sink.dropped, 42);
    sink.open = true;
    tick(&mut p, &mut sink, 300, 5);
    // Everything lost so far, in one line: 5 kernel records, 40 lines + the 2 loss lines.
    assert_eq!(losses(&sink.lines), vec![(5, 42)]);
    // And then only what is new.
    tick(&mut p, &mut sink, 400, 6);
    assert_eq!(losses(&sink.lines), vec![(5, 42), (1, 0)]);
    tick(&mut p, &mut sink, 500, 6);
    assert_eq!(losses(&sink.lines).len(), 2, "no new loss, no line");
}
