//! The `sealwatch` binary: parse the command line, set up logging, run, map errors to exit codes.
use std::process::ExitCode;

use clap::Parser;
use sealwatch::{
    cli::{Cli, Command, PolicyCommand},
    policy::{Policy, PolicyError},
    replay::{self, CaptureCommand},
    run,
    sensors::{preflight::PreflightError, SensorError},
    tail,
};

/// Exit codes (sysexits.h): scripts and orchestrators can tell a bad config from a bad host.
const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 64;
const EXIT_UNAVAILABLE: u8 = 69;
const EXIT_NOPERM: u8 = 77;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sealwatch: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Policy(PolicyCommand::Check { file }) => {
            let policy = Policy::load(&file)?;
            println!("{}: valid", policy.source());
            Ok(())
        }
        Command::Policy(PolicyCommand::Default) => {
            print!("{}", Policy::embedded_default().text());
            Ok(())
        }
        Command::Replay(args) => Ok(replay::replay(args)?),
        Command::Capture(CaptureCommand::Info(args)) => Ok(replay::info::info(&args)?),
        Command::Capture(CaptureCommand::Tree(args)) => Ok(replay::tree::tree(&args)?),
        Command::Tail(args) => Ok(tail::client::tail(&args)?),
        Command::Learn(args) => learn(args),
    }
}

/// `sealwatch learn`: live for `--duration`, or from `--from-events`.
fn learn(args: sealwatch::learn::LearnArgs) -> anyhow::Result<()> {
    use sealwatch::learn::{learn_from_events, open_events, LearnHeader};
    if let Some(path) = &args.from_events {
        let summary = learn_from_events(open_events(path)?, &args.output, &LearnHeader::default())?;
        eprintln!("sealwatch: {summary}");
        return Ok(());
    }
    let Some(duration) = args.duration else {
        anyhow::bail!("give --duration or --from-events");
    };
    let mut learner = sealwatch::learn::Learner::new();
    run::run_for(args.run, duration, &mut learner)?;
    let files = learner.write(&args.output, &LearnHeader::default())?;
    let counts = learner.counts();
    eprintln!(
        "sealwatch: learned {} image(s) from {} network event(s); wrote {} file(s) to {}",
        learner.images().count(),
        counts.learned,
        files.len(),
        args.output.display()
    );
    for file in files {
        eprintln!("  {}", file.display());
    }
    Ok(())
}

fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(err) = err.downcast_ref::<replay::ReplayError>() {
        return err.exit_code();
    }
    if let Some(err) = err.downcast_ref::<tail::TailError>() {
        return err.exit_code();
    }
    if err.downcast_ref::<PolicyError>().is_some() {
        return EXIT_CONFIG;
    }
    match err.downcast_ref::<SensorError>() {
        Some(SensorError::Preflight(PreflightError::Privilege(_))) => EXIT_NOPERM,
        Some(SensorError::Preflight(_) | SensorError::Offsets(_)) => EXIT_UNAVAILABLE,
        _ => EXIT_FAILURE,
    }
}
