//! Capture files as a [`Source`] of the one driver. Consecutive files of one daemon run continue
//! one pipeline (their snapshots are skipped), so a whole capture directory replays exactly as
//! the daemon ran; a file that does not continue the previous one starts a fresh pipeline from
//! its header and snapshot.
use std::{path::PathBuf, sync::Arc};

use super::ReplayError;
use crate::{
    capture::{
        format::{EndRecord, Header},
        CaptureReader, Damage, Record,
    },
    driver::{recording::pipeline_config, run_ready, Driver, Source, Step},
    input::{Input, Request},
    output::LineSink,
    pipeline::Pipeline,
    policy::Policy,
};

/// What replaying one file found.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub header: Header,
    /// Whether it continued the previous file's pipeline.
    pub continued: bool,
    pub inputs: u64,
    /// Inputs the recorder could not record (loss records).
    pub lost_inputs: u64,
    pub policy_changes: u64,
    pub end: Option<EndRecord>,
    pub damage: Option<Damage>,
}

/// Replays `files` in order into `sink`; `observe` sees every recorded input (snapshots not
/// included). Headers are all checked before anything is printed.
pub fn replay_files(
    files: &[PathBuf],
    policy_override: Option<Arc<Policy>>,
    sink: &mut dyn LineSink,
    observe: &mut dyn FnMut(&Header, &Input),
) -> Result<Vec<FileReport>, ReplayError> {
    for path in files {
        CaptureReader::open(path)?;
    }
    let mut source = CaptureSource {
        files: files.iter(),
        policy_override,
        sink,
        observe,
        current: None,
        reports: Vec::new(),
    };
    run_ready(Driver::empty().run(&mut source))?;
    Ok(source.reports)
}

/// The file being read, and how the last one ended.
struct OpenFile {
    reader: CaptureReader,
    report: FileReport,
}

struct CaptureSource<'a, 'f> {
    files: std::slice::Iter<'f, PathBuf>,
    policy_override: Option<Arc<Policy>>,
    sink: &'a mut dyn LineSink,
    observe: &'a mut dyn FnMut(&Header, &Input),
    current: Option<OpenFile>,
    reports: Vec<FileReport>,
}

impl Source for CaptureSource<'_, '_> {
    type Error = ReplayError;

    /// Nothing here waits: every step is computed from the files at once.
    fn next(
        &mut self,
        _pipeline: Option<&Pipeline>,
    ) -> impl std::future::Future<Output = Result<Step, ReplayError>> {
        std::future::ready(self.step())
    }

    fn sink(&mut self) -> &mut dyn LineSink {
        &mut *self.sink
    }

    fn observe(&mut self, input: &Input) {
        if let Some(open) = &mut self.current {
            open.report.inputs += 1;
            (self.observe)(&open.report.header, input);
        }
    }

    /// Recorded answers follow in the stream; the questions are not needed.
    fn route(&mut self, requests: Vec<Request>) {
        drop(requests);
    }
}

impl CaptureSource<'_, '_> {
    fn step(&mut self) -> Result<Step, ReplayError> {
        let Some(open) = &mut self.current else {
            return self.open_next();
        };
        let Some(record) = open.reader.next_record()? else {
            self.close_current();
            return Ok(Step::Idle);
        };
        let continued = open.report.continued;
        let path = open.report.path.clone();
        Ok(match record {
            Record::Snapshot(inputs) if !continued => Step::Prime(inputs),
            Record::Snapshot(_) | Record::Violations(_) => Step::Idle,
            Record::Inputs(inputs) => Step::Inputs(inputs),
            Record::Policy(record) => {
                open.report.policy_changes += 1;
                if self.policy_override.is_some() {
                    tracing::info!(
                        source = record.source,
                        "recorded policy reload ignored: --policy is in force"
                    );
                    Step::Idle
                } else {
                    Step::Policy(Arc::new(recorded_policy(&path, &record)?))
                }
            }
            Record::Loss(loss) => {
                open.report.lost_inputs += loss.inputs;
                tracing::warn!(
                    file = %path.display(),
                    inputs = loss.inputs,
                    "the recorder could not keep up here: inputs are missing, so replay may differ from what the daemon printed"
                );
                Step::Idle
            }
            Record::End(end) => {
                open.report.end = Some(end);
                Step::Idle
            }
            Record::Unknown(kind) => {
                tracing::debug!(kind, "skipping a frame type this version does not know");
                Step::Idle
            }
        })
    }

    /// Opens the next file: it continues the run of the last one when that one ended by
    /// rotation and this one is its successor; otherwise a fresh pipeline starts.
    fn open_next(&mut self) -> Result<Step, ReplayError> {
        let Some(path) = self.files.next() else {
            return Ok(Step::End);
        };
        let reader = CaptureReader::open(path)?;
        let header = reader.header().clone();
        let continued = self.reports.last().is_some_and(|last| {
            last.end.as_ref().is_some_and(|end| end.reason == "rotated")
                && last.header.run_id == header.run_id
                && last.header.seq + 1 == header.seq
        });
        let step = if continued {
            Step::Idle
        } else {
            let policy = match &self.policy_override {
                Some(policy) => policy.clone(),
                None => Arc::new(recorded_policy(path, &header.policy)?),
            };
            Step::Restart {
                config: pipeline_config(&header.config),
                policy,
            }
        };
        self.current = Some(OpenFile {
            reader,
            report: FileReport {
                path: path.clone(),
                header,
                continued,
                inputs: 0,
                lost_inputs: 0,
                policy_changes: 0,
                end: None,
                damage: None,
            },
        });
        Ok(step)
    }

    /// The current file is read to its end (or its first damage): report it.
    fn close_current(&mut self) {
        let Some(OpenFile { reader, mut report }) = self.current.take() else {
            return;
        };
        if let Some(damage) = reader.damage() {
            let path = &report.path;
            match damage {
                Damage::TornTail { .. } => tracing::warn!(
                    file = %path.display(),
                    "capture truncated ({damage}): replayed everything before it (the daemon was probably killed or the machine lost power)"
                ),
                Damage::Corrupt { .. } => tracing::error!(
                    file = %path.display(),
                    "capture damaged ({damage}): replayed everything before it, skipped the rest of this file"
                ),
            }
            report.damage = Some(damage.clone());
        }
        self.reports.push(report);
    }
}

fn recorded_policy(
    path: &std::path::Path,
    record: &crate::capture::format::PolicyRecord,
) -> Result<Policy, ReplayError> {
    Policy::parse(&record.text, &record.source).map_err(|source| ReplayError::RecordedPolicy {
        path: path.to_owned(),
        source: Box::new(source),
    })
}
