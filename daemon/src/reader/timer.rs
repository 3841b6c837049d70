//! A periodic timer with microsecond resolution for the readers' own drains. tokio's timers
//! round up to whole milliseconds, which alone would break a sub-millisecond latency budget.
use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    time::Duration,
};

use nix::sys::{
    time::TimeSpec,
    timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
};
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct DrainTimer {
    fd: AsyncFd<Fd>,
    interval: Duration,
    running: bool,
}

impl DrainTimer {
    pub fn new(interval: Duration) -> io::Result<Self> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the AsyncFd owns the timer, so the fd stays open while it is registered.
        let fd = unsafe { AsyncFd::register(Fd(timer)) }.map_err(|err| err.into_parts().1)?;
        Ok(DrainTimer {
            fd,
            interval,
            running: false,
        })
    }

    pub fn running(&self) -> bool {
        self.running
    }

    /// Ticks every interval from now on (no-op when already running).
    pub fn start(&mut self) -> io::Result<()> {
        if !self.running {
            let every = Expiration::Interval(TimeSpec::from_duration(self.interval));
            self.fd.get_ref().0.set(every, TimerSetTimeFlags::empty())?;
            self.running = true;
        }
        Ok(())
    }

    /// No more ticks. Should disarming fail, the ticks still come but are no longer awaited.
    pub fn stop(&mut self) {
        if self.running {
            self.running = false;
            if let Err(err) = self.fd.get_ref().0.unset() {
                tracing::debug!(%err, "disarming the drain timer failed");
            }
        }
    }

    /// The next tick (ticks missed meanwhile count as one).
    pub async fn tick(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable_mut().await?;
            // The expiry count is read to re-arm readiness; its value does not matter.
            match nix::unistd::read(guard.get_inner().as_raw_fd(), &mut [0u8; 8]) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(err) => return Err(err.into()),
            }
        }
    }
}
