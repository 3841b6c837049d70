//! The capture writer thread: batches inputs as JSON lines, writes a compressed frame at least
//! every [`FLUSH_INTERVAL`] (or every [`BATCH_BYTES`]), asks for rotation when the file is big or
//! old enough, and deletes old files by the retention policy.
//!
//! A write that fails (a full disk, an I/O error) does not end the recording: the writer stalls,
//! counts every input it cannot keep (in the recorder's `lost`, so in `loss.capture` and
//! `sealwatch_capture_inputs_lost_total`), and every [`RESUME_EVERY`] asks for a rotation: a new
//! file that starts with a snapshot of the pipeline (replay needs nothing before it) and a loss
//! record of what is missing. The stalled file keeps what was written before the failure.
use std::{
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError},
        Arc,
    },
    time::{Duration, Instant},
};

use super::{
    format::{
        frame_type, unix_now_ns, ConfigRecord, Header, LossRecord, NodeInfo, PolicyRecord,
        ViolationsRecord, FORMAT_NAME, FORMAT_VERSION,
    },
    recorder::{Msg, RecorderOptions, Rotation},
    retention::{scan_dir, select_deletions, StoredFile},
    writer::CaptureFile,
    CaptureError,
};
use crate::input::Input;

/// The longest an input waits in memory before it is on disk.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A batch is written once this much JSON has accumulated, so frames stay small.
pub const BATCH_BYTES: usize = 256 * 1024;
/// Age-based retention is checked this often (size-based after every frame).
const RETENTION_EVERY: Duration = Duration::from_secs(10);
/// While writes fail, a new file is tried this often.
pub const RESUME_EVERY: Duration = Duration::from_secs(5);

/// Writing failed: since when, why, and what was not recorded since.
struct Stall {
    since: Instant,
    last_try: Instant,
    error: String,
    /// Inputs not written since the failure (the batch it lost included).
    lost: u64,
}

pub(super) struct WriterThread {
    opts: RecorderOptions,
    run_id: String,
    node: NodeInfo,
    config: ConfigRecord,
    policy: PolicyRecord,
    rotation: Arc<Rotation>,
    current: CaptureFile,
    closed: Vec<StoredFile>,
    batch: Vec<u8>,
    batch_since: Option<Instant>,
    violations: u64,
    last_retention: Instant,
    /// Inputs in `batch`.
    batch_inputs: u64,
    stall: Option<Stall>,
    /// Inputs not recorded, shared with the recorder (which counts what its queue refused).
    lost: Arc<AtomicU64>,
}

impl WriterThread {
    /// Creates the directory if needed, lists the files already there, opens the first file.
    pub fn open(
        opts: RecorderOptions,
        run_id: String,
        node: NodeInfo,
        config: ConfigRecord,
        policy: PolicyRecord,
        rotation: Arc<Rotation>,
        lost: Arc<AtomicU64>,
    ) -> Result<WriterThread, CaptureError> {
        create_dir(&opts.dir)?;
        let closed = scan_dir(&opts.dir).map_err(|source| CaptureError::Directory {
            path: opts.dir.clone(),
            source,
        })?;
        let seq = closed.last().map_or(1, |f| f.seq + 1);
        let header = header(&run_id, seq, &node, &config, &policy);
        let current = CaptureFile::create(&opts.dir, &header)?;
        tracing::info!(file = %current.info.path.display(), "capture: recording");
        let mut thread = WriterThread {
            opts,
            run_id,
            node,
            config,
            policy,
            rotation,
            current,
            closed,
            batch: Vec::with_capacity(BATCH_BYTES + 4096),
            batch_since: None,
            violations: 0,
            last_retention: Instant::now(),
            batch_inputs: 0,
            stall: None,
            lost,
        };
        thread.enforce_retention();
        Ok(thread)
    }

    pub fn run(mut self, rx: Receiver<Msg>) -> Result<(), CaptureError> {
        let result = self.serve(&rx).and_then(|()| {
            let (path, inputs) = (self.current.info.path.clone(), self.current.inputs);
            self.current.close("stopped")?;
            tracing::info!(file = %path.display(), inputs, "capture: closed");
            Ok(())
        });
        if let Err(err) = &result {
            tracing::error!(
                err = super::describe(err),
                "capture: writer stopped; inputs are no longer recorded"
            );
        }
        result
    }

