//! When a reader drains its ring by itself, and what it promises the kernel.
//!
//! The kernel skips a ring wake-up while the daemon's published window (`DRAINING_UNTIL`) is
//! open; the daemon must therefore drain every `interval` before the window ends and at least
//! once at or after its end. A wake-up, or a drain inside the window that found records, means
//! records are flowing: the window must then reach past the next drain with room to spare for a
//! late timer (one and a half intervals ahead), else it is pushed to three intervals ahead. So
//! under a steady flow the map is written every other drain, and the kernel never forces a
//! wake-up; when records stop, at most three empty drains follow.
//!
//! Three intervals is also at least one wake-up pace (the interval is the pace): when a window
//! closes, every CPU last forced a wake-up at least a pace ago, so the next record wakes the
//! reader at once.

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
    /// Between two timer drains; 0 disables them.
    interval_ns: u64,
    /// The end of the window as the kernel knows it.
    published_until: u64,
}

impl DrainSchedule {
    /// `interval_ns` 0: never drain on a timer (every paced record may wake the reader).
    pub fn new(interval_ns: u64) -> Self {
        DrainSchedule {
            interval_ns,
            published_until: 0,
        }
    }

    /// After a drain at `now` (boot-time ns) that found `records`; `woken` when the kernel's
    /// wake-up (not a timer) started it.
    pub fn after_drain(&mut self, now: u64, records: usize, woken: bool) -> Decision {
        if self.interval_ns == 0 {
            return Decision {
                publish: None,
                keep_draining: false,
            };
        }
        let flowing = woken || (records > 0 && now < self.published_until);
        if flowing {
            let enough = now.saturating_add(self.interval_ns.saturating_mul(3) / 2);
            let publish = (self.published_until < enough).then(|| {
                self.published_until = now.saturating_add(self.interval_ns.saturating_mul(3));
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
        assert_eq!(d.publish, Some(115 * MS));
        assert!(d.keep_draining);
        // Quiet drains inside the window keep going and publish nothing.
        for at in [105, 110] {
            let d = s.after_drain(at * MS, 0, false);
            assert_eq!(
                d,
                Decision {
                    publish: None,
                    keep_draining: true
                }
            );
        }
        // The first quiet drain at the window's end is the last.
        let d = s.after_drain(115 * MS, 0, false);
        assert_eq!(
            d,
            Decision {
                publish: None,
                keep_draining: false
            }
        );
    }

    #[test]
    fn a_steady_flow_keeps_the_window_ahead_of_the_next_drain() {
        let mut s = DrainSchedule::new(5 * MS);
        assert_eq!(s.after_drain(0, 3, true).publish, Some(15 * MS));
        let mut published = 0;
        // Timer drains a little late, each finding records: the window never closes on them.
        for i in 1..=20 {
            let now = i * 5 * MS + i * 100_000;
            let d = s.after_drain(now, 2, false);
            assert!(d.keep_draining, "drain {i} found the window closed");
            if let Some(until) = d.publish {
                assert!(
                    until >= now + 10 * MS,
                    "{until} does not cover the next drains"
                );
                published += 1;
            }
        }
        assert_eq!(published, 10, "written every other drain");
    }

    #[test]
    fn records_found_after_the_window_closed_do_not_reopen_it() {
        let mut s = DrainSchedule::new(5 * MS);
        s.after_drain(0, 1, true);
        // Past the window the kernel wakes the reader again for new records: these are the
        // last ones promised a drain.
        let d = s.after_drain(16 * MS, 1, false);
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
    fn interval_zero_never_drains_on_a_timer() {
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
