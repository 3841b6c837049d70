//! `cargo xtask setup`: installs what building and testing sealwatch need, idempotently.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};

use crate::cmd;

/// Debian packages the privileged integration tests (and later stages) use.
/// Not `kubernetes-client`: it conflicts with the kubectl (with kustomize) already on the machine.
const TEST_PACKAGES: &[&str] = &[
    // Real container runtimes. podman runs with runc (crun refuses the hybrid cgroup layout);
    // conmon is its monitor, uidmap its user-namespace helpers. dockerd and containerd/ctr too.
    "podman",
    "runc",
    "conmon",
    "uidmap",
    "docker.io",
    "containerd",
    // The offline test image is a rootfs built from busybox-static (no image registry here).
    "busybox-static",
    // Real SSH logins, with and without a TTY, against sshd on a loopback port.
    "openssh-server",
    "openssh-client",
    // A real scrape of the metrics endpoint; promtool checks and tests the alert rules.
    "prometheus",
    // `systemd-analyze verify` checks the shipped unit offline (systemd is not pid 1 here).
    "systemd",
    // eBPF cross-checks and reference tracers (execsnoop, opensnoop) for comparisons.
    "bpftool",
    "bpftrace",
    "libbpf-tools",
    // Network namespaces and veth pairs; terminal sessions; load generation and timing.
    "iproute2",
    "tmux",
    "stress-ng",
    "hyperfine",
    // `cargo xtask bench` compiles its load generator with `gcc -static` (libc6-dev has libc.a)
    // and its floor programs use linux/bpf.h (linux-libc-dev).
    "gcc",
    "libc6-dev",
    "linux-libc-dev",
    // A real ClickHouse (18.16) for the fleet test: deploy/clickhouse's table and queries.
    "clickhouse-server",
    "clickhouse-client",
    // TLS roots for the package registries; pip for the Python tools below.
    "ca-certificates",
    "python3-pip",
];

/// Python tools: (module to import, PyPI package). kubernetes-validate checks the Kubernetes
/// manifests offline (no kubelet can run here); opentelemetry-proto lets the test OTLP receiver
/// (`tests/otlp/receiver.py`) decode requests with the official definitions.
const PIP_TOOLS: &[(&str, &str)] = &[
    ("kubernetes_validate", "kubernetes-validate"),
    (
        "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        "opentelemetry-proto",
    ),
];

/// bpf-linker release built when it is missing; it must support LLVM 22 (the nightly's LLVM).
const BPF_LINKER_VERSION: &str = "0.13.0";

pub const NEED_ROOT: &str = "sealwatch's setup and tests need root (they install packages and \
                             load eBPF programs): run as root";

#[derive(clap::Args)]
pub struct SetupArgs {
    /// Only the build prerequisites (rust-src, bpf-linker): skip the Debian packages and Python
    /// tools the integration tests use. Works without root.
    #[arg(long)]
    no_test_deps: bool,
}

pub fn setup_cmd(args: &SetupArgs) -> Result<()> {
    setup(!args.no_test_deps)
}

