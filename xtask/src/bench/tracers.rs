//! The configurations a workload runs under, and starting/stopping each tracer: start it, wait
//! until it is attached (plus a settle time), let the workloads run, stop it with SIGINT.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use super::output::{read_stderr, read_stdout, ReadyOn, Seen, Watch};

/// One way of running a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Config {
    /// Nothing attached.
    Baseline,
    /// The release daemon, stdout consumed by the harness.
    Sealwatch,
    /// Empty programs on the hooks sealwatch attaches to (the least any tracer there can cost).
    Floor,
    /// libbpf-tools execsnoop, output consumed.
    Execsnoop,
    /// libbpf-tools opensnoop, output consumed.
    Opensnoop,
    /// bpftrace printing every openat.
    BpftraceOpen,
    /// bpftrace printing every exec.
    BpftraceExec,
    /// bpftrace printing every TCP state change.
    BpftraceTcp,
    /// One empty program on raw_syscalls:sys_enter: what hooking every syscall costs.
    NaiveSysEnter,
}

const BPFTRACE_OPEN: &str = r#"tracepoint:syscalls:sys_enter_openat { printf("%d %s %s\n", pid, comm, str(args->filename)); }"#;
const BPFTRACE_EXEC: &str = r#"tracepoint:sched:sched_process_exec { printf("%d %s %s\n", pid, comm, str(args->filename)); }"#;
const BPFTRACE_TCP: &str = r#"tracepoint:sock:inet_sock_set_state { printf("%d %s %d %d\n", pid, comm, args->oldstate, args->newstate); }"#;

impl Config {
    pub fn label(self) -> &'static str {
        match self {
            Config::Baseline => "baseline",
            Config::Sealwatch => "sealwatch",
            Config::Floor => "floor",
            Config::Execsnoop => "execsnoop",
            Config::Opensnoop => "opensnoop",
            Config::BpftraceOpen => "bpftrace openat printf",
            Config::BpftraceExec => "bpftrace exec printf",
            Config::BpftraceTcp => "bpftrace tcp printf",
            Config::NaiveSysEnter => "empty raw sys_enter",
        }
    }

    /// One line for the report's legend.
    pub fn describe(self) -> String {
        match self {
            Config::Baseline => "nothing attached".into(),
            Config::Sealwatch => "`sealwatch run` (release), stdout read and counted by the harness, stderr to target/bench/logs".into(),
            Config::Floor => "empty programs (`return 0`) on every hook sealwatch attaches, as listed above: raw tracepoints where sealwatch attaches tp_btf programs (the same bpf_trace_run path), classic tracepoints (perf event) where it attaches tracepoint programs".into(),
            Config::Execsnoop => "libbpf-tools `execsnoop` (system-wide), output consumed".into(),
            Config::Opensnoop => "libbpf-tools `opensnoop` (system-wide), output consumed".into(),
            Config::BpftraceOpen => format!("`bpftrace -e '{BPFTRACE_OPEN}'`"),
            Config::BpftraceExec => format!("`bpftrace -e '{BPFTRACE_EXEC}'`"),
            Config::BpftraceTcp => format!("`bpftrace -e '{BPFTRACE_TCP}'`"),
            Config::NaiveSysEnter => "one empty raw_tracepoint program on `sys_enter` (every syscall)".into(),
        }
    }

    /// The program this configuration needs on PATH (checked before the run).
    pub fn tool(self) -> Option<&'static str> {
        match self {
            Config::Execsnoop => Some("execsnoop"),
            Config::Opensnoop => Some("opensnoop"),
            Config::BpftraceOpen | Config::BpftraceExec | Config::BpftraceTcp => Some("bpftrace"),
            _ => None,
        }
    }
}

/// What starting a tracer needs.
#[derive(Clone)]
pub struct Env {
    pub sealwatch: PathBuf,
    /// Extra `sealwatch run` flags (`--metrics-addr none` where the flag exists).
    pub sealwatch_args: Vec<String>,
    pub loadgen: PathBuf,
    pub floor_hooks: Vec<String>,
    pub log_dir: PathBuf,
}

/// A running tracer. Stop it with [`Tracer::stop`]; dropping it kills it.
pub struct Tracer {
    config: Config,
    child: Child,
    stdin: Option<ChildStdin>,
    pub watch: Arc<Watch>,
    readers: Vec<JoinHandle<()>>,
}

