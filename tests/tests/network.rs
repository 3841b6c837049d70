//! The network sensor (issue #5): `connect`, `accept` and `listen` lines of container processes,
//! judged by the `network:` section of the policy (`unexpected-connection`,
//! `unexpected-listener`), in alert and block mode, with peers allowed by DNS name, and the
//! policy that `sealwatch learn` writes.
//!
//! Traffic stays on this machine: the peers are servers of the test process inside a network
//! namespace of its own ([`TestNet`]: the host is 10.231.X.1 and fd00:231:X::1, the namespace
//! .2/::2 and .3/::3), and the containers use host networking to reach them. Each test writes its
//! own policy, whose workload matches the test's container by its unique name; the exec and
//! root rules are off in it (the tests exec into containers running as root, which those rules
//! would report). Clients are busybox applets of the test image: `nc` (TCP; this busybox has no
//! `nc -u`), `nslookup` (UDP `connect()` then `write`, to any `HOST:PORT`), `tftp` (UDP `sendto`
//! with an address) and `nc -l` (listens on `[::]:PORT`, dual-stack); a UDP `bind()` is the
//! image's network probe (`sw-net-probe udp-bind PORT`).
//!
//! Every test that starts the daemon ends with `Daemon::stop()`, which requires exit status 0 and
//! validates every line against `schema/sealwatch.event.v1.json`; then it requires exactly the
//! expected network violations in the test's container, each expected line exactly once, and no
//! network line of a host process (the test's own servers and clients are host processes).

#![allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::bpftool;
use sealwatch_tests::cmd;
use sealwatch_tests::daemon::{daemon_bin, Daemon, Stopped, EVENT_TIMEOUT};
use sealwatch_tests::dns_server::Zone;
use sealwatch_tests::events::{check_fields, container_id, is_exec_of, violation_rule};
use sealwatch_tests::image::NET_PROBE;
use sealwatch_tests::learn::Learn;
use sealwatch_tests::netns::{free_host_ports, TestNet};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::unique_name;

const CONN_RULE: &str = "unexpected-connection";
const LISTEN_RULE: &str = "unexpected-listener";
const NET_RULES: [&str; 2] = [CONN_RULE, LISTEN_RULE];
const NET_KINDS: [&str; 3] = ["connect", "accept", "listen"];
/// The default severity of both network rules.
const SEVERITY: &str = "high";
const BUSYBOX: &str = "/bin/busybox";
/// What busybox prints for EPERM.
const EPERM_TEXT: &str = "Operation not permitted";
const EPERM: u64 = 1;
/// How long a peer server may take to record what a finished client did.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP ports of the servers in the namespace: one the policies allow, one they do not.
const PORT_OK: u16 = 8080;
const PORT_BAD: u16 = 8081;
/// UDP ports in the namespace: DNS (allowed), DNS on a port no rule allows, and a responder for
/// `tftp` (its `sendto` path).
const DNS_PORT: u16 = 53;
const DNS_PORT_BAD: u16 = 5353;
const TFTP_PORT: u16 = 6969;
/// A TFTP ERROR packet (code 1, "no"): ends a busybox `tftp` client's wait at once.
const TFTP_ERROR: &[u8] = &[0, 5, 0, 1, b'n', b'o', 0];
/// How long `sealwatch learn` watches in the round-trip test.
const LEARN_DURATION: &str = "8s";

// ---- expected lines ---------------------------------------------------------------------

/// One expected network line and how to find it in the stream.
#[derive(Clone, Debug)]
struct Case {
    kind: &'static str,
    protocol: &'static str,
    /// connect: the local end; accept: the remote peer; listen: the bound address. `None`: not
    /// checked; port 0: any port.
    src: Option<SocketAddr>,
    /// connect: the peer; accept: the local end; listen: `None` (dst and dport are null).
    dst: Option<SocketAddr>,
    result: &'static str,
    /// The DNS name the peer was learned from; `None`: absent.
    name: Option<&'static str>,
    /// (rule, action) of the violation; `None`: no violation.
    violation: Option<(&'static str, &'static str)>,
    /// The process's executable.
    exe: &'static str,
    /// The socket's address family, when it differs from the addresses' (a dual-stack socket
    /// with an IPv4 peer: the addresses are written as IPv4, the family is ipv6).
    family: Option<&'static str>,
}

impl Case {
    /// A successful egress `connect` to `dst`, not a violation.
    fn connect(protocol: &'static str, dst: SocketAddr) -> Case {
        Case {
            kind: "connect",
            protocol,
            src: None,
            dst: Some(dst),
            result: "success",
            name: None,
            violation: None,
            exe: BUSYBOX,
            family: None,
        }
    }

    /// A successful `accept` of a connection from `src` on the local end `dst`.
    fn accept(src: SocketAddr, dst: SocketAddr) -> Case {
        Case {
            kind: "accept",
            protocol: "tcp",
            src: Some(src),
            dst: Some(dst),
            result: "success",
            name: None,
            violation: None,
            exe: BUSYBOX,
            family: None,
        }
    }

    /// A `listen` (TCP) or a `bind()` to a port (UDP) on `local`.
    fn listen(protocol: &'static str, local: SocketAddr) -> Case {
        Case {
            kind: "listen",
            protocol,
            src: Some(local),
            dst: None,
            result: "success",
            name: None,
            violation: None,
            exe: BUSYBOX,
            family: None,
        }
    }

