//! When a reader drains its ring by itself, and what it promises the kernel.
//!
//! The kernel skips a ring wake-up while the daemon's published window (`DRAINING_UNTIL`) is
//! open; the daemon must therefore drain at least once at or after the window's end, and every
//! `interval` before it. A wake-up or a drain that found records means records are flowing: the
//! window is pushed to `linger` ahead. It is republished only when less than half of `linger`
//! is left, so the map is written at most a few hundred times a second, not once per drain.

/// What the reader does after a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Publish this end of the window (boot-time ns) to the kernel.
    pub publish: Option<u64>,
    /// Drain again after the interval (false: wait for the kernel's wake-up).
    pub keep_draining: bool,
}

#[derive(Debug, Clone)]
pub struct DrainSchedule {
    /// How long the window stays open after the last sign of records; 0 disables timer drains.
    linger_ns: u64,
    /// The end of the window as the kernel knows it.
    published_until: u64,
}

impl DrainSchedule {
    /// `linger_ns` 0: never drain on a timer (every paced record may wake the reader).
    pub fn new(linger_ns: u64) -> Self {
        DrainSchedule {
            linger_ns,
            published_until: 0,
        }
    }

    /// After a drain at `now` (boot-time ns) that found `records`; `woken` when the kernel's
    /// wake-up (not a timer) started it.
    pub fn after_drain(&mut self, now: u64, records: usize, woken: bool) -> Decision {
        if self.linger_ns == 0 {
            return Decision {
                publish: None,
                keep_draining: false,
            };
        }
        let flowing = woken || (records > 0 && now < self.published_until);
        if flowing {
            let publish = (self.published_until < now + self.linger_ns / 2).then(|| {
                self.published_until = now + self.linger_ns;
                self.published_until
            });
            return Decision {
                publish,
                keep_draining: true,
            };
        }
        // Before the window ends the kernel wakes nobody: keep draining. The first drain at or
        // after its end is the last (a record that lost the race with it is left to the
        // reader's sweep).
        Decision {
            publish: None,
            keep_draining: now < self.published_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_wakeup_opens_a_window_and_drains_go_on_until_it_closes() {
        let mut s = DrainSchedule::new(5 * MS);
        let d = s.after_drain(100 * MS, 1, true);
        assert_eq!(d.publish, Some(105 * MS));
        assert!(d.keep_draining);
        // Quiet drains inside the window keep going and publish nothing.
        let d = s.after_drain(102 * MS, 0, false);
        assert_eq!(
            d,
            Decision {
                publish: None,
                keep_draining: true
            }
        );
        // The first quiet drain at the window's end is the last.
        let d = s.after_drain(105 * MS, 0, false);
        assert_eq!(
            d,
            Decision {
                publish: None,
                keep_draining: false
            }
        );
    }

    #[test]
    fn records_found_by_timer_drains_extend_the_window_half_a_linger_at_a_time() {
        let mut s = DrainSchedule::new(4 * MS);
        assert_eq!(s.after_drain(0, 3, true).publish, Some(4 * MS));
        // More than half the linger left: the kernel's copy is good enough.
        assert_eq!(s.after_drain(MS, 2, false).publish, None);
        // Less than half left: pushed to a full linger ahead.
        let d = s.after_drain(3 * MS, 2, false);
        assert_eq!(d.publish, Some(7 * MS));
        assert!(d.keep_draining);
    }

    #[test]
    fn records_found_after_the_window_closed_do_not_reopen_it() {
        let mut s = DrainSchedule::new(5 * MS);
        s.after_drain(0, 1, true);
        // Past the window the kernel wakes the reader again for new records: these are the
        // last ones promised a drain.
        let d = s.after_drain(6 * MS, 1, false);
        assert_eq!(
            d,
            Decision {
                publish: None,
                keep_draining: false
            }
        );
    }

    #[test]
    fn a_sweep_that_finds_fork_and_exit_records_opens_no_window() {
        // Fork and exit records never wake the reader; its 20 ms sweep collects them, and that
        // alone is no reason to drain every interval on an idle node.
        let mut s = DrainSchedule::new(5 * MS);
        let d = s.after_drain(100 * MS, 4, false);
        assert_eq!(
            d,
            Decision {
                publish: None,
                keep_draining: false
            }
        );
    }

    #[test]
    fn linger_zero_never_drains_on_a_timer() {
        let mut s = DrainSchedule::new(0);
        let d = s.after_drain(0, 10, true);
        assert_eq!(
            d,
            Decision {
                publish: None,
                keep_draining: false
            }
        );
    }
}
