//! The repeat gate: identical violations (same container, rule, operation and object) within
//! [`REPEAT_WINDOW_NS`] are counted, and printed once with the count of repeats held back
//! (`violation.repeats`), instead of flooding the stream (a write loop on an image file, a
//! connect loop to a forbidden peer).
//!
//! Nothing is absorbed: the latest held-back line of a key is kept, and when its window closes
//! without a later identical violation to carry the count, that line is printed with it
//! ([`Pipeline::flush_repeats`], on ticks, so replay flushes at the same point).
use foldhash::HashMap;

use super::Pipeline;
use crate::{detect::Verdict, output::EventLine, output::LineSink};

/// Identical violations within this window print once.
const REPEAT_WINDOW_NS: u64 = 10_000_000_000;
/// Distinct repeat keys kept at most; past it, every held-back count is printed and the gate
/// starts afresh (a flood of distinct paths costs lines, never silence).
const REPEAT_KEYS_MAX: usize = 8_192;

/// (container id, rule, operation, object: a path, or a protocol and peer) of a violation.
pub(super) type RepeatKey = (String, &'static str, &'static str, Vec<u8>);

/// One key's window.
#[derive(Debug)]
struct Window {
    /// When the key last printed.
    last: u64,
    /// Occurrences held back since.
    held_back: u64,
    /// The latest held-back line and its verdicts, printed if the window closes on them.
    latest: Option<Box<(EventLine, Vec<Verdict>)>>,
}

#[derive(Debug, Default)]
pub(super) struct RepeatGate {
    windows: HashMap<RepeatKey, Window>,
}

/// A held-back line whose window closed: printed with `repeats`.
pub(super) struct Due {
    pub line: EventLine,
    pub verdicts: Vec<Verdict>,
    pub repeats: u64,
}

impl RepeatGate {
    /// Whether a violation with `key` prints at `now`: `Some(repeats held back since it last
    /// printed)`, or None when an identical one printed within the window. `folded`: identical
    /// ones the kernel already counted into this event instead of sending. `suppressed` counts
    /// every occurrence that does not print.
    fn pass(&mut self, key: RepeatKey, now: u64, folded: u64, suppressed: &mut u64) -> Option<u64> {
        *suppressed += folded;
        match self.windows.get_mut(&key) {
            Some(window) if now.saturating_sub(window.last) < REPEAT_WINDOW_NS => {
                window.held_back += 1 + folded;
                *suppressed += 1;
                None
            }
            Some(window) => {
                window.last = now;
                window.latest = None;
                Some(std::mem::take(&mut window.held_back) + folded)
            }
            None => {
                self.windows.insert(
                    key,
                    Window {
                        last: now,
                        held_back: 0,
                        latest: None,
                    },
                );
                Some(folded)
            }
        }
    }

    /// Keeps `line` as the latest held back for `key` (after [`RepeatGate::pass`] said None).
    pub(super) fn hold_line(&mut self, key: &RepeatKey, line: EventLine, verdicts: Vec<Verdict>) {
        if let Some(window) = self.windows.get_mut(key) {
            window.latest = Some(Box::new((line, verdicts)));
        }
    }

    /// Held-back lines whose window closed by `now` (all of them when the gate is over its
    /// bound), in a stable order; quiet windows age out.
    pub(super) fn take_due(&mut self, now: u64) -> Vec<Due> {
        let everything = self.windows.len() > REPEAT_KEYS_MAX;
        let mut due = Vec::new();
        self.windows.retain(|_, window| {
            let closed = now.saturating_sub(window.last) >= REPEAT_WINDOW_NS;
            if window.held_back > 0 && (closed || everything) {
                if let Some(latest) = window.latest.take() {
                    let (line, verdicts) = *latest;
                    due.push(Due {
                        line,
                        verdicts,
                        repeats: window.held_back,
                    });
                    return false;
                }
            }
            // A count without a line (it cannot print) stays for the next identical violation.
            !everything && (window.held_back > 0 || !closed)
        });
        // The map's order is random per process; replay must print in the same order as live.
        due.sort_by(|a, b| {
            (a.line.time.unix_ns, a.line.to_json()).cmp(&(b.line.time.unix_ns, b.line.to_json()))
        });
        due
    }
}

impl Pipeline {
    /// [`RepeatGate::pass`], counting what it holds back in the stats.
    pub(super) fn repeat_gate(&mut self, key: RepeatKey, now: u64, folded: u64) -> Option<u64> {
        self.repeats
            .pass(key, now, folded, &mut self.stats.repeats_suppressed)
    }

    /// Prints the held-back lines whose window closed by `now`, each with its count.
    pub(super) fn flush_repeats(&mut self, now: u64, sink: &mut dyn LineSink) {
        for due in self.repeats.take_due(now) {
            self.emit_line(due.line, due.verdicts, false, due.repeats, sink);
        }
    }
}
