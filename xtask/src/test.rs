//! `cargo xtask test`: the full suite as a sequence of timed stages that stops at the first
//! failure.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::{lint, run, setup};

#[derive(clap::Args)]
pub struct TestArgs {
    /// Stop after the unit tests and the release build: skip the privileged integration tests.
    #[arg(long)]
    unit_only: bool,
    /// Only run the integration tests whose names contain FILTER (passed to the test harness).
    filter: Option<String>,
}

/// One stage of the suite: a name for banners and the summary, and the work.
pub struct Stage<'a> {
    name: &'static str,
    work: Box<dyn FnOnce() -> Result<()> + 'a>,
}

impl<'a> Stage<'a> {
    pub fn new(name: &'static str, work: impl FnOnce() -> Result<()> + 'a) -> Self {
        Self {
            name,
            work: Box::new(work),
        }
    }
}

pub fn test(args: &TestArgs) -> Result<()> {
    let mut stages = vec![
        Stage::new("setup", || setup::setup(true)),
        Stage::new("lint", lint::lint),
        Stage::new("unit tests", || {
            crate::cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "sealwatch-probes",
                "--exclude",
                "sealwatch-tests",
            ])
        }),
        Stage::new("release build", || run::build_release().map(drop)),
    ];
    if !args.unit_only {
        stages.push(Stage::new("integration tests", || {
            integration_tests(args.filter.as_deref())
        }));
    }
    stages.extend(later_stages());
    run_stages(stages, args.unit_only)
}

/// `cargo test -p sealwatch-tests --release -- --test-threads=1 [FILTER]`, as root, told where
/// the release daemon and the repo are.
fn integration_tests(filter: Option<&str>) -> Result<()> {
    if !setup::is_root() {
        bail!("{}", setup::NEED_ROOT);
    }
    let bin = run::release_bin();
    let mut args = vec![
        "test",
        "-p",
        "sealwatch-tests",
        "--release",
        "--",
        "--test-threads=1",
    ];
    args.extend(filter);
    let mut cargo = crate::cargo_cmd(&args);
    cargo
        .env("SEALWATCH_BIN", &bin)
        .env("SEALWATCH_REPO", crate::repo_root());
    crate::cmd::run(&mut cargo)
}

/// Where later stages plug in, run in order after the integration tests (and also with
/// `--unit-only`): for example `promtool test rules deploy/prometheus/...` for the alert rules and
/// offline validation of the Kubernetes manifests (kubernetes-validate, `kubectl kustomize`).
/// Return one [`Stage`] per check; setup already installs prometheus and kubernetes-validate.
fn later_stages<'a>() -> Vec<Stage<'a>> {
    Vec::new()
}

fn run_stages(stages: Vec<Stage<'_>>, unit_only: bool) -> Result<()> {
    let total = stages.len();
    let names: Vec<&str> = stages.iter().map(|s| s.name).collect();
    let suite = Instant::now();
    let mut done: Vec<(&str, Duration)> = Vec::new();
    for (i, stage) in stages.into_iter().enumerate() {
        println!();
        println!("======== [{}/{total}] {} ========", i + 1, stage.name);
        let start = Instant::now();
        let result = (stage.work)();
        let took = start.elapsed();
        if let Err(err) = result {
            println!(
                "======== [{}/{total}] {} FAILED after {} ========",
                i + 1,
                stage.name,
                fmt(took)
            );
            let passed = timings(&done);
            let not_run = names[i + 1..].join(", ");
            println!();
            println!(
                "[test] FAILED at stage '{}' ({}) after {} in all; passed: {}; not run: {}",
                stage.name,
                fmt(took),
                fmt(suite.elapsed()),
                if passed.is_empty() {
                    "none".into()
                } else {
                    passed
                },
                if not_run.is_empty() {
                    "none".into()
                } else {
                    not_run
                },
            );
            return Err(err.context(format!("stage '{}' failed", stage.name)));
        }
        println!(
            "======== [{}/{total}] {} ok in {} ========",
            i + 1,
            stage.name,
            fmt(took)
        );
        done.push((stage.name, took));
    }
    println!();
    println!(
        "[test] all {total} stages passed in {}: {}{}",
        fmt(suite.elapsed()),
        timings(&done),
        if unit_only {
            " (integration tests skipped: --unit-only)"
        } else {
            ""
        },
    );
    Ok(())
}

fn timings(done: &[(&str, Duration)]) -> String {
    done.iter()
        .map(|(name, took)| format!("{name} {}", fmt(*took)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}