/// Runs every setup step; `test_deps` adds the Debian packages and Python tools (root only).
pub fn setup(test_deps: bool) -> Result<()> {
    let start = Instant::now();
    rust_src()?;
    bpf_linker()?;
    if test_deps {
        if !is_root() {
            bail!("{NEED_ROOT}");
        }
        debian_packages()?;
        python_tools()?;
    } else {
        say("test dependencies (Debian packages, Python tools): skipped");
    }
    say(&format!("done in {:.1}s", start.elapsed().as_secs_f64()));
    Ok(())
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn say(msg: &str) {
    println!("[setup] {msg}");
}

/// Step 1: the nightly's rust-src (eBPF programs are built with `-Z build-std=core`).
fn rust_src() -> Result<()> {
    let installed = cmd::capture(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context("the nightly toolchain is needed to build the eBPF programs (rustup toolchain install nightly)")?;
    if installed.lines().any(|l| l.trim() == "rust-src") {
        say("rust-src for nightly: already installed");
        return Ok(());
    }
    say("rust-src for nightly: missing, installing");
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// Step 2: bpf-linker, built against the nightly's own LLVM 22 if it does not run.
fn bpf_linker() -> Result<()> {
    if let Some(how) = bpf_linker_runs() {
        say(&format!("bpf-linker: already installed ({how})"));
        return Ok(());
    }
    let sysroot_lib = nightly_sysroot()?.join("lib");
    let real = find_libllvm(&sysroot_lib)?;
    let prefix = crate::target_dir().join("xtask").join("llvm-prefix");
    let link = prefix.join("lib").join("libLLVM.so");
    fs::create_dir_all(prefix.join("lib"))
        .with_context(|| format!("could not create {}", prefix.display()))?;
    if fs::symlink_metadata(&link).is_ok() {
        fs::remove_file(&link).with_context(|| format!("could not replace {}", link.display()))?;
    }
    symlink(&real, &link)
        .with_context(|| format!("could not link {} -> {}", link.display(), real.display()))?;
    say(&format!(
        "bpf-linker: not found, building {BPF_LINKER_VERSION} against the nightly's LLVM ({}); \
         this takes 1-3 minutes",
        real.display()
    ));
    // The sysroot's `libLLVM-22-*.so` is a linker script, so LLVM_PREFIX points at a directory
    // whose `lib/libLLVM.so` is the real shared object. The extra rpath lets the installed binary
    // find that object in the nightly sysroot on its own (not only under `rustup run nightly`).
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    rustflags.push_str(&format!(
        " -C link-arg=-Wl,-rpath,{}",
        sysroot_lib.display()
    ));
    cmd::run(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", &prefix)
            .env("RUSTFLAGS", rustflags.trim_start()),
    )
    .context("building bpf-linker failed")?;
    match bpf_linker_runs() {
        Some(how) => {
            say(&format!("bpf-linker: installed ({how})"));
            Ok(())
        }
        None => bail!(
            "bpf-linker was installed but `bpf-linker --version` does not run: is the install \
             directory (~/.cargo/bin, or $CARGO_INSTALL_ROOT/bin) on PATH?"
        ),
    }
}

/// `Some(version)` if bpf-linker runs, either on its own or the way the build runs it: aya-build
/// calls `rustup run nightly cargo`, which puts the nightly's lib dir (where the libLLVM that
/// bpf-linker links to lives) on LD_LIBRARY_PATH.
fn bpf_linker_runs() -> Option<String> {
    if let Some(v) = cmd::probe(Command::new("bpf-linker").arg("--version")) {
        return Some(v.trim().to_owned());
    }
    cmd::probe(Command::new("rustup").args(["run", "nightly", "bpf-linker", "--version"]))
        .map(|v| format!("{}, runs under `rustup run nightly`", v.trim()))
}

fn nightly_sysroot() -> Result<PathBuf> {
    let out = cmd::capture(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
        .context("the nightly toolchain is needed to build bpf-linker")?;
    Ok(PathBuf::from(out.trim()))
}

/// The real libLLVM shared object in the nightly sysroot (`libLLVM.so.<ver>-rust-<ver>-nightly`),
/// not the `libLLVM-<major>-rust-*.so` linker script beside it.
fn find_libllvm(lib: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(lib).with_context(|| format!("could not list {}", lib.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("libLLVM.so."))
        .map(|e| e.path())
        .collect();
    found.sort();
    match found.pop() {
        Some(path) => Ok(path),
        None => bail!(
            "no libLLVM.so.* in {}: this nightly ships no shared LLVM to build bpf-linker with",
            lib.display()
        ),
    }
}

/// Step 3: the Debian packages the tests use.
fn debian_packages() -> Result<()> {
    let missing: Vec<&str> = TEST_PACKAGES
        .iter()
        .copied()
        .filter(|pkg| !dpkg_installed(pkg))
        .collect();
    if missing.is_empty() {
        say(&format!(
            "Debian packages: all {} already installed",
            TEST_PACKAGES.len()
        ));
        return Ok(());
    }
    say(&format!(
        "Debian packages: missing {}; installing",
        missing.join(" ")
    ));
    let apt_failed = || format!("installing Debian packages {} failed", missing.join(" "));
    cmd::run_keeping_stderr(Command::new("apt-get").arg("update")).with_context(apt_failed)?;
    cmd::run_keeping_stderr(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .with_context(apt_failed)?;
    let still: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if !still.is_empty() {
        bail!(
            "apt-get succeeded but these packages are still not installed: {}",
            still.join(" ")
        );
    }
    say(&format!("Debian packages: installed {}", missing.join(" ")));
    Ok(())
}

fn dpkg_installed(pkg: &str) -> bool {
    cmd::probe(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|status| status.trim().ends_with(" installed"))
}

/// Step 4: Python tools, into whichever `python3` is first on PATH (Debian's or pyenv's).
fn python_tools() -> Result<()> {
    for (module, package) in PIP_TOOLS {
        if cmd::probe(Command::new("python3").args(["-c", &format!("import {module}")])).is_some() {
            say(&format!("Python {package}: already installed"));
            continue;
        }
        say(&format!("Python {package}: missing, installing with pip"));
        let mut pip = Command::new("python3");
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--root-user-action=ignore",
        ]);
        if externally_managed() {
            // Debian's python3 refuses pip installs without this (PEP 668); pyenv's does not.
            pip.arg("--break-system-packages");
        }
        cmd::run(pip.arg(package))?;
        if cmd::probe(Command::new("python3").args(["-c", &format!("import {module}")])).is_none() {
            bail!("pip installed {package} but `python3 -c \"import {module}\"` still fails");
        }
        // pyenv only sees new console scripts after a rehash; harmless elsewhere.
        let _ = cmd::probe(Command::new("pyenv").arg("rehash"));
        say(&format!("Python {package}: installed"));
    }
    Ok(())
}

/// Whether `python3` is marked EXTERNALLY-MANAGED (PEP 668), as Debian's is.
fn externally_managed() -> bool {
    let script = "import os, sysconfig; \
                  print(os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))";
    cmd::probe(Command::new("python3").args(["-c", script])).is_some_and(|out| out.trim() == "True")
}
