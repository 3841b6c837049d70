//! The network lines the network tests expect (`connect`, `accept`, `listen`), and the checks
//! every such test ends with.
//!
//! A [`Case`] is one expected line: [`expect`] waits for it in a container and checks every field;
//! after the daemon stopped, [`check_stopped`] requires each case's line exactly once, exactly the
//! cases' violations among the container's network lines, and no network line of a host process
//! (the tests' own servers and clients are host processes). [`finish`] does both for a list of
//! cases.

use std::net::{IpAddr, SocketAddr};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::daemon::{Daemon, Stopped};
use crate::events::{check_fields, container_id, violation_rule, wait_in_container};
use crate::runtime::Container;

pub const CONN_RULE: &str = "unexpected-connection";
pub const LISTEN_RULE: &str = "unexpected-listener";
pub const NET_RULES: [&str; 2] = [CONN_RULE, LISTEN_RULE];
pub const NET_KINDS: [&str; 3] = ["connect", "accept", "listen"];
/// The default severity of both network rules.
pub const SEVERITY: &str = "high";
pub const BUSYBOX: &str = "/bin/busybox";
/// The errno of a connect denied in the kernel (EPERM).
pub const EPERM: u64 = 1;

/// One expected network line and how to find it in the stream.
#[derive(Clone, Debug)]
pub struct Case {
    pub kind: &'static str,
    pub protocol: &'static str,
    /// connect: the local end; accept: the remote peer; listen: the bound address. `None`: not
    /// checked; port 0: any port.
    pub src: Option<SocketAddr>,
    /// connect: the peer; accept: the local end; listen: `None` (dst and dport are null).
    pub dst: Option<SocketAddr>,
    pub result: &'static str,
    /// The DNS name the peer was learned from; `None`: absent.
    pub name: Option<&'static str>,
    /// (rule, action) of the violation; `None`: no violation.
    pub violation: Option<(&'static str, &'static str)>,
    /// The process's executable.
    pub exe: &'static str,
    /// The socket's address family, when it differs from the addresses' (a dual-stack socket
    /// with an IPv4 peer: the addresses are written as IPv4, the family is ipv6).
    pub family: Option<&'static str>,
}

impl Case {
    /// A successful line of busybox, not a violation.
    fn new(
        kind: &'static str,
        protocol: &'static str,
        src: Option<SocketAddr>,
        dst: Option<SocketAddr>,
    ) -> Case {
        Case {
            kind,
            protocol,
            src,
            dst,
            result: "success",
            name: None,
            violation: None,
            exe: BUSYBOX,
            family: None,
        }
    }

    /// A successful egress `connect` to `dst`, not a violation.
    pub fn connect(protocol: &'static str, dst: SocketAddr) -> Case {
        Case::new("connect", protocol, None, Some(dst))
    }

    /// A successful `accept` of a connection from `src` on the local end `dst`.
    pub fn accept(src: SocketAddr, dst: SocketAddr) -> Case {
        Case::new("accept", "tcp", Some(src), Some(dst))
    }

    /// A `listen` (TCP) or a `bind()` to a port (UDP) on `local`.
    pub fn listen(protocol: &'static str, local: SocketAddr) -> Case {
        Case::new("listen", protocol, Some(local), None)
    }

    pub fn from(mut self, src: SocketAddr) -> Case {
        self.src = Some(src);
        self
    }

    /// On a dual-stack (IPv6) socket.
    pub fn dual_stack(mut self) -> Case {
        self.family = Some("ipv6");
        self
    }

    pub fn exe(mut self, exe: &'static str) -> Case {
        self.exe = exe;
        self
    }

    pub fn named(mut self, name: &'static str) -> Case {
        self.name = Some(name);
        self
    }

    /// An `unexpected-connection` reported only.
    pub fn alerted(mut self) -> Case {
        self.violation = Some((CONN_RULE, "alert"));
        self
    }

    /// [`Case::alerted`] when `violation`, else the case unchanged.
    pub fn alerted_if(self, violation: bool) -> Case {
        if violation {
            self.alerted()
        } else {
            self
        }
    }

    /// An `unexpected-connection` denied in the kernel: result `blocked`, errno EPERM.
    pub fn blocked(mut self) -> Case {
        self.result = "blocked";
        self.violation = Some((CONN_RULE, "blocked"));
        self
    }

