//! Getting lines out without letting a slow reader slow the daemon. Once per turn of the daemon's
//! loop, the lines of that turn go out in one non-blocking write (`RWF_NOWAIT`) from the loop's
//! own thread. What the reader cannot take at once goes to a dedicated writer thread, which
//! blocks for it; so do all lines while that thread has any waiting (order is kept). At most
//! `capacity` lines and `capacity_bytes` bytes wait for that thread (the memory a stalled reader
//! can cost); beyond that a line is dropped and counted, and the count comes back in the next
//! `loss` line, so nothing is lost silently.
//!
//! Why not always the thread: waking it for every turn cost one context switch per line, about
//! half the daemon's CPU under an exec storm.
use std::{
    io::{BufWriter, Write},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc::{channel, Sender},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
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

/// Newline-terminated lines for the writer thread, and how many there are.
struct Batch {
    bytes: Vec<u8>,
    lines: usize,
}

pub struct StdoutWriter {
    queue: Option<Sender<Batch>>,
    batch: Batch,
    /// Lines handed to the writer thread and not yet written, and their bytes.
    waiting: Arc<AtomicUsize>,
    waiting_bytes: Arc<AtomicUsize>,
    capacity: usize,
    capacity_bytes: usize,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    /// False once stdout refused a non-blocking write (a terminal, some file systems): then
    /// every batch goes through the thread.
    direct: bool,
}

impl StdoutWriter {
    /// `capacity` lines, and at most `capacity_bytes` bytes, may wait for a slow reader before
    /// lines are dropped.
    pub fn spawn(capacity: usize, capacity_bytes: usize) -> std::io::Result<Self> {
        widen_stdout_pipe();
        let (queue, batches) = channel::<Batch>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let waiting_bytes = Arc::new(AtomicUsize::new(0));
        let written = waiting.clone();
        let written_bytes = waiting_bytes.clone();
        let thread = std::thread::Builder::new()
            .name("stdout-writer".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
                while let Ok(batch) = batches.recv() {
                    out.write_all(&batch.bytes)?;
                    let (mut lines, mut bytes) = (batch.lines, batch.bytes.len());
                    drop(batch);
                    // Drain what is queued, then flush: batches under load (the BufWriter
                    // flushes itself when full), prompt delivery when quiet (tail -f, tests).
                    while let Ok(more) = batches.try_recv() {
                        out.write_all(&more.bytes)?;
                        lines += more.lines;
                        bytes += more.bytes.len();
                    }
                    out.flush()?;
                    // Only once flushed: the loop writes directly again when nothing waits.
                    written_bytes.fetch_sub(bytes, Ordering::Relaxed);
                    written.fetch_sub(lines, Ordering::Release);
                }
                out.flush()
            })?;
        Ok(StdoutWriter {
            queue: Some(queue),
            batch: Batch {
                bytes: Vec::new(),
                lines: 0,
            },
            waiting,
            waiting_bytes,
            capacity,
            capacity_bytes,
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Some(thread),
            direct: true,
        })
    }

    /// Adds a line already serialised (`EventLine::to_json`) to the batch, for sinks that also
    /// need the text elsewhere (live tail). Dropped and counted when `capacity` lines wait.
    pub fn emit_json(&mut self, json: &str) {
        if !self.has_room(json.len() + 1) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.batch.bytes.extend_from_slice(json.as_bytes());
        self.batch.bytes.push(b'\n');
        self.batch.lines += 1;
    }

    /// Another line of `bytes` fits: fewer than `capacity` lines and at most `capacity_bytes`
    /// bytes would wait (and the writer runs).
    fn has_room(&self, bytes: usize) -> bool {
        self.queue.is_some()
            && self.waiting.load(Ordering::Relaxed) + self.batch.lines < self.capacity
            && self.waiting_bytes.load(Ordering::Relaxed) + self.batch.bytes.len() + bytes
                <= self.capacity_bytes
    }

    /// Hands the batch to the writer thread (one wake-up for all its lines).
    pub fn end_batch(&mut self) {
        if self.batch.lines == 0 {
            return;
        }
        let Some(queue) = &self.queue else { return };
        if self.direct && self.waiting.load(Ordering::Acquire) == 0 {
            match write_nowait(&self.batch.bytes) {
                // All out: the buffer is kept for the next turn.
                Ok(n) if n == self.batch.bytes.len() => {
                    self.batch.bytes.clear();
                    self.batch.lines = 0;
                    return;
                }
                // The rest of a line written in part still goes first, through the thread.
                Ok(n) => {
                    self.batch.bytes.drain(..n);
                }
                Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => {}
                Err(err) => {
                    tracing::debug!(%err, "stdout takes no non-blocking writes: using the writer thread");
                    self.direct = false;
                }
            }
        }
        // The next batch is likely as large: one allocation instead of a run of doublings.
        let next_capacity = self.batch.bytes.len().min(BATCH_CAPACITY_MAX);
        let batch = std::mem::replace(
            &mut self.batch,
            Batch {
                bytes: Vec::with_capacity(next_capacity),
                lines: 0,
            },
        );
        let (lines, bytes) = (batch.lines, batch.bytes.len());
        self.waiting_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.waiting.fetch_add(lines, Ordering::Relaxed);
        if queue.send(batch).is_err() {
            // The writer stopped (stdout closed or failed): its error comes out of `finish`.
            self.waiting.fetch_sub(lines, Ordering::Relaxed);
            self.waiting_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.dropped.fetch_add(lines as u64, Ordering::Relaxed);
        }
    }

    /// Writes the last batch, flushes everything queued and stops the writer thread. A reader
    /// that takes nothing for `grace` does not hold the daemon's exit hostage: the lines still
    /// waiting are then given up, and the error says how many.
    pub fn finish(mut self, grace: Duration) -> std::io::Result<()> {
        self.end_batch();
        self.queue.take();
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + grace;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                let waiting = self.waiting.load(Ordering::Acquire);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "stdout took nothing for {}: the last {waiting} lines are lost",
                        humantime::format_duration(grace)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match thread.join() {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::other("stdout writer thread panicked")),
        }
    }
}