    fn from(mut self, src: SocketAddr) -> Case {
        self.src = Some(src);
        self
    }

    /// On a dual-stack (IPv6) socket.
    fn dual_stack(mut self) -> Case {
        self.family = Some("ipv6");
        self
    }

    fn exe(mut self, exe: &'static str) -> Case {
        self.exe = exe;
        self
    }

    fn named(mut self, name: &'static str) -> Case {
        self.name = Some(name);
        self
    }

    /// An `unexpected-connection` reported only.
    fn alerted(mut self) -> Case {
        self.violation = Some((CONN_RULE, "alert"));
        self
    }

    /// An `unexpected-connection` denied in the kernel: result `blocked`, errno EPERM.
    fn blocked(mut self) -> Case {
        self.result = "blocked";
        self.violation = Some((CONN_RULE, "blocked"));
        self
    }

    /// An `unexpected-listener` reported only.
    fn unexpected_listener(mut self) -> Case {
        self.violation = Some((LISTEN_RULE, "alert"));
        self
    }

    /// Whether `ev` is this case's line (kind, protocol and the identifying addresses).
    fn matches(&self, ev: &Value) -> bool {
        let net = &ev["network"];
        let is = |field: &str, addr: SocketAddr, port_field: &str| {
            net[field] == addr.ip().to_string() && net[port_field] == addr.port()
        };
        ev["kind"] == self.kind
            && net["protocol"] == self.protocol
            && match (self.kind, self.src, self.dst) {
                ("connect", _, Some(dst)) => is("dst", dst, "dport"),
                ("accept", Some(src), Some(dst)) => {
                    is("src", src, "sport") && net["dport"] == dst.port()
                }
                ("listen", Some(src), _) => net["sport"] == src.port(),
                _ => false,
            }
    }

    /// The address the violation message must name.
    fn subject(&self) -> String {
        match self.kind {
            "connect" => self.dst.map(|a| a.ip().to_string()),
            "accept" => self.src.map(|a| a.ip().to_string()),
            _ => self.src.map(|a| a.port().to_string()),
        }
        .unwrap_or_default()
    }

    /// The case in the form of [`summary`].
    fn summary(&self) -> String {
        let rule = self.violation.map_or("-", |(rule, _)| rule);
        let text = |a: Option<SocketAddr>| a.map_or("?".to_owned(), |a| a.to_string());
        match self.kind {
            "connect" => format!("{rule} connect {} -> {}", self.protocol, text(self.dst)),
            "accept" => format!(
                "{rule} accept {} {} -> :{}",
                self.protocol,
                text(self.src),
                self.dst.map_or(0, |a| a.port())
            ),
            _ => format!(
                "{rule} listen {} :{}",
                self.protocol,
                self.src.map_or(0, |a| a.port())
            ),
        }
    }

    /// Checks every field of the case's line `ev` in container `c`; `workload` is the policy
    /// workload that must have judged it (`None`: not checked).
    fn check(&self, ev: &Value, c: &Container, workload: Option<&str>) -> Result<()> {
        let family_of = |a: SocketAddr| match a.ip() {
            IpAddr::V4(_) => "ipv4",
            IpAddr::V6(_) => "ipv6",
        };
        let family = self
            .family
            .unwrap_or_else(|| self.dst.or(self.src).map_or("?", family_of));
        let mut fields = vec![
            ("/kind", json!(self.kind)),
            ("/container/id", json!(c.id)),
            ("/container/runtime", json!(c.runtime.as_str())),
            ("/container/name", json!(c.name)),
            ("/process/exe", json!(self.exe)),
            ("/network/protocol", json!(self.protocol)),
            ("/network/family", json!(family)),
            ("/network/result", json!(self.result)),
        ];
        let direction = match self.kind {
            "connect" => json!("egress"),
            "accept" => json!("ingress"),
            _ => Value::Null,
        };
        fields.push(("/network/direction", direction));
        match self.result {
            "success" => fields.push(("/network/errno", Value::Null)),
            "blocked" => fields.push(("/network/errno", json!(EPERM))),
            _ => {}
        }
        if let Some(workload) = workload {
            fields.push(("/network/workload", json!(workload)));
        }
        if let Some(src) = self.src {
            fields.push(("/network/src", json!(src.ip().to_string())));
            if src.port() != 0 {
                fields.push(("/network/sport", json!(src.port())));
            }
        }
        match self.dst {
            Some(dst) => {
                fields.push(("/network/dst", json!(dst.ip().to_string())));
                fields.push(("/network/dport", json!(dst.port())));
            }
            None => {
                fields.push(("/network/dst", Value::Null));
                fields.push(("/network/dport", Value::Null));
            }
        }
        if let Some(name) = self.name {
            fields.push(("/network/name", json!(name)));
        }
        if let Some((rule, action)) = self.violation {
            fields.push(("/violation/rule", json!(rule)));
            fields.push(("/violation/action", json!(action)));
            fields.push(("/violation/severity", json!(SEVERITY)));
        }
        check_fields(ev, &fields).with_context(|| format!("the line of {}", self.summary()))?;
        if self.name.is_none() {
            ensure!(
                ev["network"]["name"].is_null(),
                "{}: expected no network.name (no DNS answer named this peer): {ev}",
                self.summary()
            );
        }
        if self.violation.is_none() {
            ensure!(
                violation_rule(ev).is_none(),
                "{}: expected no violation: {ev}",
                self.summary()
            );
        } else {
            let subject = self.subject();
            let message = ev["violation"]["message"].as_str().unwrap_or_default();
            ensure!(
                message.contains(&subject),
                "{}: the violation message does not name {subject}: {ev}",
                self.summary()
            );
        }
        if self.src.is_some_and(|a| a.port() == 0) {
            ensure!(
                ev["network"]["sport"].as_u64().is_some_and(|p| p > 0),
                "{}: expected a source port: {ev}",
                self.summary()
            );
        }
        Ok(())
    }
}