    /// Writes until the recorder hangs up, then flushes. A failed write stalls the recording
    /// (see the module's comment) instead of ending it.
    fn serve(&mut self, rx: &Receiver<Msg>) -> Result<(), CaptureError> {
        loop {
            let wait = self.batch_since.map_or(FLUSH_INTERVAL, |t| {
                FLUSH_INTERVAL.saturating_sub(t.elapsed())
            });
            let step = match rx.recv_timeout(wait) {
                Ok(msg) if self.stall.is_some() => self.handle_stalled(msg),
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => Ok(()),
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let due = self
                .batch_since
                .is_some_and(|t| t.elapsed() >= FLUSH_INTERVAL);
            let step = step.and_then(|()| {
                if self.stall.is_none() && (due || self.batch.len() >= BATCH_BYTES) {
                    self.flush()
                } else {
                    Ok(())
                }
            });
            if let Err(err) = step {
                self.stalled(&err);
            }
            self.check_rotation();
            if self.last_retention.elapsed() >= RETENTION_EVERY {
                self.enforce_retention();
            }
        }
        match &self.stall {
            Some(stall) => Err(CaptureError::Writer(format!(
                "stopped while stalled ({}): {} inputs since were not recorded",
                stall.error, stall.lost
            ))),
            None => self.flush(),
        }
    }

    /// A write failed: what the batch held is lost, and the recording waits for room.
    fn stalled(&mut self, err: &CaptureError) {
        let dropped = self.batch_inputs;
        self.batch.clear();
        self.batch_inputs = 0;
        self.batch_since = None;
        self.lost.fetch_add(dropped, Ordering::Relaxed);
        self.rotation.in_flight.store(false, Ordering::Relaxed);
        match &mut self.stall {
            Some(stall) => {
                stall.lost += dropped;
                stall.error = super::describe(err);
            }
            None => {
                tracing::error!(
                    err = super::describe(err),
                    file = %self.current.info.path.display(),
                    "capture: writing failed; inputs are counted as lost (loss.capture, \
                     sealwatch_capture_inputs_lost_total) and a new file is tried every {}s",
                    RESUME_EVERY.as_secs()
                );
                self.stall = Some(Stall {
                    since: Instant::now(),
                    last_try: Instant::now(),
                    error: super::describe(err),
                    lost: dropped,
                });
            }
        }
    }

    /// While stalled: inputs are counted, policy and violations kept for the next file, and a
    /// rotation is the attempt to resume.
    fn handle_stalled(&mut self, msg: Msg) -> Result<(), CaptureError> {
        let Some(stall) = &mut self.stall else {
            return self.handle(msg);
        };
        match msg {
            Msg::Input { .. } => {
                stall.lost += 1;
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
            Msg::Policy(policy) => self.policy = policy,
            Msg::Violations(count) => self.violations += count,
            Msg::Rotate(snapshot) => {
                stall.last_try = Instant::now();
                let missing = stall.lost;
                self.rotate(&snapshot)?;
                let loss = serde_json::to_vec(&LossRecord { inputs: missing })?;
                self.current.append(frame_type::LOSS, &loss, false)?;
                if let Some(stall) = self.stall.take() {
                    tracing::info!(
                        file = %self.current.info.path.display(),
                        lost = stall.lost,
                        stalled_secs = stall.since.elapsed().as_secs(),
                        "capture: recording again"
                    );
                }
            }
        }
        Ok(())
    }

    fn handle(&mut self, msg: Msg) -> Result<(), CaptureError> {
        match msg {
            Msg::Input { input, lost_before } => {
                if lost_before > 0 {
                    self.flush()?;
                    let loss = serde_json::to_vec(&LossRecord {
                        inputs: lost_before,
                    })?;
                    self.current.append(frame_type::LOSS, &loss, false)?;
                }
                serde_json::to_writer(&mut self.batch, &input)?;
                self.batch.push(b'\n');
                self.batch_inputs += 1;
                self.current.inputs += 1;
                self.batch_since.get_or_insert_with(Instant::now);
            }
            Msg::Policy(policy) => {
                self.flush()?;
                self.current
                    .append(frame_type::POLICY, &serde_json::to_vec(&policy)?, false)?;
                self.policy = policy;
            }
            Msg::Violations(count) => {
                self.violations += count;
                self.batch_since.get_or_insert_with(Instant::now);
            }
            Msg::Rotate(snapshot) => self.rotate(&snapshot)?,
        }
        Ok(())
    }

    /// Writes the batch as one frame, then the violations seen since the last frame.
    fn flush(&mut self) -> Result<(), CaptureError> {
        if !self.batch.is_empty() {
            self.current.append(frame_type::INPUTS, &self.batch, true)?;
            self.batch.clear();
            self.batch_inputs = 0;
        }
        self.batch_since = None;
        if self.violations > 0 {
            let record = ViolationsRecord {
                unix_ns: unix_now_ns(),
                count: self.violations,
            };
            self.current
                .append(frame_type::VIOLATIONS, &serde_json::to_vec(&record)?, false)?;
            self.current.info.violations.push(record.unix_ns);
            self.violations = 0;
        }
        if self.total_bytes() > self.opts.retention.max_bytes {
            self.enforce_retention();
        }
        Ok(())
    }

    fn rotate(&mut self, snapshot: &[Input]) -> Result<(), CaptureError> {
        if self.stall.is_none() {
            self.flush()?;
        }
        let next = self.open_next()?;
        let old = std::mem::replace(&mut self.current, next);
        if self.stall.is_some() {
            // Its end record may not fit either; the reader takes a file without one as one
            // whose writer stopped there.
            let info = old.info.clone();
            self.closed.push(old.close("stalled").unwrap_or(info));
        } else {
            self.closed.push(old.close("rotated")?);
        }
        let mut lines = Vec::new();
        for input in snapshot {
            serde_json::to_writer(&mut lines, input)?;
            lines.push(b'\n');
        }
        self.current.append(frame_type::SNAPSHOT, &lines, true)?;
        self.rotation.in_flight.store(false, Ordering::Relaxed);
        tracing::debug!(file = %self.current.info.path.display(), "capture: rotated");
        self.enforce_retention();
        Ok(())
    }

    fn open_next(&self) -> Result<CaptureFile, CaptureError> {
        let seq = self.current.info.seq + 1;
        let header = header(&self.run_id, seq, &self.node, &self.config, &self.policy);
        CaptureFile::create(&self.opts.dir, &header)
    }

    fn check_rotation(&self) {
        if self.rotation.in_flight.load(Ordering::Relaxed) {
            return;
        }
        if let Some(stall) = &self.stall {
            if stall.last_try.elapsed() >= RESUME_EVERY {
                self.rotation.wanted.store(true, Ordering::Relaxed);
            }
            return;
        }
        if self.current.info.bytes >= self.opts.file_bytes
            || self.current.opened.elapsed() >= self.opts.file_age
        {
            self.rotation.wanted.store(true, Ordering::Relaxed);
        }
    }

    fn total_bytes(&self) -> u64 {
        self.current.info.bytes + self.closed.iter().map(|f| f.bytes).sum::<u64>()
    }

    /// Deletes what the retention policy says; a failed delete is logged and retried later.
    fn enforce_retention(&mut self) {
        self.last_retention = Instant::now();
        let doomed = select_deletions(
            &self.closed,
            &self.current.info,
            unix_now_ns(),
            &self.opts.retention,
        );
        let mut gone = Vec::new();
        for index in doomed {
            let path = &self.closed[index].path;
            match std::fs::remove_file(path) {
                Ok(()) => gone.push(index),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => gone.push(index),
                Err(err) => {
                    tracing::warn!(file = %path.display(), %err, "capture: cannot delete old file")
                }
            }
        }
        for index in gone.into_iter().rev() {
            let file = self.closed.remove(index);
            tracing::debug!(file = %file.path.display(), "capture: deleted by retention");
        }
    }
}

fn header(
    run_id: &str,
    seq: u64,
    node: &NodeInfo,
    config: &ConfigRecord,
    policy: &PolicyRecord,
) -> Header {
    Header {
        format: FORMAT_NAME.to_owned(),
        version: FORMAT_VERSION,
        encoding: "json-lines".to_owned(),
        compression: "zstd".to_owned(),
        run_id: run_id.to_owned(),
        seq,
        started_unix_ns: unix_now_ns(),
        node: node.clone(),
        config: config.clone(),
        policy: policy.clone(),
    }
}

/// Creates the capture directory with mode 0700 (it records every command line of the node).
fn create_dir(dir: &Path) -> Result<(), CaptureError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| CaptureError::Directory {
            path: dir.to_owned(),
            source,
        })
}