impl LineSink for StdoutWriter {
    /// Serialises straight into the batch.
    fn emit(&mut self, line: &EventLine) {
        if !self.has_room(0) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let start = self.batch.bytes.len();
        line.write_json(&mut self.batch.bytes);
        self.batch.bytes.push(b'\n');
        // Its size is only known now: over the byte bound, it is taken back out.
        if !self.has_room(0) {
            self.batch.bytes.truncate(start);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.batch.lines += 1;
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Largest buffer a new batch starts with.
const BATCH_CAPACITY_MAX: usize = 1 << 20;

/// What stdout's pipe is asked to hold. Lines of a busy turn (a connect storm prints up to about
/// 300 KiB per 5 ms, while the reader takes them) then mostly fit in one non-blocking write,
/// where the default 64 KiB sent most of them through the writer thread: a wake-up and a
/// blocking write per turn (2400 context switches of the daemon in a 3 s storm, about 800 with
/// this). A quarter of `/proc/sys/fs/pipe-max-size`'s default, so it works unprivileged too.
const STDOUT_PIPE_BYTES: i32 = 256 << 10;

/// Grows stdout's pipe buffer when stdout is a pipe (a container runtime's log pipe, `| jq`).
/// Best effort: a smaller pipe only means more turns go through the writer thread.
fn widen_stdout_pipe() {
    use nix::fcntl::{fcntl, FcntlArg};
    use std::os::fd::AsRawFd as _;
    let stdout = std::io::stdout();
    let fd = stdout.as_raw_fd();
    let is_pipe =
        nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    if !is_pipe {
        return;
    }
    match fcntl(fd, FcntlArg::F_SETPIPE_SZ(STDOUT_PIPE_BYTES)) {
        Ok(size) => tracing::debug!(size, "stdout pipe widened"),
        Err(err) => tracing::debug!(%err, "stdout pipe keeps its size"),
    }
}

/// One `pwritev2(stdout, RWF_NOWAIT)`: writes what the pipe or socket takes now, or fails with
/// EAGAIN instead of blocking. Neither std nor nix offer the flag, and setting `O_NONBLOCK` on
/// stdout would change a file description the daemon shares (a terminal, its parent's pipe).
fn write_nowait(bytes: &[u8]) -> std::io::Result<usize> {
    let iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    loop {
        // SAFETY: `iov` points at `bytes`, alive and unmodified for the call; offset -1 writes at
        // the file position like write(2).
        let written = unsafe { libc::pwritev2(libc::STDOUT_FILENO, &iov, 1, -1, libc::RWF_NOWAIT) };
        if written >= 0 {
            return Ok(written as usize);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