/// A network line in the form of [`Case::summary`]: `<rule or -> <kind> <protocol> <addresses>`.
fn summary(ev: &Value) -> String {
    let net = &ev["network"];
    let rule = violation_rule(ev).unwrap_or("-");
    let endpoint = |addr: &Value, port: &Value| {
        let addr = addr.as_str().unwrap_or("?");
        if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        }
    };
    let (kind, protocol) = (ev["kind"].as_str().unwrap_or("?"), &net["protocol"]);
    let protocol = protocol.as_str().unwrap_or("?");
    match kind {
        "connect" => format!(
            "{rule} connect {protocol} -> {}",
            endpoint(&net["dst"], &net["dport"])
        ),
        "accept" => format!(
            "{rule} accept {protocol} {} -> :{}",
            endpoint(&net["src"], &net["sport"]),
            net["dport"]
        ),
        _ => format!("{rule} {kind} {protocol} :{}", net["sport"]),
    }
}

// ---- daemon, policy, containers ---------------------------------------------------------

/// A policy file: `network` (a `network:` section) after the rule settings of every test here.
fn policy_file(network: &str) -> Result<tempfile::NamedTempFile> {
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
fn start_daemon(policy: &Path) -> Result<Daemon> {
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

fn host_network() -> RunOptions {
    RunOptions {
        host_network: true,
        ..RunOptions::default()
    }
}

/// A container of `rt` with host networking running `sleep 300`, once the daemon has printed the
/// exec of that `sleep`: the daemon knows the container (and, in block mode, the kernel enforces
/// its rules) before the test runs anything in it.
fn start_workload(daemon: &mut Daemon, rt: Runtime, name: &str) -> Result<Container> {
    let c = rt.run_detached_with(name, &host_network(), &["sleep", "300"])?;
    wait_in(
        daemon,
        &c,
        &format!("the exec event of `sleep 300` in container {name}"),
        |ev| is_exec_of(ev, &["sleep", "300"]),
    )?;
    Ok(c)
}

/// Waits for a line of container `c` that satisfies `matches`; on failure the error lists every
/// network line of `c` and every loss line so far.
fn wait_in(
    daemon: &mut Daemon,
    c: &Container,
    description: &str,
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let result = daemon.wait_for(description, EVENT_TIMEOUT, |ev| {
        container_id(ev) == Some(c.id.as_str()) && matches(ev)
    });
    result.map_err(|e| {
        let lines: Vec<String> = daemon
            .events()
            .iter()
            .filter(|ev| {
                (container_id(ev) == Some(c.id.as_str()) && is_network(ev)) || ev["kind"] == "loss"
            })
            .map(Value::to_string)
            .collect();
        e.context(format!(
            "{description}: network lines of container {} and loss lines so far:\n{}",
            c.name,
            lines.join("\n")
        ))
    })
}

/// Waits for the line of `case` in `c` and checks all its fields.
fn expect(
    daemon: &mut Daemon,
    c: &Container,
    workload: Option<&str>,
    case: &Case,
) -> Result<Value> {
    let ev = wait_in(
        daemon,
        c,
        &format!("the line `{}` in container {}", case.summary(), c.name),
        |ev| case.matches(ev),
    )?;
    case.check(&ev, c, workload)?;
    Ok(ev)
}

fn is_network(ev: &Value) -> bool {
    ev["kind"].as_str().is_some_and(|k| NET_KINDS.contains(&k))
}

/// After the daemon stopped: each case's line exactly once in `c`, exactly the cases'
/// violations among the network lines of `c`, and no network line of a host process.
fn check_stopped(stopped: &Stopped, c: &Container, cases: &[Case]) -> Result<()> {
    let lines: Vec<&Value> = stopped
        .events
        .iter()
        .filter(|ev| container_id(ev) == Some(c.id.as_str()) && is_network(ev))
        .collect();
    let all = || {
        lines
            .iter()
            .map(|ev| ev.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    for case in cases {
        let count = lines.iter().filter(|ev| case.matches(ev)).count();
        ensure!(
            count == 1,
            "expected exactly one line `{}` in container {}, got {count}; its network lines:\n{}",
            case.summary(),
            c.name,
            all()
        );
    }
    let mut got: Vec<String> = lines
        .iter()
        .filter(|ev| violation_rule(ev).is_some_and(|r| NET_RULES.contains(&r)))
        .map(|ev| summary(ev))
        .collect();
    let mut want: Vec<String> = cases
        .iter()
        .filter(|case| case.violation.is_some())
        .map(Case::summary)
        .collect();
    got.sort();
    want.sort();
    ensure!(
        got == want,
        "network violations of container {}:\nexpected:\n  {}\ngot:\n  {}\nits network lines:\n{}",
        c.name,
        want.join("\n  "),
        got.join("\n  "),
        all()
    );
    let host: Vec<String> = stopped
        .events
        .iter()
        .filter(|ev| is_network(ev) && container_id(ev).is_none())
        .map(Value::to_string)
        .collect();
    ensure!(
        host.is_empty(),
        "network lines of host processes (never reported):\n{}",
        host.join("\n")
    );
    Ok(())
}

// ---- clients in the container -----------------------------------------------------------

/// What a command in a container did.
struct Ran {
    argv: Vec<String>,
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "`{}` exited with {}\nstdout: {}\nstderr: {}",
            self.argv.join(" "),
            self.status,
            self.stdout.trim(),
            self.stderr.trim()
        )
    }

    /// Exit status 0.
    fn succeeded(&self) -> Result<&Ran> {
        ensure!(
            self.status.success(),
            "expected exit status 0: {}",
            self.describe()
        );
        Ok(self)
    }

    /// Failed with EPERM: denied in the kernel.
    fn denied(&self) -> Result<&Ran> {
        ensure!(
            !self.status.success() && self.stderr.contains(EPERM_TEXT),
            "expected a failure with {EPERM_TEXT:?} on stderr (blocked in the kernel): {}",
            self.describe()
        );
        Ok(self)
    }
}

fn run(c: &Container, argv: &[String]) -> Result<Ran> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = c.exec_output(&args)?;
    Ok(Ran {
        argv: argv.to_vec(),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// `nc -w 2 ADDR PORT`: a TCP connect (stdin is /dev/null; the peer closes at once).
fn nc(to: SocketAddr) -> Vec<String> {
    strings(&[
        "nc",
        "-w",
        "2",
        &to.ip().to_string(),
        &to.port().to_string(),
    ])
}

/// `nslookup NAME SERVER`: a UDP `connect()` to SERVER and `write`s.
fn nslookup(name: &str, server: SocketAddr) -> Vec<String> {
    let server = if server.port() == DNS_PORT {
        server.ip().to_string()
    } else {
        server.to_string()
    };
    strings(&["nslookup", name, &server])
}

/// `tftp -g ...`: a UDP `sendto()` with the address (`-l -`: the local file is stdout; never a
/// real file, which busybox tftp deletes when the transfer fails).
fn tftp(to: SocketAddr) -> Vec<String> {
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

fn at(addr: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(addr.into(), port)
}

/// A free UDP port on the host (IPv4 and IPv6).
fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).context("binding udp [::]:0")?;
    Ok(socket.local_addr()?.port())
}

/// Whether something listens on TCP `port` of the host (binding `[::]:port` fails).
fn host_port_taken(port: u16) -> bool {
    TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)).is_err()
}

// ---- the fixture itself -----------------------------------------------------------------

/// Without the daemon: a host-network container reaches the namespace's servers with every
/// client the tests use (nc over IPv4 and IPv6, nslookup, tftp), and the servers see the host's
/// addresses. When this fails, the environment is broken, not the daemon.
#[test]
fn peers_are_reachable_from_a_host_network_container() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let tcp = net.tcp_server(PORT_OK)?;
    let dns = net.dns_server(
        DNS_PORT,
        Zone::new(60).with("api.sealwatch.test", net.peer_v4()),
    )?;
    let tftpd = net.udp_server(TFTP_PORT, Some(TFTP_ERROR.to_vec()))?;
    let c = rt.run_detached_with(&unique_name("sw-net"), &host_network(), &["sleep", "300"])?;
    for (to, from) in [
        (at(net.peer_v4(), PORT_OK), IpAddr::from(net.host_v4())),
        (at(net.other_v4(), PORT_OK), net.host_v4().into()),
        (at(net.peer_v6(), PORT_OK), net.host_v6().into()),
        (at(net.other_v6(), PORT_OK), net.host_v6().into()),
    ] {
        run(&c, &nc(to))?.succeeded()?;
        tcp.wait_for(&format!("a connection to {to}"), PEER_TIMEOUT, |a| {
            a.local == to && a.peer.ip() == from
        })?;
    }
    let ran = run(
        &c,
        &nslookup("api.sealwatch.test", at(net.peer_v4(), DNS_PORT)),
    )?;
    ensure!(
        ran.stdout.contains(&net.peer_v4().to_string()),
        "nslookup does not show the address: {}",
        ran.describe()
    );
    dns.wait_for("the A query", PEER_TIMEOUT, |q| {
        q.name == "api.sealwatch.test" && q.answers == 1
    })?;
    for (to, from) in [
        (at(net.peer_v4(), TFTP_PORT), IpAddr::from(net.host_v4())),
        (at(net.peer_v6(), TFTP_PORT), net.host_v6().into()),
    ] {
        let ran = run(&c, &tftp(to))?;
        ensure!(
            !ran.status.success() && ran.stderr.contains("server error"),
            "tftp should end with the server's error: {}",
            ran.describe()
        );
        tftpd.wait_for(&format!("a datagram to {to}"), PEER_TIMEOUT, |d| {
            d.peer.ip() == from
        })?;
    }
    Ok(())
}

