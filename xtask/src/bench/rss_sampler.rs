//! The daemon's resident set while it is under load: a thread reads VmRSS from
//! /proc/PID/status every [`PERIOD`] and keeps the highest value. (VmHWM, the kernel's own peak,
//! also covers start-up: loading and verifying the programs, reading /proc for every process.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::procfs;

const PERIOD: Duration = Duration::from_millis(100);

/// A running sampler; [`RssSampler::stop`] returns the highest VmRSS seen.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling `pid` now (one sample at once, then every [`PERIOD`]).
    pub fn start(pid: u32) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, max_kib) = (stop.clone(), max_kib.clone());
            std::thread::Builder::new()
                .name("bench-rss".into())
                .spawn(move || loop {
                    if let Some(kib) = procfs::status_kib(pid, "VmRSS") {
                        max_kib.fetch_max(kib, Ordering::Relaxed);
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(PERIOD);
                })
                .context("starting the RSS sampler thread")?
        };
        Ok(RssSampler {
            stop,
            max_kib,
            thread,
        })
    }

    /// Takes a last sample and returns the highest VmRSS in KiB (`None` if none was read).
    pub fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        Some(self.max_kib.load(Ordering::Relaxed)).filter(|&k| k > 0)
    }
}
