//! The setting of the network tests: their policies, the daemon, containers with host networking,
//! and the busybox clients run in them.
//!
//! Traffic stays on this machine: the peers are servers of the test process inside a network
//! namespace of its own ([`TestNet`]: the host is 10.231.X.1 and fd00:231:X::1, the namespace
//! .2/::2 and .3/::3), and the containers use host networking to reach them. Each test writes its
//! own policy ([`NetPolicy`]), whose workload matches the test's container by its unique name; the
//! exec and root rules are off in it (the tests exec into containers running as root, which those
//! rules would report). Clients are busybox applets of the test image: `nc` (TCP; this busybox
//! has no `nc -u`), `nslookup` (UDP `connect()` then `write`, to any `HOST:PORT`), `tftp` (UDP
//! `sendto` with an address) and `nc -l` (listens on `[::]:PORT`, dual-stack); a UDP `bind()` is
//! the image's network probe (`sw-net-probe udp-bind PORT`).

use std::fmt::Display;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tempfile::NamedTempFile;

use crate::daemon::Daemon;
use crate::dns_server::DnsServer;
use crate::events::is_exec_of;
use crate::net_events::{wait_in, Case};
use crate::netns::TestNet;
use crate::peers::{Accepted, TcpServer, UdpServer};
use crate::runtime::{Container, RunOptions, Runtime};

/// What busybox prints for EPERM.
pub const EPERM_TEXT: &str = "Operation not permitted";
/// How long a peer server may take to record what a finished client did.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP ports of the servers in the namespace: one the policies allow, one they do not.
pub const PORT_OK: u16 = 8080;
pub const PORT_BAD: u16 = 8081;
/// UDP ports in the namespace: DNS (allowed), DNS on a port no rule allows, and a responder for
/// `tftp` (its `sendto` path).
pub const DNS_PORT: u16 = 53;
pub const DNS_PORT_BAD: u16 = 5353;
pub const TFTP_PORT: u16 = 6969;
/// A TFTP ERROR packet (code 1, "no"): ends a busybox `tftp` client's wait at once.
pub const TFTP_ERROR: &[u8] = &[0, 5, 0, 1, b'n', b'o', 0];

// ---- policy and daemon ------------------------------------------------------------------

/// The `network:` section of a test's policy: one workload that matches one container by name.
#[derive(Clone, Debug)]
pub struct NetPolicy {
    workload: String,
    container: String,
    block: bool,
    egress: Vec<String>,
    listen: Vec<String>,
    ingress: Vec<String>,
}

impl NetPolicy {
    /// Workload `workload`, matching the container named `container`; no rules yet.
    pub fn new(workload: &str, container: &str) -> NetPolicy {
        NetPolicy {
            workload: workload.to_owned(),
            container: container.to_owned(),
            block: false,
            egress: Vec::new(),
            listen: Vec::new(),
            ingress: Vec::new(),
        }
    }

    /// `action: block`.
    pub fn block(mut self) -> NetPolicy {
        self.block = true;
        self
    }

    /// An egress rule: to `to` (addresses or DNS names) on `ports`.
    pub fn egress(mut self, to: &[&dyn Display], ports: &[u16], protocol: &str) -> NetPolicy {
        self.egress.push(rule(Some(("to", to)), ports, protocol));
        self
    }

    /// A listen rule: `ports` may be listened on.
    pub fn listen(mut self, ports: &[u16], protocol: &str) -> NetPolicy {
        self.listen.push(rule(None, ports, protocol));
        self
    }

    /// An ingress rule: from `from` on `ports`.
    pub fn ingress(mut self, from: &[&dyn Display], ports: &[u16], protocol: &str) -> NetPolicy {
        self.ingress
            .push(rule(Some(("from", from)), ports, protocol));
        self
    }

    /// The section as YAML.
    pub fn yaml(&self) -> String {
        let mut yaml = format!(
            "network:\n  workloads:\n    - name: {}\n      match:\n        container_name: \"{}\"\n",
            self.workload, self.container
        );
        if self.block {
            yaml.push_str("      action: block\n");
        }
        for (section, rules) in [
            ("egress", &self.egress),
            ("listen", &self.listen),
            ("ingress", &self.ingress),
        ] {
            if !rules.is_empty() {
                yaml.push_str(&format!("      {section}:\n{}", rules.concat()));
            }
        }
        yaml
    }

