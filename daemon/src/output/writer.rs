//! Getting lines out without letting a slow reader slow the daemon: a bounded queue in front of
//! a dedicated writer thread. A full queue drops the line and counts it; the count comes back in
//! the next `loss` line, so nothing is lost silently.
use std::{
    io::{BufWriter, Write},
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{sync_channel, SyncSender, TrySendError},
        Arc,
    },
    thread::JoinHandle,
};

use super::EventLine;

/// Where the pipeline puts its lines.
pub trait LineSink {
    fn emit(&mut self, line: &EventLine);
    /// Lines this sink had to drop since start (monotonic).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Collects lines in memory (replay into a file, tests).
impl LineSink for Vec<EventLine> {
    fn emit(&mut self, line: &EventLine) {
        self.push(line.clone());
    }
}

pub struct StdoutWriter {
    queue: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl StdoutWriter {
    /// `capacity` lines may wait for a slow reader before lines are dropped.
    pub fn spawn(capacity: usize) -> std::io::Result<Self> {
        let (queue, lines) = sync_channel::<String>(capacity);
        let thread = std::thread::Builder::new()
            .name("stdout-writer".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
                while let Ok(line) = lines.recv() {
                    out.write_all(line.as_bytes())?;
                    out.write_all(b"\n")?;
                    // Drain what is queued, then flush: batches under load (the BufWriter
                    // flushes itself when full), prompt delivery when quiet (tail -f, tests).
                    while let Ok(more) = lines.try_recv() {
                        out.write_all(more.as_bytes())?;
                        out.write_all(b"\n")?;
                    }
                    out.flush()?;
                }
                out.flush()
            })?;
        Ok(StdoutWriter {
            queue: Some(queue),
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
        })
    }

    /// Flushes everything queued and stops the writer thread.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.queue.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("stdout writer thread panicked")),
            None => Ok(()),
        }
    }
}

impl StdoutWriter {
    /// Queues a line already serialised (`EventLine::to_json`), for sinks that also need the
    /// text elsewhere (live tail).
    pub fn emit_json(&mut self, json: String) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(json) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl LineSink for StdoutWriter {
    fn emit(&mut self, line: &EventLine) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(line.to_json()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
