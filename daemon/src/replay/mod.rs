//! `sealwatch replay`, `sealwatch capture info` and `sealwatch capture tree`: the recorded inputs
//! of a capture through a fresh pipeline, offline, with the recorded policy or a new one.
mod engine;
pub mod info;
pub mod output;
pub mod tree;

use std::{path::PathBuf, sync::Arc};

use clap::{Args, Subcommand};

pub use engine::{replay_files, FileReport};

use crate::{
    capture::{capture_files, CaptureError, Damage},
    filter::{Filter, FilterArgs, FilterError},
    policy::{Policy, PolicyError},
};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A capture file, or a capture directory (its capture-*.swc files in sequence order).
    pub path: PathBuf,
    /// Judge the recorded events with this policy file instead of the recorded policy (and its
    /// recorded reloads): a rule written after an incident finds it in old events.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Subcommand)]
pub enum CaptureCommand {
    /// Summarise a capture: files, node, time range, counts by kind, containers, losses.
    Info(info::InfoArgs),
    /// Show who started what, as an indented process tree, for one container or one session.
    Tree(tree::TreeArgs),
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Policy(Box<PolicyError>),
    #[error(
        "the policy recorded in {path} does not load with this sealwatch (pass --policy FILE)"
    )]
    RecordedPolicy {
        path: PathBuf,
        source: Box<PolicyError>,
    },
    #[error("{0} capture file(s) are damaged in the middle (see the errors above); everything readable was replayed")]
    Damaged(usize),
    #[error("writing the output: {0}")]
    Output(std::io::Error),
}

impl ReplayError {
    /// The exit code for this error: 65 (bad data) for bad captures, 64 for bad flags.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReplayError::Capture(err) if !err.is_bad_data() => 1,
            ReplayError::Filter(_) | ReplayError::Policy(_) => 64,
            ReplayError::Output(_) => 1,
            _ => CaptureError::EXIT_DATA,
        }
    }
}

/// `sealwatch replay`.
pub fn replay(args: ReplayArgs) -> Result<(), ReplayError> {
    let filter = Filter::compile(&args.filter)?;
    let policy = load_override(args.policy.as_deref())?;
    let files = capture_files(&args.path)?;
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut sink = output::JsonLinesOut::new(filter, out);
    let reports = replay_files(&files, policy, &mut sink, &mut |_, _| {})?;
    sink.finish().map_err(ReplayError::Output)?;
    check_damage(&reports)
}

/// `--policy FILE`, loaded strictly (bad policy: exit 64 as for `run`).
pub fn load_override(path: Option<&std::path::Path>) -> Result<Option<Arc<Policy>>, ReplayError> {
    match path {
        Some(path) => Policy::load(path)
            .map(|p| Some(Arc::new(p)))
            .map_err(|err| ReplayError::Policy(Box::new(err))),
        None => Ok(None),
    }
}

/// A torn tail is expected after a crash (warned about, exit 0); damage in the middle is not.
pub fn check_damage(reports: &[FileReport]) -> Result<(), ReplayError> {
    let corrupt = reports
        .iter()
        .filter(|r| matches!(r.damage, Some(Damage::Corrupt { .. })))
        .count();
    if corrupt > 0 {
        return Err(ReplayError::Damaged(corrupt));
    }
    Ok(())
}