    /// The policy file with this section: [`policy_file`].
    pub fn write(&self) -> Result<NamedTempFile> {
        policy_file(&self.yaml())
    }
}

/// One list item of a rule section: `peers` (`to` or `from`, quoted), `ports`, `protocol`.
fn rule(peers: Option<(&str, &[&dyn Display])>, ports: &[u16], protocol: &str) -> String {
    let list = |items: Vec<String>| format!("[{}]", items.join(", "));
    let ports = list(ports.iter().map(u16::to_string).collect());
    let mut item = match peers {
        Some((key, peers)) => {
            let peers = list(peers.iter().map(|p| format!("\"{p}\"")).collect());
            format!("        - {key}: {peers}\n          ports: {ports}\n")
        }
        None => format!("        - ports: {ports}\n"),
    };
    item.push_str(&format!("          protocol: {protocol}\n"));
    item
}

/// A policy file: `network` (a `network:` section) after the rule settings of every network
/// test.
pub fn policy_file(network: &str) -> Result<NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("sw-net-policy-")
        .suffix(".yaml")
        .tempfile()
        .context("creating the policy file")?;
    write!(
        file,
        "version: 1\n\
         rules:\n  \
           container-exec:\n    enabled: false\n  \
           root-in-container:\n    enabled: false\n\
         {network}"
    )
    .context("writing the policy file")?;
    Ok(file)
}

/// Starts the daemon with `policy`, without the metrics endpoint and the tail socket (other
/// daemons on this machine may hold their default addresses; neither is under test here).
pub fn start_daemon(policy: &Path) -> Result<Daemon> {
    let path = policy.to_str().context("policy path is not UTF-8")?;
    Daemon::start(&[
        "--metrics-addr",
        "none",
        "--tail-socket",
        "none",
        "--policy",
        path,
    ])
    .with_context(|| {
        format!(
            "starting the daemon with policy {path}:\n{}",
            std::fs::read_to_string(policy).unwrap_or_default()
        )
    })
}

// ---- containers -------------------------------------------------------------------------

/// `rt` ready, and a fresh [`TestNet`] for the peers.
pub fn net_for(rt: Runtime) -> Result<TestNet> {
    rt.ensure_ready()?;
    TestNet::create()
}

/// A detached container of `rt` named `name` with host networking, running `cmd`.
pub fn host_net_container(rt: Runtime, name: &str, cmd: &[&str]) -> Result<Container> {
    let opts = RunOptions {
        host_network: true,
        ..RunOptions::default()
    };
    rt.run_detached_with(name, &opts, cmd)
}

/// A container of `rt` with host networking running `sleep 300`, once the daemon has printed the
/// exec of that `sleep`: the daemon knows the container (and, in block mode, the kernel enforces
/// its rules) before the test runs anything in it.
pub fn start_workload(daemon: &mut Daemon, rt: Runtime, name: &str) -> Result<Container> {
    let c = host_net_container(rt, name, &["sleep", "300"])?;
    wait_in(
        daemon,
        &c,
        &format!("the exec event of `sleep 300` in container {name}"),
        |ev| is_exec_of(ev, &["sleep", "300"]),
    )?;
    Ok(c)
}

/// [`start_daemon`] with `policy`, then [`start_workload`] of container `name`.
pub fn start_watched(policy: &Path, rt: Runtime, name: &str) -> Result<(Daemon, Container)> {
    let mut daemon = start_daemon(policy)?;
    let c = start_workload(&mut daemon, rt, name)?;
    Ok((daemon, c))
}

// ---- clients in the container -----------------------------------------------------------

/// What a command in a container did.
pub struct Ran {
    pub argv: Vec<String>,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {}\nstdout: {}\nstderr: {}",
            self.argv.join(" "),
            self.status,
            self.stdout.trim(),
            self.stderr.trim()
        )
    }

    /// Exit status 0.
    pub fn succeeded(&self) -> Result<&Ran> {
        ensure!(
            self.status.success(),
            "expected exit status 0: {}",
            self.describe()
        );
        Ok(self)
    }

    /// Failed with EPERM: denied in the kernel.
    pub fn denied(&self) -> Result<&Ran> {
        ensure!(
            !self.status.success() && self.stderr.contains(EPERM_TEXT),
            "expected a failure with {EPERM_TEXT:?} on stderr (blocked in the kernel): {}",
            self.describe()
        );
        Ok(self)
    }
}

