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
        if args.filter.is_none() {
            stages.push(Stage::new("bench smoke run", bench_smoke));
        }
    }
    stages.extend(later_stages());
    run_stages(stages, args.unit_only)
}

/// `cargo test -p sealwatch-tests --profile integration --no-fail-fast -- --test-threads=1 [FILTER]` (release
/// optimisations without LTO, see Cargo.toml), as root, told where the release daemon and the
/// repo are.
fn integration_tests(filter: Option<&str>) -> Result<()> {
    if !setup::is_root() {
        bail!("{}", setup::NEED_ROOT);
    }
    let bin = run::release_bin();
    let mut args = vec![
        "test",
        "-p",
        "sealwatch-tests",
        "--profile",
        "integration",
        // One failing test file must not hide how the others went.
        "--no-fail-fast",
        "--",
        "--test-threads=1",
    ];
    args.extend(filter);
    let mut cargo = crate::cargo_cmd(&args);
    cargo
        .env("SEALWATCH_BIN", &bin)
        // Tests that do not pass --metrics-addr must not collide on the default port with each
        // other or a leftover daemon; the metrics tests choose free ports themselves.
        .env("SEALWATCH_METRICS_ADDR", "none")
        .env("SEALWATCH_REPO", crate::repo_root());
    crate::cmd::run(&mut cargo)
}

/// `cargo xtask bench --quick --rounds 1` on the release build: the bench end to end on this
/// machine (every peer attaches, every workload and daemon step runs, the report is written to
/// target/bench/). It asserts no timing (the machine is noisy); it fails on what could not run.
fn bench_smoke() -> Result<()> {
    let problems = crate::bench::bench(&crate::bench::BenchArgs::smoke(run::release_bin()))?;
    if !problems.is_empty() {
        bail!(
            "the bench could not measure everything:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// Where later stages plug in, run in order after the integration tests (and also with
/// `--unit-only`): for example `promtool test rules deploy/prometheus/...` for the alert rules and
/// offline validation of the Kubernetes manifests (kubernetes-validate, `kubectl kustomize`).
/// Return one [`Stage`] per check; setup already installs prometheus and kubernetes-validate.
fn later_stages<'a>() -> Vec<Stage<'a>> {
    vec![
        Stage::new("alert rules (promtool)", alert_rules),
        Stage::new("kubernetes manifests", kubernetes_manifests),
        Stage::new("systemd unit (systemd-analyze verify)", systemd_unit),
    ]
}

/// `systemd-analyze verify` of `deploy/systemd/sealwatch.service`, offline. Its `ExecStart`
/// binary must exist and be executable, so the check runs on a copy whose binary path points at
/// the release build (or, with `--unit-only`, at this xtask binary: only its being executable is
/// checked); nothing else is changed. verify exits 0 on unknown keys and bad values (it only
/// warns), so any output fails the stage.
fn systemd_unit() -> Result<()> {
    let shipped = crate::repo_root().join("deploy/systemd/sealwatch.service");
    let unit = std::fs::read_to_string(&shipped)?;
    let installed = "/usr/local/bin/sealwatch";
    anyhow::ensure!(
        unit.contains(&format!("ExecStart={installed} ")),
        "{} no longer starts {installed}: update this check",
        shipped.display()
    );
    let release = crate::target_dir().join("release/sealwatch");
    let binary = if release.is_file() {
        release
    } else {
        std::env::current_exe()?
    };
    let dir = crate::target_dir().join("deploy-check/systemd");
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("sealwatch.service");
    std::fs::write(&copy, unit.replace(installed, &binary.to_string_lossy()))?;
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {} ({}): {}",
        copy.display(),
        out.status,
        said.trim()
    );
    println!("systemd-analyze verify: {} is clean", shipped.display());
    Ok(())
}

/// `promtool check rules` on the rules file and `promtool test rules` on its unit tests.
fn alert_rules() -> Result<()> {
    let dir = crate::repo_root().join("deploy/prometheus");
    crate::cmd::run(
        std::process::Command::new("promtool")
            .args(["check", "rules"])
            .arg(dir.join("sealwatch-rules.yaml")),
    )?;
    let tests = files_in(&dir.join("tests"), "yaml")?;
    anyhow::ensure!(
        !tests.is_empty(),
        "no promtool tests in deploy/prometheus/tests"
    );
    crate::cmd::run(
        std::process::Command::new("promtool")
            .args(["test", "rules"])
            .args(&tests),
    )
}

/// Oldest Kubernetes the manifests support (securityContext.appArmorProfile is 1.30+); the newest
/// version kubernetes-validate knows is checked too.
const OLDEST_KUBERNETES: &str = "1.30.0";

/// Renders every overlay and every example with `kubectl kustomize` and validates the result
/// with `kubernetes-validate --strict`. ServiceMonitor and PrometheusRule (Prometheus operator
/// CRDs) have no schema there: they are only rendered (kubernetes-validate warns about them).
fn kubernetes_manifests() -> Result<()> {
    let out = crate::target_dir().join("deploy-check");
    std::fs::create_dir_all(&out)?;
    for kind in ["overlays", "examples"] {
        let parent = crate::repo_root().join("deploy/kubernetes").join(kind);
        let mut dirs: Vec<_> = std::fs::read_dir(&parent)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        dirs.sort();
        anyhow::ensure!(!dirs.is_empty(), "no {kind} in {}", parent.display());
        for dir in dirs {
            let rendered = crate::cmd::capture(
                std::process::Command::new("kubectl")
                    .arg("kustomize")
                    .arg(&dir),
            )?;
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            let file = out.join(format!("{kind}-{name}.yaml"));
            std::fs::write(&file, rendered)?;
            for version in [Some(OLDEST_KUBERNETES), None] {
                let mut validate = std::process::Command::new("python3");
                validate.args(["-m", "kubernetes_validate", "--strict", "--quiet"]);
                if let Some(version) = version {
                    validate.args(["-k", version]);
                }
                crate::cmd::run(validate.arg(&file))?;
            }
        }
    }
    release_label_example()
}

/// `deploy/kubernetes/examples/prometheus-release` sets the `release` label of both Prometheus
/// operator objects (and of nothing else) to its example value, `monitoring`.
fn release_label_example() -> Result<()> {
    let example = crate::repo_root().join("deploy/kubernetes/examples/prometheus-release");
    let rendered = crate::cmd::capture(
        std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&example),
    )?;
    let releases: Vec<&str> = rendered
        .lines()
        .filter_map(|line| line.trim().strip_prefix("release: "))
        .collect();
    anyhow::ensure!(
        releases == ["monitoring", "monitoring"],
        "{}: expected the ServiceMonitor and the PrometheusRule labelled release: monitoring, \
         found release labels {releases:?}",
        example.display()
    );
    println!("release label example: ServiceMonitor and PrometheusRule relabelled");
    Ok(())
}

/// Files in `dir` whose name ends with `.ext`, sorted.
fn files_in(dir: &std::path::Path, ext: &str) -> Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == ext));
    files.sort();
    Ok(files)
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
