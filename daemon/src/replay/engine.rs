//! Feeding capture files through fresh pipelines. Consecutive files of one daemon run continue
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
    output::{EventLine, LineSink},
    pipeline::{Input, Pipeline},
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

/// A sink that forgets: lines printed while a snapshot is taken in belong to the past.
struct Discard;

impl LineSink for Discard {
    fn emit(&mut self, _line: &EventLine) {}
}

struct Running {
    pipeline: Pipeline,
    run_id: String,
    seq: u64,
    /// The file ended by rotation, so the next one of the run continues it.
    open_ended: bool,
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
    let mut running: Option<Running> = None;
    let mut reports = Vec::new();
    for path in files {
        let mut reader = CaptureReader::open(path)?;
        let header = reader.header().clone();
        let continued = running
            .as_ref()
            .is_some_and(|r| r.open_ended && r.run_id == header.run_id && r.seq + 1 == header.seq);
        if !continued {
            if let Some(mut done) = running.take() {
                done.pipeline.finish(sink);
            }
            let policy = match &policy_override {
                Some(policy) => policy.clone(),
                None => Arc::new(recorded_policy(path, &header.policy)?),
            };
            running = Some(Running {
                pipeline: Pipeline::new(header.config.to_config(), policy),
                run_id: header.run_id.clone(),
                seq: header.seq,
                open_ended: false,
            });
        }
        let Some(run) = running.as_mut() else {
            continue;
        };
        run.seq = header.seq;
        run.open_ended = false;
        let mut report = FileReport {
            path: path.clone(),
            header,
            continued,
            inputs: 0,
            lost_inputs: 0,
            policy_changes: 0,
            end: None,
            damage: None,
        };
        while let Some(record) = reader.next_record()? {
            match record {
                Record::Snapshot(inputs) if !continued => {
                    for input in inputs {
                        run.pipeline.handle(input, &mut Discard);
                    }
                    drop(run.pipeline.take_requests());
                }
                Record::Snapshot(_) => {}
                Record::Inputs(inputs) => {
                    for input in inputs {
                        report.inputs += 1;
                        observe(&report.header, &input);
                        run.pipeline.handle(input, sink);
                        // Recorded answers follow in the stream; the questions are not needed.
                        drop(run.pipeline.take_requests());
                    }
                }
                Record::Policy(record) => {
                    report.policy_changes += 1;
                    if policy_override.is_some() {
                        tracing::info!(
                            source = record.source,
                            "recorded policy reload ignored: --policy is in force"
                        );
                    } else {
                        run.pipeline
                            .set_policy(Arc::new(recorded_policy(path, &record)?));
                    }
                }
                Record::Loss(loss) => {
                    report.lost_inputs += loss.inputs;
                    tracing::warn!(
                        file = %path.display(),
                        inputs = loss.inputs,
                        "the recorder could not keep up here: inputs are missing, so replay may differ from what the daemon printed"
                    );
                }
                Record::End(end) => {
                    run.open_ended = end.reason == "rotated";
                    report.end = Some(end);
                }
                Record::Violations(_) => {}
                Record::Unknown(kind) => {
                    tracing::debug!(kind, "skipping a frame type this version does not know")
                }
            }
        }
        if let Some(damage) = reader.damage() {
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
        reports.push(report);
    }
    if let Some(mut done) = running.take() {
        done.pipeline.finish(sink);
    }
    Ok(reports)
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