// ---- egress -----------------------------------------------------------------------------

/// TCP over IPv4 and IPv6 in alert mode: connects to the allowed port of the allowed peers are
/// `connect` lines without a violation; the other port, and an address no rule names, are
/// `unexpected-connection` (alert: the connection still happens).
fn egress_tcp(rt: Runtime) -> Result<()> {
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let servers = [net.tcp_server(PORT_OK)?, net.tcp_server(PORT_BAD)?];
    let name = unique_name("sw-net");
    let workload = "egress-tcp";
    let policy = policy_file(&format!(
        "network:
  workloads:
    - name: {workload}
      match:
        container_name: \"{name}\"
      egress:
        - to: [\"{p4}\", \"{p6}\"]
          ports: [{PORT_OK}]
          protocol: tcp
",
        p4 = net.peer_v4(),
        p6 = net.peer_v6(),
    ))?;
    let mut daemon = start_daemon(policy.path())?;
    let c = start_workload(&mut daemon, rt, &name)?;
    let attempts = [
        (at(net.peer_v4(), PORT_OK), false),
        (at(net.peer_v4(), PORT_BAD), true),
        (at(net.other_v4(), PORT_OK), true),
        (at(net.peer_v6(), PORT_OK), false),
        (at(net.peer_v6(), PORT_BAD), true),
    ];
    let mut cases = Vec::new();
    for (to, violation) in attempts {
        run(&c, &nc(to))?.succeeded()?;
        let server = &servers[usize::from(to.port() == PORT_BAD)];
        // The exact client end, as the server saw it: the line's src and sport.
        let seen = server.wait_for(&format!("a connection to {to}"), PEER_TIMEOUT, |a| {
            a.local == to
        })?;
        let case = Case::connect("tcp", to).from(seen.peer);
        cases.push(if violation { case.alerted() } else { case });
    }
    for case in &cases {
        expect(&mut daemon, &c, Some(workload), case)?;
    }
    let stopped = daemon.stop()?;
    check_stopped(&stopped, &c, &cases)
}

#[test]
fn podman_egress_tcp_is_judged() -> Result<()> {
    egress_tcp(Runtime::Podman)
}

#[test]
fn docker_egress_tcp_is_judged() -> Result<()> {
    egress_tcp(Runtime::Docker)
}

/// UDP in alert mode, through `connect()` (nslookup) and through `sendto()` with an address
/// (tftp): DNS to the allowed peers on port 53 and tftp to the IPv6 peer are allowed; DNS on
/// port 5353 and tftp to the IPv4 peer are `unexpected-connection`.
#[test]
fn egress_udp_is_judged() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let dns = net.dns_server(DNS_PORT, Zone::new(60))?;
    let dns_bad = net.dns_server(DNS_PORT_BAD, Zone::new(60))?;
    let tftpd = net.udp_server(TFTP_PORT, Some(TFTP_ERROR.to_vec()))?;
    let name = unique_name("sw-net");
    let workload = "egress-udp";
    let policy = policy_file(&format!(
        "network:
  workloads:
    - name: {workload}
      match:
        container_name: \"{name}\"
      egress:
        - to: [\"{p4}\", \"{p6}\"]
          ports: [{DNS_PORT}]
          protocol: udp
        - to: [\"{p6}\"]
          ports: [{TFTP_PORT}]
          protocol: udp
",
        p4 = net.peer_v4(),
        p6 = net.peer_v6(),
    ))?;
    let mut daemon = start_daemon(policy.path())?;
    let c = start_workload(&mut daemon, rt, &name)?;
    let mut cases = Vec::new();
    // nslookup: NXDOMAIN (exit status 1) is fine; the server must have answered.
    for (to, server, violation) in [
        (at(net.peer_v4(), DNS_PORT), &dns, false),
        (at(net.peer_v6(), DNS_PORT), &dns, false),
        (at(net.peer_v4(), DNS_PORT_BAD), &dns_bad, true),
    ] {
        let probe = unique_name("probe").replace('-', "x") + ".sealwatch.test";
        let ran = run(&c, &nslookup(&probe, to))?;
        let seen = server
            .wait_for(&format!("the query for {probe}"), PEER_TIMEOUT, |q| {
                q.name == probe
            })
            .with_context(|| ran.describe())?;
        // connect() bound the socket: the line knows the client end.
        let case = Case::connect("udp", to).from(seen.peer);
        cases.push(if violation { case.alerted() } else { case });
    }
    // tftp: the server's error ends it (exit status 1). The client end of a sendto() on an
    // unbound socket is chosen in that same call, so it is not checked.
    for (to, violation) in [
        (at(net.peer_v4(), TFTP_PORT), true),
        (at(net.peer_v6(), TFTP_PORT), false),
    ] {
        let ran = run(&c, &tftp(to))?;
        let from = if to.is_ipv4() {
            IpAddr::from(net.host_v4())
        } else {
            net.host_v6().into()
        };
        tftpd
            .wait_for(&format!("a datagram to {to}"), PEER_TIMEOUT, |d| {
                d.peer.ip() == from
            })
            .with_context(|| ran.describe())?;
        let case = Case::connect("udp", to);
        cases.push(if violation { case.alerted() } else { case });
    }
    for case in &cases {
        expect(&mut daemon, &c, Some(workload), case)?;
    }
    let stopped = daemon.stop()?;
    check_stopped(&stopped, &c, &cases)
}

// ---- listen and ingress -----------------------------------------------------------------

/// Four `nc -l` in one container: three on declared ports (`listen` lines without a violation),
/// one on an undeclared port (`unexpected-listener`); UDP `bind()` (the image's network probe) to
/// a port declared for UDP (no violation) and to one declared for TCP only
/// (`unexpected-listener`). Then, from the namespace: connections to
/// the two ports whose ingress allows the namespace (IPv4 and IPv6) are `accept` lines without
/// a violation; one to the declared port without an ingress rule is `unexpected-connection`.
#[test]
fn listeners_and_ingress_are_judged() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let ports = free_host_ports(4)?;
    let [in_v4, in_v6, no_ingress, undeclared] = [ports[0], ports[1], ports[2], ports[3]];
    let udp_port = free_udp_port()?;
    let name = unique_name("sw-net");
    let workload = "listeners";
    let policy = policy_file(&format!(
        "network:
  workloads:
    - name: {workload}
      match:
        container_name: \"{name}\"
      listen:
        - ports: [{in_v4}, {in_v6}, {no_ingress}]
          protocol: tcp
        - ports: [{udp_port}]
          protocol: udp
      ingress:
        - from: [\"{p4}\", \"{p6}\"]
          ports: [{in_v4}, {in_v6}]
          protocol: tcp
",
        p4 = net.peer_v4(),
        p6 = net.peer_v6(),
    ))?;
    let mut daemon = start_daemon(policy.path())?;
    // `nc -l -p PORT` binds [::]:PORT (dual-stack) and accepts one connection.
    let script = format!(
        "nc -l -p {in_v4} & nc -l -p {in_v6} & nc -l -p {no_ingress} & nc -l -p {undeclared} & \
         exec sleep 300"
    );
    let c = rt.run_detached_with(&name, &host_network(), &["sh", "-c", &script])?;
    let any = |port| at(Ipv6Addr::UNSPECIFIED, port);
    let mut cases = vec![
        Case::listen("tcp", any(in_v4)),
        Case::listen("tcp", any(in_v6)),
        Case::listen("tcp", any(no_ingress)),
        Case::listen("tcp", any(undeclared)).unexpected_listener(),
    ];
    // UDP: bind() to a declared UDP port, and to a port declared for TCP only.
    for (port, declared) in [(udp_port, true), (in_v4, false)] {
        let ran = run(&c, &strings(&[NET_PROBE, "udp-bind", &port.to_string()]))?;
        ensure!(
            ran.status.success() && ran.stdout.contains("ok"),
            "udp-bind {port} failed: {}",
            ran.describe()
        );
        let case = Case::listen("udp", any(port)).exe(NET_PROBE);
        cases.push(if declared {
            case
        } else {
            case.unexpected_listener()
        });
    }
    // The listen lines also say that the listeners are up.
    for case in &cases {
        expect(&mut daemon, &c, Some(workload), case)?;
    }
    for (to, allowed) in [
        (at(net.host_v4(), in_v4), true),
        (at(net.host_v6(), in_v6), true),
        (at(net.host_v4(), no_ingress), false),
    ] {
        let connected = net.connect_tcp(to)?;
        // nc's socket is dual-stack: family ipv6, IPv4 peers written as IPv4.
        let case = Case::accept(connected.local, to).dual_stack();
        let case = if allowed { case } else { case.alerted() };
        expect(&mut daemon, &c, Some(workload), &case)?;
        cases.push(case);
    }
    let stopped = daemon.stop()?;
    check_stopped(&stopped, &c, &cases)
}

// ---- block mode -------------------------------------------------------------------------

/// `action: block`: connects no rule allows fail in the container with EPERM (TCP over IPv4 and
/// IPv6, UDP `connect()`, UDP `sendto()`), their lines say `blocked` and the servers never see
/// them; the allowed TCP connect and DNS query still go through. After the daemon stopped, no
/// socket program it loaded is left loaded, nor in effect on the container's cgroup.
#[test]
fn block_mode_denies_in_the_kernel() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let ok = net.tcp_server(PORT_OK)?;
    let bad = net.tcp_server(PORT_BAD)?;
    let dns = net.dns_server(DNS_PORT, Zone::new(60))?;
    let dns_bad = net.dns_server(DNS_PORT_BAD, Zone::new(60))?;
    let tftpd = net.udp_server(TFTP_PORT, Some(TFTP_ERROR.to_vec()))?;
    let name = unique_name("sw-net");
    let workload = "blocked";
    let policy = policy_file(&format!(
        "network:
  workloads:
    - name: {workload}
      match:
        container_name: \"{name}\"
      action: block
      egress:
        - to: [\"{p4}\", \"{p6}\"]
          ports: [{PORT_OK}]
          protocol: tcp
        - to: [\"{p4}\"]
          ports: [{DNS_PORT}]
          protocol: udp
",
        p4 = net.peer_v4(),
        p6 = net.peer_v6(),
    ))?;
    let programs_before = bpftool::socket_programs()?;
    let mut daemon = start_daemon(policy.path())?;
    let c = start_workload(&mut daemon, rt, &name)?;
    let cgroup = bpftool::cgroup_v2_dir(c.init_pid()?)?;

    let mut cases = Vec::new();
    for to in [
        at(net.peer_v4(), PORT_BAD),
        at(net.peer_v6(), PORT_BAD),
        at(net.other_v4(), PORT_OK),
    ] {
        run(&c, &nc(to))?.denied()?;
        cases.push(Case::connect("tcp", to).blocked());
    }
    let to = at(net.peer_v4(), DNS_PORT_BAD);
    run(&c, &nslookup("blocked.sealwatch.test", to))?.denied()?;
    cases.push(Case::connect("udp", to).blocked());
    let to = at(net.peer_v4(), TFTP_PORT);
    run(&c, &tftp(to))?.denied()?;
    cases.push(Case::connect("udp", to).blocked());

    // Allowed, after the denied ones: when the servers have seen these, they would have seen
    // the denied ones too.
    let to = at(net.peer_v4(), PORT_OK);
    run(&c, &nc(to))?.succeeded()?;
    let seen = ok.wait_for(&format!("a connection to {to}"), PEER_TIMEOUT, |a| {
        a.local == to
    })?;
    cases.push(Case::connect("tcp", to).from(seen.peer));
    let to = at(net.peer_v4(), DNS_PORT);
    let ran = run(&c, &nslookup("allowed.sealwatch.test", to))?;
    let query = dns
        .wait_for("the allowed query", PEER_TIMEOUT, |q| {
            q.name == "allowed.sealwatch.test"
        })
        .with_context(|| ran.describe())?;
    cases.push(Case::connect("udp", to).from(query.peer));
    ensure!(
        ok.seen().len() == 1 && bad.seen().is_empty(),
        "the TCP servers saw denied connections: port {PORT_OK}: {:?}, port {PORT_BAD}: {:?}",
        ok.seen(),
        bad.seen()
    );
    ensure!(
        dns_bad.seen().is_empty() && tftpd.seen().is_empty(),
        "the UDP servers saw denied datagrams: {:?} {:?}",
        dns_bad.seen(),
        tftpd.seen()
    );

    for case in &cases {
        expect(&mut daemon, &c, Some(workload), case)?;
    }
    let stopped = daemon.stop()?;
    check_stopped(&stopped, &c, &cases)?;

    // The container still runs: its cgroup is there to inspect.
    let left: Vec<_> = bpftool::socket_programs()?
        .into_values()
        .filter(|p| !programs_before.contains_key(&p.id))
        .collect();
    ensure!(
        left.is_empty(),
        "socket programs loaded while the daemon ran are still loaded after it stopped: {left:#?}"
    );
    let attached: Vec<String> = bpftool::effective_socket_attachments(&cgroup)?
        .into_iter()
        .filter(|a| {
            // "<attach type> <id> <name>": only those not there before the daemon started.
            a.split_whitespace()
                .nth(1)
                .and_then(|id| id.parse::<u64>().ok())
                .is_none_or(|id| !programs_before.contains_key(&id))
        })
        .collect();
    ensure!(
        attached.is_empty(),
        "socket programs still in effect on {} after the daemon stopped (`bpftool cgroup show \
         {} effective`):\n{}",
        cgroup.display(),
        cgroup.display(),
        attached.join("\n")
    );
    Ok(())
}

// ---- names ------------------------------------------------------------------------------

/// Peers allowed by DNS name: `api.sealwatch.test` and `*.svc.sealwatch.test` on port 8080, the
/// names answered by the namespace's DNS server. A connect before any lookup is a violation
/// without a name; after `nslookup`, connects to the answered addresses carry the name and are
/// allowed; a name the policy does not allow is a violation that carries it.
#[test]
fn peers_are_allowed_by_dns_name() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let tcp = net.tcp_server(PORT_OK)?;
    let dns = net.dns_server(
        DNS_PORT,
        Zone::new(300)
            .with("api.sealwatch.test", net.peer_v4())
            .with("db.svc.sealwatch.test", net.other_v4())
            .with("other.sealwatch.test", net.peer_v6()),
    )?;
    let name = unique_name("sw-net");
    let workload = "by-name";
    let policy = policy_file(&format!(
        "network:
  workloads:
    - name: {workload}
      match:
        container_name: \"{name}\"
      egress:
        - to: [\"{p4}\"]
          ports: [{DNS_PORT}]
          protocol: udp
        - to: [\"api.sealwatch.test\", \"*.svc.sealwatch.test\"]
          ports: [{PORT_OK}]
          protocol: tcp
",
        p4 = net.peer_v4(),
    ))?;
    let mut daemon = start_daemon(policy.path())?;
    let c = start_workload(&mut daemon, rt, &name)?;
    let server = at(net.peer_v4(), DNS_PORT);

    let mut cases = Vec::new();
    let connect = |to: SocketAddr| -> Result<Case> {
        run(&c, &nc(to))?.succeeded()?;
        let seen = tcp.wait_for(&format!("a connection to {to}"), PEER_TIMEOUT, |a| {
            a.local == to
        })?;
        Ok(Case::connect("tcp", to).from(seen.peer))
    };
    // No DNS answer named fd00:231:X::3.
    cases.push(connect(at(net.other_v6(), PORT_OK))?.alerted());
    for (dns_name, addr, allowed) in [
        ("api.sealwatch.test", IpAddr::from(net.peer_v4()), true),
        ("db.svc.sealwatch.test", net.other_v4().into(), true),
        ("other.sealwatch.test", net.peer_v6().into(), false),
    ] {
        let ran = run(&c, &nslookup(dns_name, server))?;
        ensure!(
            ran.stdout.contains(&addr.to_string()),
            "nslookup of {dns_name} should show {addr}: {}",
            ran.describe()
        );
        dns.wait_for(&format!("the query for {dns_name}"), PEER_TIMEOUT, |q| {
            q.name == dns_name && q.answers == 1
        })?;
        let case = connect(at(addr, PORT_OK))?.named(dns_name);
        cases.push(if allowed { case } else { case.alerted() });
    }
    for case in &cases {
        expect(&mut daemon, &c, Some(workload), case)?;
    }
    let stopped = daemon.stop()?;
    check_stopped(&stopped, &c, &cases)
}

// ---- learn ------------------------------------------------------------------------------

/// `sealwatch learn` while a container connects to a peer and listens on a port writes one
/// policy file for the image, which `sealwatch policy check` accepts. With that file as the
/// policy, the same workload in a new container is no violation; a connect to a new destination
/// is one `unexpected-connection`.
#[test]
fn learned_policy_round_trip() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let net = TestNet::create()?;
    let tcp = net.tcp_server(PORT_OK)?;
    let listen_port = free_host_ports(1)?[0];
    let peer = at(net.peer_v4(), PORT_OK);
    // The same workload in both containers: one connect, then a listener (no one connects).
    let script = format!(
        "nc -w 2 {} {} </dev/null; nc -l -p {listen_port} & exec sleep 300",
        peer.ip(),
        peer.port()
    );
    let out = tempfile::Builder::new().prefix("sw-learned-").tempdir()?;
    let out_dir = out.path().to_str().context("tempdir path is not UTF-8")?;

    let learn = Learn::start(&[
        "--duration",
        LEARN_DURATION,
        "--output",
        out_dir,
        "--metrics-addr",
        "none",
        "--tail-socket",
        "none",
    ])?;
    let first = rt.run_detached_with(
        &unique_name("sw-net"),
        &host_network(),
        &["sh", "-c", &script],
    )?;
    tcp.wait_for(
        &format!("the first container's connection to {peer}"),
        PEER_TIMEOUT,
        |a| a.local == peer,
    )?;
    ensure!(
        cmd::poll_until(PEER_TIMEOUT, || host_port_taken(listen_port)),
        "the first container does not listen on port {listen_port}"
    );
    learn.finish(Duration::from_secs(60))?;
    first.remove()?;

    let policy = learned_file(out.path(), rt.image())?;
    let check = cmd::run(
        &mut cmd::command(
            daemon_bin()?.to_str().context("daemon path")?,
            &[
                "policy",
                "check",
                policy.to_str().context("policy path is not UTF-8")?,
            ],
        ),
        cmd::DEFAULT_TIMEOUT,
    )?;
    ensure!(
        check.status.success(),
        "`sealwatch policy check` rejects the learned policy {}: {}\n{}",
        policy.display(),
        String::from_utf8_lossy(&check.stderr),
        std::fs::read_to_string(&policy).unwrap_or_default()
    );

    let mut daemon = start_daemon(&policy)?;
    let before = tcp.seen().len();
    let second = rt.run_detached_with(
        &unique_name("sw-net"),
        &host_network(),
        &["sh", "-c", &script],
    )?;
    let seen = tcp.wait_for_after(
        before,
        &format!("the second container's connection to {peer}"),
        PEER_TIMEOUT,
        |a| a.local == peer,
    )?;
    let mut cases = vec![
        Case::connect("tcp", peer).from(seen.peer),
        Case::listen("tcp", at(Ipv6Addr::UNSPECIFIED, listen_port)),
    ];
    // A new destination: the other address of the namespace.
    let new = at(net.other_v4(), PORT_OK);
    run(&second, &nc(new))?.succeeded()?;
    cases.push(Case::connect("tcp", new).alerted());
    for case in &cases {
        expect(&mut daemon, &second, None, case)
            .with_context(|| format!("learned policy {}", policy.display()))?;
    }
    let stopped = daemon.stop()?;
    check_stopped(&stopped, &second, &cases).with_context(|| {
        format!(
            "with the learned policy {}:\n{}",
            policy.display(),
            std::fs::read_to_string(&policy).unwrap_or_default()
        )
    })
}

/// The one YAML file in `dir` about `image` (learn writes one per image); fails listing the
/// directory otherwise.
fn learned_file(dir: &Path, image: &str) -> Result<PathBuf> {
    let mut all = Vec::new();
    let mut ours = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && text.contains(image) {
            ours.push(path.clone());
        }
        all.push(format!("--- {}:\n{text}", path.display()));
    }
    ensure!(
        ours.len() == 1,
        "expected exactly one YAML file naming {image} in {}, got {ours:?}; the directory:\n{}",
        dir.display(),
        all.join("\n")
    );
    Ok(ours.remove(0))
}
