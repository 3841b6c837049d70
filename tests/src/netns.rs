//! [`TestNet`]: a network namespace of the test's own, joined to the host by a veth pair, so
//! that containers with host networking have real peers to talk to without any traffic leaving
//! the machine.
//!
//! Layout for index X (unique per fixture, and not in use on the host when created):
//!
//! ```text
//!  host namespace                          namespace sw-net-<pid>-<n>
//!  sw<pid>h<n>  10.231.X.1/24              veth0  10.231.X.2/24  10.231.X.3/24
//!               fd00:231:X::1/64                  fd00:231:X::2/64  fd00:231:X::3/64
//! ```
//!
//! IPv6 addresses are added with `nodad`, so they are usable at once. Connections and UDP
//! replies from the namespace come from .2 and ::2 (the .3 and ::3 addresses are only ever
//! destinations: .3 is secondary, ::3 deprecated), so a UDP server on a wildcard address answers
//! from .2 or ::2 whichever address was asked. Servers run inside the
//! namespace from the test process itself: [`TestNet::run_in`] runs a closure on a thread that
//! joined the namespace (`setns(CLONE_NEWNET)` affects only the calling thread), and a socket
//! made there stays in the namespace whichever thread uses it afterwards. The namespace and the
//! veth pair are removed on drop; [`sweep`] removes those of killed test processes.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Mutex, Once, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use nix::sched::CloneFlags;

use crate::cmd;
use crate::dns_server::{DnsServer, Zone};
use crate::peers::{canonical, TcpServer, UdpServer};

/// Prefix of the namespaces' names: `sw-net-<pid>-<n>`.
pub const NETNS_PREFIX: &str = "sw-net-";
/// The veth end inside the namespace.
pub const NETNS_IF: &str = "veth0";
/// How long a connection from inside the namespace may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A network namespace with a veth pair to the host. Removed on drop.
#[derive(Debug)]
pub struct TestNet {
    name: String,
    host_if: String,
    index: u8,
    removed: bool,
}

/// A connection made from inside the namespace with [`TestNet::connect_tcp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connected {
    /// The client's own end (inside the namespace).
    pub local: SocketAddr,
    /// The address connected to.
    pub peer: SocketAddr,
}

impl TestNet {
    /// Creates the namespace, the veth pair and the addresses, and brings the links up.
    pub fn create() -> Result<TestNet> {
        crate::require_root()?;
        static SWEPT: Once = Once::new();
        SWEPT.call_once(|| {
            if let Err(e) = sweep() {
                eprintln!("warning: sweeping leftover test network namespaces: {e:#}");
            }
        });
        let (index, n) = allocate_index()?;
        let pid = std::process::id();
        let net = TestNet {
            name: format!("{NETNS_PREFIX}{pid}-{n}"),
            host_if: format!("sw{pid}h{n}"),
            index,
            removed: false,
        };
        // On failure the drop of `net` removes what was made.
        net.set_up()
            .with_context(|| format!("setting up network namespace {}", net.name))?;
        Ok(net)
    }

