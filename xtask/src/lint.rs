//! `cargo xtask lint`: rustfmt and clippy over the workspace, and clippy over the kernel programs
//! for the BPF target.

use std::process::Command;

use anyhow::Result;

/// `cargo fmt --check`, clippy with warnings denied on the host crates, then on the probes.
pub fn lint() -> Result<()> {
    crate::cargo(&["fmt", "--all", "--", "--check"])?;
    // The probes only build for BPF: they get their own run below.
    crate::cargo(&[
        "clippy",
        "--workspace",
        "--exclude",
        "sealwatch-probes",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    probes_clippy()
}

/// Clippy on `ebpf/probes` as aya-build 0.2.0 compiles it from daemon/build.rs: the nightly,
/// `bpfel-unknown-none`, `-Z build-std=core`, release profile and the `bpf_target_arch` cfg that
/// aya-ebpf's build script otherwise derives from the host. Its own target directory: the flags
/// differ from the host build's, and sharing one would rebuild both every time.
fn probes_clippy() -> Result<()> {
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        "clippy",
        "--package",
        "sealwatch-probes",
        "--bins",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--target-dir",
    ])
    .arg(crate::target_dir().join("bpf-clippy"))
    .args(["--", "-D", "warnings"])
    .current_dir(crate::repo_root())
    // The BPF programs read the host's syscall ABI (pt_regs layout): the host's architecture.
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH),
    );
    // As aya-build does: whatever toolchain ran xtask must not leak into the nightly's build.
    for key in ["RUSTC", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(key);
    }
    crate::cmd::run(&mut cmd)
}
