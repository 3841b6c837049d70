//! `sealwatch run` flags (also taken by `sealwatch learn --duration`, which runs the daemon).
use std::{net::SocketAddr, path::PathBuf};

use clap::Args;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Policy file (YAML). Without it the embedded default policy is used (`sealwatch policy default`).
    #[arg(long, env = "SEALWATCH_POLICY")]
    pub policy: Option<PathBuf>,
    /// Node name written into every event. Default: the host name.
    #[arg(long, env = "SEALWATCH_NODE")]
    pub node: Option<String>,
    /// Size of the critical ring buffer (exec, fork, exit, cgroups, connections) in bytes: a
    /// power of two, at least one page. Records take only the bytes they use (an exec is a few
    /// hundred), so the default 4 MiB holds about ten thousand execs the daemon has not read yet.
    /// The memory is locked kernel memory charged to sealwatch's cgroup; its RSS counts each
    /// ring twice (the data pages are mapped twice, so records can be read across the wrap).
    #[arg(long, default_value_t = 4 << 20, value_parser = parse_ring_size)]
    pub ring_critical_bytes: u32,
    /// Size of the bulk ring buffer (file writes and other high-volume events) in bytes: a power
    /// of two, at least one page.
    #[arg(long, default_value_t = 4 << 20, value_parser = parse_ring_size)]
    pub ring_bulk_bytes: u32,
    /// How long a record may wait in the ring while records flow, in microseconds (0 to
    /// 1000000). During activity the daemon drains its rings this often on a timer of its own
    /// and the kernel wakes nobody; outside it, exec, file and connection records force a
    /// wake-up at most once per this long per CPU. Lower means lower latency from syscall to
    /// JSON line and more timer wake-ups of the daemon while records flow (1000: a p50 of about
    /// 0.6 ms on the project's VM, against 2.7 ms). 0: every such record forces a wake-up, and
    /// the traced task pays an inter-processor interrupt for it (measured: 121 µs more per exec
    /// on a VM where IPIs exit to the hypervisor).
    #[arg(
        long,
        env = "SEALWATCH_WAKEUP_PACE_US",
        value_name = "MICROSECONDS",
        default_value_t = sealwatch_abi::WAKEUP_PACE_NS_DEFAULT / 1000,
        value_parser = parse_wakeup_pace
    )]
    pub wakeup_pace_us: u64,
    /// File records one container may send per second (image-file changes, path syscalls such
    /// as a flood of failing `unlink`s); the kernel drops the rest and counts them on the
    /// container's `loss` lines (`budget_file`), so one container cannot fill the ring all
    /// containers share. 0: no limit.
    #[arg(long, value_name = "RECORDS", default_value_t = sealwatch_abi::budget::FILE_PER_SEC_DEFAULT)]
    pub cgroup_budget_file: u32,
    /// Network records one container may send per second (connects, accepts, listens, first
    /// datagrams to a peer, DNS answers); the rest are dropped and counted like file records
    /// (`budget_network`). 0: no limit.
    #[arg(long, value_name = "RECORDS", default_value_t = sealwatch_abi::budget::NETWORK_PER_SEC_DEFAULT)]
    pub cgroup_budget_network: u32,
    /// How long an event may wait for its container's metadata (name, image, pod) before it is
    /// printed with `"metadata": "pending"`.
    #[arg(long, default_value_t = 1000)]
    pub hold_metadata_ms: u64,
    /// Lines that may queue for a slow reader of stdout before lines are dropped (and counted in
    /// `loss` events).
    #[arg(long, default_value_t = 65536)]
    pub output_queue: usize,
    /// Bytes those queued lines may take, at most (at least 65536): what a stalled reader of
    /// stdout can cost in memory. 8 MiB is about 12 000 typical lines.
    #[arg(long, default_value_t = 8 << 20, value_parser = parse_queue_bytes)]
    pub output_queue_bytes: usize,
    /// Prefix of the container runtimes' state directories, e.g. /host when the node's /run and
    /// /var/lib are mounted there (DaemonSet). Default: the host's own paths.
    #[arg(long, env = "SEALWATCH_HOST_ROOT")]
    pub host_root: Option<PathBuf>,
    /// Address of the HTTP endpoint for /metrics (Prometheus/OpenMetrics), /healthz and /readyz,
    /// or `none` to serve nothing. Port 0 picks a free port (logged at start).
    #[arg(long, env = "SEALWATCH_METRICS_ADDR", default_value = "127.0.0.1:9477", value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub capture: crate::capture::CaptureArgs,
    #[command(flatten)]
    pub tail: crate::tail::TailServerArgs,
    #[command(flatten)]
    pub outputs: super::outputs::OutputArgs,
}

