//! Command line. Every flag is explained in `--help`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sealwatch",
    version,
    about = "Node-level runtime security monitor: containers stay immutable, nobody logs in.",
    long_about = "sealwatch loads eBPF programs into the kernel, watches process execution on the \
                  whole node, ties every event to its container (id, runtime, name, image, pod) \
                  and flags policy violations. Events go to stdout as JSON lines (schema \
                  sealwatch.event/v1); logs go to stderr."
)]
pub struct Cli {
    /// Log filter for stderr (tracing syntax: error, warn, info, debug, or per module).
    #[arg(long, global = true, env = "SEALWATCH_LOG", default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the kernel programs and print one JSON event per line until SIGINT/SIGTERM (needs root).
    Run(crate::run::RunArgs),
    /// Work with policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Feed a capture (from `run --capture`) through the pipeline again and print its JSON lines,
    /// with the recorded policy or a new one, optionally filtered.
    Replay(crate::replay::ReplayArgs),
    /// Inspect a capture: summary, process trees.
    #[command(subcommand)]
    Capture(crate::replay::CaptureCommand),
    /// Learn the network behaviour of container images (for a while, or from saved event
    /// lines) and write one reviewable policy file per image.
    Learn(crate::learn::LearnArgs),
    /// Print the running daemon's lines live, filtered (connects to its tail socket; needs root).
    Tail(crate::tail::TailArgs),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file: exit 0 when valid, 64 with file:line:column and reason when not.
    Check {
        /// The YAML policy file.
        file: PathBuf,
    },
    /// Print the embedded default policy (a commented starting point for your own).
    Default,
}
