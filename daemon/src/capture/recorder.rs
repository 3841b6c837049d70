//! The live side of the flight recorder. The event path only clones the input into a bounded
//! queue (`try_send`, never blocking); encoding, compression, writing, rotation and retention
//! happen on a dedicated thread ([`super::thread`]).
//!
//! Inputs that do not fit the queue, or that the writer cannot write (a full disk), are not
//! recorded: they are counted ([`Recorder::lost`]: `loss.capture` on the daemon's `loss` lines,
//! `sealwatch_capture_inputs_lost_total`), logged, and marked in the capture with a loss record
//! at the point where they are missing.
//! Control messages (policy change, rotation) are never dropped: they wait in a small local
//! queue and go first when there is room again.
use std::{
    collections::VecDeque,
    io::Read,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{sync_channel, SyncSender, TrySendError},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::{
    format::{unix_now_ns, ConfigRecord, NodeInfo, PolicyRecord},
    retention::RetentionPolicy,
    thread::WriterThread,
    CaptureError,
};
use crate::{input::Input, policy::Policy};

/// How often a full queue is logged.
const LOSS_LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct RecorderOptions {
    pub dir: PathBuf,
    /// A file is closed and the next begun at this size...
    pub file_bytes: u64,
    /// ...or at this age.
    pub file_age: Duration,
    pub retention: RetentionPolicy,
    /// Inputs that may wait for the writer thread.
    pub queue: usize,
}

pub(super) enum Msg {
    Input {
        input: Box<Input>,
        /// Inputs not recorded just before this one.
        lost_before: u64,
    },
    Policy(PolicyRecord),
    /// Close the file, start the next with this snapshot.
    Rotate(Vec<Input>),
    Violations(u64),
}

/// Rotation handshake: the writer thread asks (`wanted`), the event loop answers with a snapshot
/// of the pipeline (`in_flight` until the writer has used it, so it is not asked twice).
#[derive(Debug, Default)]
pub(super) struct Rotation {
    pub wanted: AtomicBool,
    pub in_flight: AtomicBool,
}

pub struct Recorder {
    tx: Option<SyncSender<Msg>>,
    pending: VecDeque<Msg>,
    lost: Arc<AtomicU64>,
    unreported_lost: u64,
    unsent_violations: u64,
    rotation: Arc<Rotation>,
    thread: Option<JoinHandle<Result<(), CaptureError>>>,
    last_loss_log: Option<Instant>,
}

impl Recorder {
    /// Opens the first file in `opts.dir` (created with mode 0700 when missing) and starts the
    /// writer thread. Errors here are start-up errors: the operator asked for a capture.
    pub fn start(
        opts: RecorderOptions,
        config: ConfigRecord,
        policy: &Policy,
    ) -> Result<Recorder, CaptureError> {
        let rotation = Arc::new(Rotation::default());
        let lost = Arc::new(AtomicU64::new(0));
        let writer = WriterThread::open(
            opts.clone(),
            run_id(),
            NodeInfo::current(),
            config,
            PolicyRecord::of(policy),
            rotation.clone(),
            lost.clone(),
        )?;
        let (tx, rx) = sync_channel(opts.queue.max(1));
        let thread = std::thread::Builder::new()
            .name("capture-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(CaptureError::Thread)?;
        Ok(Recorder {
            tx: Some(tx),
            pending: VecDeque::new(),
            lost,
            unreported_lost: 0,
            unsent_violations: 0,
            rotation,
            thread: Some(thread),
            last_loss_log: None,
        })
    }

    /// Queues `input` for recording; never blocks.
    pub fn record(&mut self, input: &Input) {
        if !self.send_pending() {
            self.lose();
            return;
        }
        let Some(tx) = &self.tx else { return };
        let msg = Msg::Input {
            input: Box::new(input.clone()),
            lost_before: self.unreported_lost,
        };
        match tx.try_send(msg) {
            Ok(()) => self.unreported_lost = 0,
            Err(_) => self.lose(),
        }
    }

    /// The policy was replaced (SIGHUP reload): recorded at this point of the stream, and put in
    /// the header of every later file.
    pub fn policy_changed(&mut self, policy: &Policy) {
        self.pending
            .push_back(Msg::Policy(PolicyRecord::of(policy)));
        self.send_pending();
    }

    /// `count` violation lines were just printed (keeps this file longer, see retention).
    pub fn violations(&mut self, count: u64) {
        self.unsent_violations += count;
        if let Some(tx) = &self.tx {
            if tx.try_send(Msg::Violations(self.unsent_violations)).is_ok() {
                self.unsent_violations = 0;
            }
        }
    }

    /// Whether the writer wants a new file (size or age reached) and so a pipeline snapshot.
    pub fn wants_rotation(&self) -> bool {
        self.tx.is_some()
            && self.rotation.wanted.load(Ordering::Relaxed)
            && !self.rotation.in_flight.load(Ordering::Relaxed)
    }

    /// Starts the next file with `snapshot` (from `Pipeline::snapshot`).
    pub fn rotate(&mut self, snapshot: Vec<Input>) {
        self.rotation.wanted.store(false, Ordering::Relaxed);
        self.rotation.in_flight.store(true, Ordering::Relaxed);
        self.pending.push_back(Msg::Rotate(snapshot));
        self.send_pending();
    }

    /// Inputs not recorded since start (queue full or writer failed).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Sends what is pending (blocking: the daemon is stopping), closes the file, joins the thread.
    pub fn finish(mut self) -> Result<(), CaptureError> {
        if let Some(tx) = self.tx.take() {
            for msg in self.pending.drain(..) {
                let _ = tx.send(msg);
            }
            if self.unsent_violations > 0 {
                let _ = tx.send(Msg::Violations(self.unsent_violations));
            }
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(CaptureError::Writer("panicked".into())),
            None => Ok(()),
        }
    }

    /// Sends queued control messages in order; false while some still wait.
    fn send_pending(&mut self) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        while let Some(msg) = self.pending.pop_front() {
            match tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(msg)) => {
                    self.pending.push_front(msg);
                    return false;
                }
                Err(TrySendError::Disconnected(_)) => {
                    // The writer stopped on an error it logged; recording is over.
                    self.pending.clear();
                    self.tx = None;
                    return false;
                }
            }
        }
        true
    }

    fn lose(&mut self) {
        let total = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
        self.unreported_lost += 1;
        if self
            .last_loss_log
            .is_none_or(|at| at.elapsed() >= LOSS_LOG_EVERY)
        {
            self.last_loss_log = Some(Instant::now());
            tracing::warn!(
                lost_total = total,
                writer_running = self.tx.is_some(),
                "capture: inputs not recorded (the capture writer is behind or stopped); \
                 counted in the `capture` field of loss lines"
            );
        }
    }
}

/// A random id for this run (16 hex digits), so replay knows which files continue each other.
fn run_id() -> String {
    let mut bytes = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // Unique enough within one directory: the start time.
        bytes = unix_now_ns().to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