    /// An `unexpected-listener` reported only.
    pub fn unexpected_listener(mut self) -> Case {
        self.violation = Some((LISTEN_RULE, "alert"));
        self
    }

    /// Whether `ev` is this case's line (kind, protocol and the identifying addresses).
    pub fn matches(&self, ev: &Value) -> bool {
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
    pub fn summary(&self) -> String {
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

    /// The fields of the case's line in container `c` that [`check_fields`] compares.
    fn fields(&self, c: &Container, workload: Option<&str>) -> Vec<(&'static str, Value)> {
        let family_of = |a: SocketAddr| match a.ip() {
            IpAddr::V4(_) => "ipv4",
            IpAddr::V6(_) => "ipv6",
        };
        let family = self
            .family
            .unwrap_or_else(|| self.dst.or(self.src).map_or("?", family_of));
        let direction = match self.kind {
            "connect" => json!("egress"),
            "accept" => json!("ingress"),
            _ => Value::Null,
        };
        let mut fields = vec![
            ("/kind", json!(self.kind)),
            ("/container/id", json!(c.id)),
            ("/container/runtime", json!(c.runtime.as_str())),
            ("/container/name", json!(c.name)),
            ("/process/exe", json!(self.exe)),
            ("/network/protocol", json!(self.protocol)),
            ("/network/family", json!(family)),
            ("/network/result", json!(self.result)),
            ("/network/direction", direction),
        ];
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
        let (dst, dport) = self.dst.map_or((Value::Null, Value::Null), |dst| {
            (json!(dst.ip().to_string()), json!(dst.port()))
        });
        fields.push(("/network/dst", dst));
        fields.push(("/network/dport", dport));
        if let Some(name) = self.name {
            fields.push(("/network/name", json!(name)));
        }
        if let Some((rule, action)) = self.violation {
            fields.push(("/violation/rule", json!(rule)));
            fields.push(("/violation/action", json!(action)));
            fields.push(("/violation/severity", json!(SEVERITY)));
        }
        fields
    }

    /// Checks every field of the case's line `ev` in container `c`; `workload` is the policy
    /// workload that must have judged it (`None`: not checked).
    pub fn check(&self, ev: &Value, c: &Container, workload: Option<&str>) -> Result<()> {
        check_fields(ev, &self.fields(c, workload))
            .with_context(|| format!("the line of {}", self.summary()))?;
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
pub fn summary(ev: &Value) -> String {
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

/// A `connect`, `accept` or `listen` line.
pub fn is_network(ev: &Value) -> bool {
    ev["kind"].as_str().is_some_and(|k| NET_KINDS.contains(&k))
}

/// Waits for a line of container `c` that satisfies `matches` (see [`wait_in_container`]).
pub fn wait_in(
    daemon: &mut Daemon,
    c: &Container,
    description: &str,
    matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in_container(daemon, c, description, is_network, matches)
}

/// Waits for the line of `case` in `c` and checks all its fields.
pub fn expect(
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

/// [`expect`] for each of `cases`, in order.
pub fn expect_all(
    daemon: &mut Daemon,
    c: &Container,
    workload: Option<&str>,
    cases: &[Case],
) -> Result<()> {
    for case in cases {
        expect(daemon, c, workload, case)?;
    }
    Ok(())
}

/// Stops the daemon (exit status 0, every line valid) and runs [`check_stopped`].
pub fn stop_and_check(daemon: Daemon, c: &Container, cases: &[Case]) -> Result<Stopped> {
    let stopped = daemon.stop()?;
    check_stopped(&stopped, c, cases)?;
    Ok(stopped)
}

/// How most network tests end: [`expect_all`], then [`stop_and_check`].
pub fn finish(
    mut daemon: Daemon,
    c: &Container,
    workload: Option<&str>,
    cases: &[Case],
) -> Result<Stopped> {
    expect_all(&mut daemon, c, workload, cases)?;
    stop_and_check(daemon, c, cases)
}

/// After the daemon stopped: each case's line exactly once in `c`, exactly the cases'
/// violations among the network lines of `c`, and no network line of a host process.
pub fn check_stopped(stopped: &Stopped, c: &Container, cases: &[Case]) -> Result<()> {
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