    fn set_up(&self) -> Result<()> {
        let (ns, host_if) = (self.name.as_str(), self.host_if.as_str());
        let cidr4 = |a: Ipv4Addr| format!("{a}/24");
        let cidr6 = |a: Ipv6Addr| format!("{a}/64");
        ip(&["netns", "add", ns])?;
        ip(&[
            "link", "add", host_if, "type", "veth", "peer", "name", NETNS_IF, "netns", ns,
        ])?;
        ip(&["addr", "add", &cidr4(self.host_v4()), "dev", host_if])?;
        ip(&[
            "-6",
            "addr",
            "add",
            &cidr6(self.host_v6()),
            "dev",
            host_if,
            "nodad",
        ])?;
        ip(&["link", "set", host_if, "up"])?;
        for addr in [self.peer_v4(), self.other_v4()] {
            ip(&["-n", ns, "addr", "add", &cidr4(addr), "dev", NETNS_IF])?;
        }
        // The second IPv6 address is deprecated (preferred_lft 0): still reachable, but never
        // chosen as a source, so that connections and UDP replies from the namespace come from
        // ::2 (as IPv4 ones come from the primary .2).
        for (addr, preferred) in [(self.peer_v6(), "forever"), (self.other_v6(), "0")] {
            ip(&[
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &cidr6(addr),
                "dev",
                NETNS_IF,
                "nodad",
                "preferred_lft",
                preferred,
            ])?;
        }
        ip(&["-n", ns, "link", "set", NETNS_IF, "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// The namespace's name (for `ip netns exec`, `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host end of the veth pair.
    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    /// X in 10.231.X.0/24 and fd00:231:X::/64.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// 10.231.X.1: the host's address (the source of containers with host networking).
    pub fn host_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.index, 1)
    }

    /// fd00:231:X::1: the host's address.
    pub fn host_v6(&self) -> Ipv6Addr {
        self.v6(1)
    }

    /// 10.231.X.2: the namespace's first address.
    pub fn peer_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.index, 2)
    }

    /// fd00:231:X::2: the namespace's first address.
    pub fn peer_v6(&self) -> Ipv6Addr {
        self.v6(2)
    }

    /// 10.231.X.3: a second address in the namespace (another peer on the same servers).
    pub fn other_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.index, 3)
    }

    /// fd00:231:X::3: a second address in the namespace.
    pub fn other_v6(&self) -> Ipv6Addr {
        self.v6(3)
    }

    fn v6(&self, host: u16) -> Ipv6Addr {
        // The index written in decimal digits as a hex group: fd00:231:12::1 for X = 12.
        let group = u16::from_str_radix(&self.index.to_string(), 16).unwrap_or(0);
        Ipv6Addr::new(0xfd00, 0x231, group, 0, 0, 0, 0, host)
    }

    /// Runs `f` on a thread that joined the namespace, and returns its result. Sockets made in
    /// `f` belong to the namespace.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let path = Path::new("/run/netns").join(&self.name);
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns =
                        File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
                        .with_context(|| format!("joining network namespace {}", self.name))?;
                    f()
                })
                .join()
                .map_err(|_| anyhow!("the thread in network namespace {} panicked", self.name))?
        })
    }

    /// A TCP listener inside the namespace on `[::]:port` (dual-stack: a fresh namespace has
    /// `net.ipv6.bindv6only = 0`), so it serves every address of the namespace, IPv4 and IPv6.
    pub fn tcp_server(&self, port: u16) -> Result<TcpServer> {
        let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        let listener = self
            .run_in(|| TcpListener::bind(any).with_context(|| format!("binding tcp {any}")))
            .with_context(|| format!("in network namespace {}", self.name))?;
        TcpServer::serve(listener)
    }

    /// A UDP socket inside the namespace on `[::]:port` (dual-stack), recording datagrams and
    /// answering each with `reply` when given.
    pub fn udp_server(&self, port: u16, reply: Option<Vec<u8>>) -> Result<UdpServer> {
        UdpServer::serve(self.bind_udp(port)?, reply)
    }

    /// A DNS server for `zone` inside the namespace on UDP `[::]:port` (dual-stack).
    pub fn dns_server(&self, port: u16, zone: Zone) -> Result<DnsServer> {
        DnsServer::serve(self.bind_udp(port)?, zone)
    }

    fn bind_udp(&self, port: u16) -> Result<UdpSocket> {
        let any = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        self.run_in(|| UdpSocket::bind(any).with_context(|| format!("binding udp {any}")))
            .with_context(|| format!("in network namespace {}", self.name))
    }

    /// Connects from inside the namespace to `to` (e.g. a container's listener on
    /// [`TestNet::host_v4`]) and closes the connection at once.
    pub fn connect_tcp(&self, to: SocketAddr) -> Result<Connected> {
        self.run_in(|| {
            let stream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
                .with_context(|| format!("connecting to {to}"))?;
            let local = stream
                .local_addr()
                .context("reading the client's address")?;
            Ok(Connected {
                local: canonical(local),
                peer: canonical(to),
            })
        })
        .with_context(|| format!("from network namespace {}", self.name))
    }

    /// Removes the namespace and the veth pair now, reporting failures.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove(&self.name, &self.host_if)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove(&self.name, &self.host_if) {
                eprintln!("warning: {e:#}");
            }
        }
    }
}

