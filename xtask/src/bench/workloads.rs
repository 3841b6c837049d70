//! The workloads: what each one does, where it runs, how many iterations, which peers it is
//! compared with, and the target from issue 8.
//!
//! Adding a workload: add an op to `loadgen.c` (it times its own loop) and an entry to
//! [`WORKLOADS`]. A target whose sensor is not attached yet (see [`Needs`]) is reported as
//! "sensor not implemented yet"; it is judged as soon as the daemon attaches the sensor's hooks.

use super::tracers::Config;

/// Where a workload runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A process of the host (no container).
    Host,
    /// Inside the bench container (podman, busybox test image), via `podman exec`.
    Container,
}

/// A sensor, recognised by the hooks sealwatch attaches (read from the kernel, see `hooks.rs`):
/// it counts as attached when some hook name contains one of `hooks`.
#[derive(Clone, Copy, Debug)]
pub struct Needs {
    pub sensor: &'static str,
    pub hooks: &'static [&'static str],
}

const FILE_SENSOR: Needs = Needs {
    sensor: "file",
    hooks: &["openat"],
};
const PROCESS_SENSOR: Needs = Needs {
    sensor: "process",
    hooks: &["sched_process_exec"],
};
const NETWORK_SENSOR: Needs = Needs {
    sensor: "network",
    hooks: &["connect", "accept", "inet_sock", "tcp_"],
};

/// An overhead target: the workload under sealwatch at most `max_ratio` times the baseline.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub max_ratio: f64,
    /// The figure only means what the issue asks once this sensor is attached; before that the
    /// table says "sensor not implemented yet". `None`: the figure is meaningful with whatever
    /// is attached (e.g. an untraced syscall).
    pub needs: Option<Needs>,
    /// What the peers do here, for the targets table.
    pub peer_note: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// `--only` key and table label.
    pub name: &'static str,
    /// One line for the report.
    pub what: &'static str,
    pub place: Place,
    /// The loadgen op and its path argument (if any); the iteration count is appended.
    pub op: &'static str,
    pub path: Option<&'static str>,
    /// Iterations of a full run (`--quick` divides by [`QUICK_DIVISOR`]).
    pub iterations: u64,
    /// Reference tracers run beside baseline, sealwatch and floor.
    pub peers: &'static [Config],
    pub target: Option<Target>,
}

/// Each run is split into this many back-to-back chunks; the fastest chunk is the run's figure.
pub const CHUNKS: u64 = 5;

/// `--quick` runs this many times fewer iterations.
pub const QUICK_DIVISOR: u64 = 5;

/// The file the host open loop opens (created by the harness).
pub const HOST_OPEN_FILE: &str = "/tmp/sealwatch-bench-open";

const OPEN_PEERS: &[Config] = &[Config::Opensnoop, Config::BpftraceOpen];

pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "open-ro-host",
        what: "open(O_RDONLY)+close of a file in /tmp, host process",
        place: Place::Host,
        op: "open-ro",
        path: Some(HOST_OPEN_FILE),
        iterations: 50_000,
        peers: OPEN_PEERS,
        target: Some(Target {
            max_ratio: 1.10,
            needs: Some(FILE_SENSOR),
            peer_note: "opensnoop about 8x here",
        }),
    },
    Workload {
        name: "open-ro-container",
        what: "open(O_RDONLY)+close of /etc/passwd (image file) in a podman container",
        place: Place::Container,
        op: "open-ro",
        path: Some("/etc/passwd"),
        iterations: 50_000,
        peers: OPEN_PEERS,
        target: Some(Target {
            max_ratio: 1.10,
            needs: Some(FILE_SENSOR),
            peer_note: "opensnoop about 8x here",
        }),
    },
    Workload {
        name: "open-write-image",
        what: "open(O_WRONLY)+close of /etc/group (image file, copied up by the first open) in a container",
        place: Place::Container,
        op: "open-wo",
        path: Some("/etc/group"),
        iterations: 50_000,
        peers: OPEN_PEERS,
        target: Some(Target {
            max_ratio: 1.30,
            needs: Some(FILE_SENSOR),
            peer_note: "Falco about 1.33x on redis",
        }),
    },
    Workload {
        name: "open-write-new",
        what: "open(O_WRONLY|O_CREAT|O_TRUNC)+close of a file the container made in /tmp",
        place: Place::Container,
        op: "open-create",
        path: Some("/tmp/sealwatch-bench-new"),
        iterations: 50_000,
        peers: OPEN_PEERS,
        target: Some(Target {
            max_ratio: 1.30,
            needs: Some(FILE_SENSOR),
            peer_note: "Falco about 1.33x on redis",
        }),
    },
    Workload {
        name: "fork-exec",
        what: "fork + exec /bin/true + wait, host (a shell running commands)",
        place: Place::Host,
        op: "fork-exec",
        path: Some("/bin/true"),
        iterations: 600,
        peers: &[Config::Execsnoop, Config::BpftraceExec],
        target: Some(Target {
            max_ratio: 1.03,
            needs: Some(PROCESS_SENSOR),
            peer_note: "execsnoop about 1.1-1.2x here",
        }),
    },
    Workload {
        name: "tcp-connect",
        what: "TCP connect+accept+close on 127.0.0.1, client and server in one process",
        place: Place::Host,
        op: "tcp",
        path: None,
        iterations: 10_000,
        peers: &[Config::BpftraceTcp],
        target: Some(Target {
            max_ratio: 1.10,
            needs: Some(NETWORK_SENSOR),
            peer_note: "no peer runs here (tcpconnect needs kprobes)",
        }),
    },
    Workload {
        name: "tcp-connect-container",
        what: "the same loop inside a container: every connect and accept is judged and printed",
        place: Place::Container,
        op: "tcp",
        path: None,
        iterations: 10_000,
        peers: &[Config::BpftraceTcp],
        target: Some(Target {
            max_ratio: 1.10,
            needs: Some(NETWORK_SENSOR),
            peer_note: "no peer runs here (tcpconnect needs kprobes)",
        }),
    },
    Workload {
        name: "getppid",
        what: "getppid syscall loop (a syscall nobody traces): the cost to the rest of the machine",
        place: Place::Host,
        op: "getppid",
        path: None,
        iterations: 3_000_000,
        peers: &[Config::NaiveSysEnter],
        target: Some(Target {
            max_ratio: 1.15,
            needs: None,
            peer_note: "floor about 1.2x for a naive raw sys_enter hook",
        }),
    },
];

/// The `--only` key of the daemon figures (not an overhead workload).
pub const DAEMON: &str = "daemon";

impl Workload {
    /// The configurations measured for this workload, baseline first.
    pub fn configs(&self) -> Vec<Config> {
        let mut all = vec![Config::Baseline, Config::Sealwatch, Config::Floor];
        all.extend_from_slice(self.peers);
        all
    }

    /// Iterations for this run.
    pub fn iterations(&self, quick: bool) -> u64 {
        if quick {
            (self.iterations / QUICK_DIVISOR).max(1)
        } else {
            self.iterations
        }
    }

    /// The loadgen arguments: `OP [PATH] N`.
    pub fn loadgen_args(&self, quick: bool) -> Vec<String> {
        let mut args = vec![self.op.to_owned()];
        args.extend(self.path.map(str::to_owned));
        args.push(self.iterations(quick).to_string());
        args
    }
}

/// The workloads `--only` selects (all when empty), and whether the daemon figures are selected.
/// Unknown names are an error listing the known ones.
pub fn select(only: &[String]) -> anyhow::Result<(Vec<&'static Workload>, bool)> {
    if only.is_empty() {
        return Ok((WORKLOADS.iter().collect(), true));
    }
    let names: Vec<&str> = only
        .iter()
        .flat_map(|o| o.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for name in &names {
        if *name != DAEMON && !WORKLOADS.iter().any(|w| w.name == *name) {
            let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
            anyhow::bail!(
                "unknown workload '{name}': choose from {}, {DAEMON}",
                known.join(", ")
            );
        }
    }
    let chosen = WORKLOADS
        .iter()
        .filter(|w| names.contains(&w.name))
        .collect();
    Ok((chosen, names.contains(&DAEMON)))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn only_selects_by_name() {
        let (all, daemon) = select(&[]).unwrap();
        assert_eq!(all.len(), WORKLOADS.len());
        assert!(daemon);
        let (some, daemon) = select(&["getppid,daemon".into()]).unwrap();
        assert_eq!(some.len(), 1);
        assert!(daemon);
        assert!(select(&["nope".into()]).is_err());
    }

    #[test]
    fn loadgen_args_end_with_the_count() {
        let w = &WORKLOADS[0];
        let args = w.loadgen_args(true);
        assert_eq!(
            args.last().unwrap(),
            &(w.iterations / QUICK_DIVISOR).to_string()
        );
        assert_eq!(args[0], w.op);
    }
}