/// Runs `argv` in `c`, whatever its exit status.
pub fn run(c: &Container, argv: &[String]) -> Result<Ran> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = c.exec_output(&args)?;
    Ok(Ran {
        argv: argv.to_vec(),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// `nc -w 2 ADDR PORT`: a TCP connect (stdin is /dev/null; the peer closes at once).
pub fn nc(to: SocketAddr) -> Vec<String> {
    strings(&[
        "nc",
        "-w",
        "2",
        &to.ip().to_string(),
        &to.port().to_string(),
    ])
}

/// `nslookup NAME SERVER`: a UDP `connect()` to SERVER and `write`s.
pub fn nslookup(name: &str, server: SocketAddr) -> Vec<String> {
    let server = if server.port() == DNS_PORT {
        server.ip().to_string()
    } else {
        server.to_string()
    };
    strings(&["nslookup", name, &server])
}

/// `tftp -g ...`: a UDP `sendto()` with the address (`-l -`: the local file is stdout; never a
/// real file, which busybox tftp deletes when the transfer fails).
pub fn tftp(to: SocketAddr) -> Vec<String> {
    strings(&[
        "tftp",
        "-g",
        "-r",
        "sw-probe",
        "-l",
        "-",
        &to.ip().to_string(),
        &to.port().to_string(),
    ])
}

/// `nc` to `to` in `c`, which must succeed, and the connection as `server` saw it.
pub fn nc_seen(c: &Container, server: &TcpServer, to: SocketAddr) -> Result<Accepted> {
    run(c, &nc(to))?.succeeded()?;
    server.wait_for(&format!("a connection to {to}"), PEER_TIMEOUT, |a| {
        a.local == to
    })
}

/// [`nc_seen`] as the expected line: a TCP connect from the exact client end the server saw
/// (the line's src and sport).
pub fn tcp_connect(c: &Container, server: &TcpServer, to: SocketAddr) -> Result<Case> {
    let seen = nc_seen(c, server, to)?;
    Ok(Case::connect("tcp", to).from(seen.peer))
}

/// `nslookup query` of DNS server `server` at `to` in `c` (NXDOMAIN is fine: the server must
/// have answered), as the expected line: `connect()` bound the socket, so the line knows the
/// client end.
pub fn dns_connect(c: &Container, server: &DnsServer, query: &str, to: SocketAddr) -> Result<Case> {
    let ran = run(c, &nslookup(query, to))?;
    let seen = server
        .wait_for(&format!("the query for {query}"), PEER_TIMEOUT, |q| {
            q.name == query
        })
        .with_context(|| ran.describe())?;
    Ok(Case::connect("udp", to).from(seen.peer))
}

/// `tftp` to `to` in `c`, whatever its exit status, once `tftpd` got its datagram from the
/// host's address of `to`'s family.
pub fn tftp_seen(c: &Container, tftpd: &UdpServer, net: &TestNet, to: SocketAddr) -> Result<Ran> {
    let ran = run(c, &tftp(to))?;
    let from = host_addr(net, to);
    tftpd
        .wait_for(&format!("a datagram to {to}"), PEER_TIMEOUT, |d| {
            d.peer.ip() == from
        })
        .with_context(|| ran.describe())?;
    Ok(ran)
}

// ---- addresses and ports ----------------------------------------------------------------

pub fn at(addr: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(addr.into(), port)
}

/// The host's address in `net` of the family of `to`: where a host-network container's
/// datagrams and connections to `to` come from.
pub fn host_addr(net: &TestNet, to: SocketAddr) -> IpAddr {
    if to.is_ipv4() {
        net.host_v4().into()
    } else {
        net.host_v6().into()
    }
}

/// A free UDP port on the host (IPv4 and IPv6).
pub fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).context("binding udp [::]:0")?;
    Ok(socket.local_addr()?.port())
}

/// Whether something listens on TCP `port` of the host (binding `[::]:port` fails).
pub fn host_port_taken(port: u16) -> bool {
    TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).is_err()
}