/// Free TCP ports on the host, all usable on IPv4 and IPv6 (for containers with host
/// networking that listen). Another process could take one before it is used; nothing else
/// here picks ports in that way at the same time.
pub fn free_host_ports(count: usize) -> Result<Vec<u16>> {
    // Held together until all are picked, so they differ.
    let listeners = (0..count)
        .map(|_| {
            TcpListener::bind((Ipv6Addr::UNSPECIFIED, 0)).context("binding [::]:0 to pick a port")
        })
        .collect::<Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr().context("reading a picked port")?.port()))
        .collect()
}

/// Removes namespace `name` (which takes its veth end and so the pair with it) and the host end
/// `host_if` if it is somehow still there.
fn remove(name: &str, host_if: &str) -> Result<()> {
    let mut errors = Vec::new();
    if Path::new("/run/netns").join(name).exists() {
        if let Err(e) = ip(&["netns", "del", name]) {
            errors.push(format!("{e:#}"));
        }
    }
    if Path::new("/sys/class/net").join(host_if).exists() {
        if let Err(e) = ip(&["link", "del", host_if]) {
            errors.push(format!("{e:#}"));
        }
    }
    ensure!(
        errors.is_empty(),
        "removing network namespace {name}: {}",
        errors.join("; ")
    );
    Ok(())
}

/// Removes the namespaces and host veth ends of test processes that no longer exist.
pub fn sweep() -> Result<()> {
    let list = cmd::ok("ip", &["netns", "list"])?;
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        if rest.split_once('-').is_some_and(|(pid, _)| is_dead(pid)) {
            eprintln!("removing leftover network namespace {name}");
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("warning: {e:#}");
            }
        }
    }
    let links = std::fs::read_dir("/sys/class/net").context("listing /sys/class/net")?;
    for link in links.flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("sw")
            .and_then(|rest| rest.split_once('h'))
            .map(|(pid, _)| pid);
        if pid.is_some_and(is_dead) {
            eprintln!("removing leftover test veth {name}");
            if let Err(e) = ip(&["link", "del", &name]) {
                eprintln!("warning: {e:#}");
            }
        }
    }
    Ok(())
}

/// A pid (all digits) of no running process, and not ours.
fn is_dead(pid: &str) -> bool {
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && pid != std::process::id().to_string()
        && !Path::new("/proc").join(pid).exists()
}

/// The next fixture number of this process and an index X whose 10.231.X.0/24 is on no host
/// interface now.
fn allocate_index() -> Result<(u8, u32)> {
    static NEXT: Mutex<u32> = Mutex::new(0);
    let mut next = NEXT.lock().unwrap_or_else(PoisonError::into_inner);
    let in_use = cmd::ok("ip", &["-o", "-4", "addr", "show"])?;
    // Start at a per-process offset so that concurrent test processes rarely meet.
    let start = std::process::id() % 254;
    for _ in 0..254 {
        let n = *next;
        *next += 1;
        let index = u8::try_from((start + n) % 254 + 1).context("index out of range")?;
        if !in_use.contains(&format!(" 10.231.{index}.")) {
            return Ok((index, n));
        }
    }
    bail!("no free 10.231.X.0/24 on this host:\n{in_use}")
}

