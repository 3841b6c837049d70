//! `cargo xtask build` and `cargo xtask run`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};

use crate::{cmd, setup};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Arguments for `sealwatch run`, after `--` (e.g. `cargo xtask run -- --help`).
    #[arg(last = true)]
    args: Vec<String>,
}

/// The release binary `cargo build --release -p sealwatch` produces (absolute path).
pub fn release_bin() -> PathBuf {
    crate::target_dir().join("release").join("sealwatch")
}

/// `cargo build --release -p sealwatch`; returns the binary's path.
pub fn build_release() -> Result<PathBuf> {
    crate::cargo(&["build", "--release", "-p", "sealwatch"])?;
    let bin = release_bin();
    if !bin.is_file() {
        bail!("the build succeeded but {} is not there", bin.display());
    }
    Ok(bin)
}

pub fn build_cmd() -> Result<()> {
    setup::setup(false)?;
    let bin = build_release()?;
    println!("[build] the daemon is at {}", bin.display());
    Ok(())
}

pub fn run_cmd(args: &RunArgs) -> Result<()> {
    // Fail before building: loading eBPF programs needs root.
    if !setup::is_root() {
        bail!("sealwatch loads eBPF programs, so `cargo xtask run` needs root: run as root");
    }
    setup::setup(false)?;
    let bin = build_release()?;
    Err(cmd::exec(Command::new(&bin).arg("run").args(&args.args)))
}
