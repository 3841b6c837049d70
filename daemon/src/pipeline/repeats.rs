//! The repeat gate: identical violations (same container, rule, operation and object) within
//! [`REPEAT_WINDOW_NS`] are counted, and printed once with the count of repeats held back
//! (`violation.repeats`), instead of flooding the stream (a write loop on an image file, a
//! connect loop to a forbidden peer).
use foldhash::HashMap;

use super::Pipeline;

/// Identical violations within this window print once.
const REPEAT_WINDOW_NS: u64 = 10_000_000_000;
/// Distinct repeat keys kept at most.
const REPEAT_KEYS_MAX: usize = 65_536;

/// (container id, rule, operation, object: a path, or a protocol and peer) of a violation.
pub(super) type RepeatKey = (String, &'static str, &'static str, Vec<u8>);

#[derive(Debug, Default)]
pub(super) struct RepeatGate {
    /// Last time each key was printed, and how many repeats were held back since.
    last: HashMap<RepeatKey, (u64, u64)>,
}

impl RepeatGate {
    /// Whether a violation with `key` prints at `now`: `Some(repeats held back since it last
    /// printed)`, or None when an identical one printed within the window. `folded`: identical
    /// ones the kernel already counted into this event instead of sending. `suppressed` counts
    /// every occurrence that does not print.
    fn pass(&mut self, key: RepeatKey, now: u64, folded: u64, suppressed: &mut u64) -> Option<u64> {
        *suppressed += folded;
        match self.last.get_mut(&key) {
            Some((last, held_back)) if now.saturating_sub(*last) < REPEAT_WINDOW_NS => {
                *held_back += 1 + folded;
                *suppressed += 1;
                None
            }
            Some((last, held_back)) => {
                *last = now;
                Some(std::mem::take(held_back) + folded)
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(folded)
            }
        }
    }

    /// A held-back count stays until the next identical violation prints it; only quiet entries
    /// age out (and a cap keeps the map bounded whatever happens).
    pub(super) fn expire(&mut self, now: u64) {
        self.last.retain(|_, (last, held_back)| {
            *held_back > 0 || now.saturating_sub(*last) < REPEAT_WINDOW_NS
        });
        if self.last.len() > REPEAT_KEYS_MAX {
            self.last.clear();
        }
    }
}

impl Pipeline {
    /// [`RepeatGate::pass`], counting what it holds back in the stats.
    pub(super) fn repeat_gate(&mut self, key: RepeatKey, now: u64, folded: u64) -> Option<u64> {
        self.repeats
            .pass(key, now, folded, &mut self.stats.repeats_suppressed)
    }
}
