//! `cargo xtask lint`: rustfmt and clippy over the workspace.

use anyhow::Result;

/// `cargo fmt --check` and clippy with warnings denied. The probes crate is left out of clippy:
/// it only builds for BPF (daemon/build.rs builds it, so clippy on the daemon still compiles it).
pub fn lint() -> Result<()> {
    crate::cargo(&["fmt", "--all", "--", "--check"])?;
    crate::cargo(&[
        "clippy",
        "--workspace",
        "--exclude",
        "sealwatch-probes",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
}