/// What the network policy's built-in sets stand for on this node.
#[derive(Debug, Clone, Args, Default)]
pub struct NetworkArgs {
    /// A pod or service CIDR of the cluster: the built-in network set `cluster` (repeatable).
    #[arg(long = "cluster-cidr", value_name = "CIDR", value_parser = parse_net)]
    pub cluster_cidrs: Vec<ipnet::IpNet>,
    /// Address (or CIDR) of the Kubernetes API server: the built-in network set
    /// `kubernetes-api` (repeatable). Default: KUBERNETES_SERVICE_HOST when running in a pod.
    #[arg(long = "kubernetes-api", value_name = "ADDR", value_parser = parse_net)]
    pub kubernetes_api: Vec<ipnet::IpNet>,
}

impl NetworkArgs {
    pub fn environment(&self) -> crate::policy::NetEnvironment {
        crate::policy::NetEnvironment::from_daemon_env(
            self.cluster_cidrs.clone(),
            self.kubernetes_api.clone(),
        )
    }
}

/// A CIDR (`10.96.0.0/12`) or a single address (`10.96.0.1`).
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| format!("`{text}` is neither a CIDR like 10.96.0.0/12 nor an address"))
}

/// `--metrics-addr`: where to serve metrics, or nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

fn parse_metrics_addr(text: &str) -> Result<MetricsAddr, String> {
    if text == "none" {
        return Ok(MetricsAddr(None));
    }
    text.parse()
        .map(|addr| MetricsAddr(Some(addr)))
        .map_err(|err| format!("not `none` nor an address like 127.0.0.1:9477: {err}"))
}

fn parse_ring_size(text: &str) -> Result<u32, String> {
    let size: u32 = text
        .parse()
        .map_err(|err| format!("not a byte count: {err}"))?;
    if size < 4096 || !size.is_power_of_two() {
        return Err(format!("{size} is not a power of two of at least 4096"));
    }
    Ok(size)
}

/// Longest `--wakeup-pace-us`: beyond the reader's 20 ms sweep a longer pace changes little.
const WAKEUP_PACE_US_MAX: u64 = 1_000_000;

fn parse_wakeup_pace(text: &str) -> Result<u64, String> {
    let pace: u64 = text
        .parse()
        .map_err(|err| format!("not a whole number of microseconds: {err}"))?;
    if pace > WAKEUP_PACE_US_MAX {
        return Err(format!(
            "{pace} µs is more than {WAKEUP_PACE_US_MAX} (1 s); the reader's 20 ms sweep bounds \
             the wait anyway (0 wakes the daemon for every record, 5000 is the default)"
        ));
    }
    Ok(pace)
}

fn parse_queue_bytes(text: &str) -> Result<usize, String> {
    let size: usize = text
        .parse()
        .map_err(|err| format!("not a byte count: {err}"))?;
    if size < 65536 {
        return Err(format!(
            "{size} is less than 65536 (a long exec line alone takes tens of KiB)"
        ));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, Parser};

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ring_sizes_must_be_powers_of_two() {
        assert!(parse_ring_size("4096").is_ok());
        assert!(parse_ring_size("5000").is_err());
        assert!(parse_ring_size("2048").is_err());
    }

    #[test]
    fn wakeup_pace_is_bounded_microseconds() {
        assert_eq!(parse_wakeup_pace("0"), Ok(0));
        assert_eq!(parse_wakeup_pace("5000"), Ok(5000));
        assert_eq!(parse_wakeup_pace("1000000"), Ok(1_000_000));
        assert!(parse_wakeup_pace("1000001").is_err());
        assert!(parse_wakeup_pace("-1").is_err());
        assert!(parse_wakeup_pace("5ms").is_err());
        let run = |extra: &[&str]| {
            let args = ["sealwatch", "run"].iter().chain(extra);
            match Cli::try_parse_from(args).map(|cli| cli.command) {
                Ok(Command::Run(run)) => Ok(run.wakeup_pace_us),
                Ok(_) => unreachable!(),
                Err(err) => Err(err.to_string()),
            }
        };
        if std::env::var_os("SEALWATCH_WAKEUP_PACE_US").is_none() {
            assert_eq!(run(&[]), Ok(5000));
        }
        assert_eq!(run(&["--wakeup-pace-us", "0"]), Ok(0));
        let err = run(&["--wakeup-pace-us", "2000000"]).expect_err("2 s is above the bound");
        assert!(err.contains("more than 1000000"), "{err}");
    }

    #[test]
    fn metrics_addr_is_an_address_or_none() {
        assert_eq!(parse_metrics_addr("none"), Ok(MetricsAddr(None)));
        assert_eq!(
            parse_metrics_addr("0.0.0.0:9477").map(|a| a.0.map(|s| s.port())),
            Ok(Some(9477))
        );
        assert!(parse_metrics_addr("[::1]:1").is_ok());
        assert!(parse_metrics_addr("localhost").is_err());
    }
}