fn ip(args: &[&str]) -> Result<()> {
    cmd::ok("ip", args).map(drop)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::time::Duration;

    use anyhow::{ensure, Context, Result};

    use super::TestNet;
    use crate::cmd;

    const WAIT: Duration = Duration::from_secs(10);

    /// Addresses, links and the namespace exist while the fixture lives and are gone after it.
    #[test]
    fn namespace_is_created_and_removed() -> Result<()> {
        let net = TestNet::create()?;
        let other = TestNet::create()?;
        ensure!(net.index() != other.index(), "two fixtures share an index");
        let inside = cmd::ok("ip", &["-n", net.name(), "-o", "addr", "show"])?;
        for addr in [
            net.peer_v4().to_string(),
            net.other_v4().to_string(),
            net.peer_v6().to_string(),
            net.other_v6().to_string(),
        ] {
            ensure!(
                inside.contains(&format!(" {addr}/")),
                "{addr} missing inside:\n{inside}"
            );
        }
        let host = cmd::ok("ip", &["-o", "addr", "show", "dev", net.host_if()])?;
        ensure!(
            host.contains(&format!(" {}/24", net.host_v4()))
                && host.contains(&format!(" {}/64", net.host_v6())),
            "host addresses missing:\n{host}"
        );
        let (name, host_if) = (net.name().to_owned(), net.host_if().to_owned());
        net.remove()?;
        ensure!(
            !cmd::ok("ip", &["netns", "list"])?.contains(&name),
            "namespace {name} still listed"
        );
        ensure!(
            !std::path::Path::new("/sys/class/net")
                .join(&host_if)
                .exists(),
            "{host_if} still exists"
        );
        Ok(())
    }

    /// The host reaches TCP and UDP servers in the namespace on all four addresses; the servers
    /// see the host's addresses as the clients.
    #[test]
    fn host_reaches_servers_in_the_namespace() -> Result<()> {
        let net = TestNet::create()?;
        let tcp = net.tcp_server(8080)?;
        let udp = net.udp_server(6969, Some(b"pong".to_vec()))?;
        let cases: [(IpAddr, IpAddr); 4] = [
            (net.peer_v4().into(), net.host_v4().into()),
            (net.other_v4().into(), net.host_v4().into()),
            (net.peer_v6().into(), net.host_v6().into()),
            (net.other_v6().into(), net.host_v6().into()),
        ];
        for (to, from) in cases {
            let to = SocketAddr::new(to, 8080);
            let mut stream = TcpStream::connect_timeout(&to, WAIT)
                .with_context(|| format!("connecting to {to}"))?;
            let local = stream.local_addr()?;
            // The server closes at once: end-of-file.
            stream.set_read_timeout(Some(WAIT))?;
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest)?;
            let got = tcp.wait_for(&format!("a connection to {to}"), WAIT, |a| {
                a.local == to && a.peer == local
            })?;
            ensure!(
                got.peer.ip() == from,
                "connection to {to} came from {got:?}"
            );

            let to = SocketAddr::new(to.ip(), 6969);
            let bind: SocketAddr = SocketAddr::new(from, 0);
            let socket = UdpSocket::bind(bind)?;
            socket.set_read_timeout(Some(WAIT))?;
            socket.send_to(b"ping", to)?;
            let mut buf = [0u8; 16];
            let (len, _) = socket
                .recv_from(&mut buf)
                .with_context(|| format!("no reply from {to}"))?;
            ensure!(&buf[..len] == b"pong", "reply {:?}", &buf[..len]);
            let local = socket.local_addr()?;
            udp.wait_for(&format!("a datagram to {to}"), WAIT, |d| {
                d.peer == local && d.data == b"ping"
            })?;
        }
        Ok(())
    }

    /// A connection from inside the namespace reaches a host listener on the host end of the
    /// veth pair, coming from the namespace's address.
    #[test]
    fn namespace_connects_to_the_host() -> Result<()> {
        let net = TestNet::create()?;
        let cases: [(IpAddr, IpAddr); 2] = [
            (net.host_v4().into(), net.peer_v4().into()),
            (net.host_v6().into(), net.peer_v6().into()),
        ];
        for (host, peer) in cases {
            let listener = TcpListener::bind(SocketAddr::new(host, 0))?;
            let to = listener.local_addr()?;
            let connected = net.connect_tcp(to)?;
            let (_, from) = listener.accept()?;
            ensure!(
                connected.local == from && from.ip() == peer,
                "{connected:?} but the host saw {from}"
            );
        }
        Ok(())
    }
}