/// How long a tracer may take to attach.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `stdbuf -oL TOOL`: the tool's stdout flushed at each line.
fn line_buffered(tool: &str) -> Command {
    let mut c = Command::new("stdbuf");
    c.args(["-oL", tool]);
    c
}
/// How long a tracer may take to exit after SIGINT before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

impl Tracer {
    /// Starts the tracer of `config` (`None` for the baseline) and waits until it is attached.
    pub fn start(config: Config, env: &Env, log_name: &str) -> Result<Option<Tracer>> {
        let (mut cmd, ready, settle) = match config {
            Config::Baseline => return Ok(None),
            Config::Sealwatch => {
                let mut c = Command::new(&env.sealwatch);
                // Debug for the loader only: its `attached sensor=... program=...` lines tell
                // the harness what is attached.
                c.args(["--log", "info,sealwatch::sensors=debug", "run"])
                    .args(&env.sealwatch_args)
                    .env("NO_COLOR", "1");
                (c, ReadyOn::Stderr("sealwatch ready"), 300)
            }
            Config::Floor => floor(env, &env.floor_hooks),
            Config::NaiveSysEnter => floor(env, &["sys_enter".to_owned()]),
            // Line-buffered: their header is how they say they are attached, and into a pipe
            // stdio would hold it until 4 KiB of events pile up (on a quiet machine: never).
            Config::Execsnoop => (line_buffered("execsnoop"), ReadyOn::FirstStdoutLine, 500),
            Config::Opensnoop => (line_buffered("opensnoop"), ReadyOn::FirstStdoutLine, 500),
            Config::BpftraceOpen => bpftrace(BPFTRACE_OPEN),
            Config::BpftraceExec => bpftrace(BPFTRACE_EXEC),
            Config::BpftraceTcp => bpftrace(BPFTRACE_TCP),
        };
        let log_path = env.log_dir.join(format!("{log_name}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let shown = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}: {shown}", config.label()))?;
        let watch = Arc::new(Watch::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(read_stdout(out, watch.clone(), ready)?);
        }
        if let Some(err) = child.stderr.take() {
            readers.push(read_stderr(err, watch.clone(), ready, log)?);
        }
        let stdin = child.stdin.take();
        let mut tracer = Tracer {
            config,
            child,
            stdin,
            watch,
            readers,
        };
        let start = Instant::now();
        while !tracer
            .watch
            .wait_for(Duration::from_millis(200), |s| s.ready)
        {
            if let Ok(Some(status)) = tracer.child.try_wait() {
                bail!(
                    "{} exited with {status} before it was attached; see {}",
                    config.label(),
                    log_path.display()
                );
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!(
                    "{} did not attach within {}s; see {}",
                    config.label(),
                    READY_TIMEOUT.as_secs(),
                    log_path.display()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(settle));
        Ok(Some(tracer))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines read from its stdout so far.
    pub fn lines(&self) -> u64 {
        self.watch.lock().lines
    }

    /// SIGINT, wait (then SIGKILL after a timeout), read the rest of its output.
    pub fn stop(mut self) -> Result<Seen> {
        self.stdin.take();
        signal(self.child.id(), "INT");
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if start.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    eprintln!(
                        "[bench] warning: {} did not stop on SIGINT within {}s: killed",
                        self.config.label(),
                        STOP_TIMEOUT.as_secs()
                    );
                    break;
                }
            }
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(std::mem::take(&mut *self.watch.lock()))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn floor(env: &Env, hooks: &[String]) -> (Command, ReadyOn, u64) {
    let mut c = Command::new(&env.loadgen);
    c.arg("floor").args(hooks);
    (c, ReadyOn::Stdout("floor attached"), 200)
}

fn bpftrace(program: &str) -> (Command, ReadyOn, u64) {
    let mut c = Command::new("bpftrace");
    c.args(["-e", program]);
    // bpftrace prints "Attaching N probes..." just before it attaches.
    (c, ReadyOn::Stdout("Attaching"), 1000)
}

/// `kill -SIG PID` (xtask has no libc dependency).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Whether `program` is an executable on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_file(&dir.join(program))))
}

fn is_file(path: &Path) -> bool {
    path.is_file()
}
