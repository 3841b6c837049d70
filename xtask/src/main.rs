//! `cargo xtask`: sealwatch's one entry point for developers and CI.
//!
//! A newcomer needs two commands: `cargo xtask run` and `cargo xtask test`. Both install what they
//! need first (idempotently) and say what they are doing.

mod bench;
mod cmd;
mod lint;
mod run;
mod setup;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Set up, build, run, lint and test sealwatch.",
    after_help = "New here? `cargo xtask run` starts the daemon, `cargo xtask test` runs the whole \
                  suite. Both install what they need first (as root: eBPF and the tests need it)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the build and test prerequisites, skipping what is already there.
    ///
    /// Steps: the nightly's rust-src (eBPF programs are built with -Z build-std=core);
    /// bpf-linker, built against the nightly's own LLVM 22 if missing; the Debian packages the
    /// integration tests use (container runtimes, sshd, prometheus, bpftool, ...); Python tools
    /// (kubernetes-validate). The last two need root and are skipped with --no-test-deps.
    Setup(setup::SetupArgs),
    /// Set up the build prerequisites, then build the daemon in release mode.
    Build,
    /// Build the daemon in release mode and run it as `sealwatch run ARGS...` (needs root).
    ///
    /// The daemon replaces this process, so Ctrl-C and other signals reach it directly.
    Run(run::RunArgs),
    /// Check formatting (rustfmt) and lints (clippy, warnings denied) across the workspace, the
    /// kernel programs included (clippy for bpfel-unknown-none on the nightly).
    Lint,
    /// Run the full suite: setup, lint, unit tests, release build, integration tests (as root).
    ///
    /// Stops at the first failing stage with a summary naming it; prints every stage's time.
    Test(test::TestArgs),
    /// Measure what sealwatch costs: workloads with nothing, sealwatch, empty programs on the same
    /// hooks (floor) and peer tracers attached, in interleaved rounds; daemon CPU, RSS, drops and
    /// latency under an exec ramp. Prints a markdown table and writes BENCHMARKS.md (as root).
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup(args) => setup::setup_cmd(&args),
        Cmd::Build => run::build_cmd(),
        Cmd::Run(args) => run::run_cmd(&args),
        Cmd::Lint => lint::lint(),
        Cmd::Test(args) => test::test(&args),
        Cmd::Bench(args) => bench::bench_cmd(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory, never the cwd.
pub fn repo_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// Cargo's target directory (`CARGO_TARGET_DIR` if set, else `<repo>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// Runs `cargo ARGS...` in the repo root (echoed, failing with the exit code).
pub fn cargo(args: &[&str]) -> anyhow::Result<()> {
    cmd::run(&mut cargo_cmd(args))
}

/// A `cargo ARGS...` command in the repo root, for callers that add environment variables.
pub fn cargo_cmd(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("cargo");
    c.args(args).current_dir(repo_root());
    c
}
