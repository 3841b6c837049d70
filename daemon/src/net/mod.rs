//! Network vocabulary shared by the sensor, the policy, DNS learning and `learn`: what a
//! connection is, independent of where it was seen.
pub mod dns;
pub mod names;
pub mod pending;

use std::{fmt, net::IpAddr};

use serde::{Deserialize, Serialize};

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Who started the flow, seen from the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The workload connected (or sent the first datagram) to a peer.
    Egress,
    /// A peer connected to the workload (accept).
    Ingress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
}

/// One connection as the rules judge it. Addresses are canonical: an IPv4-mapped IPv6 address
/// (`::ffff:10.0.0.1`, from a dual-stack socket) is given as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub protocol: Protocol,
    pub direction: Direction,
    /// The other end: the destination of an egress flow, the source of an ingress one.
    pub peer: IpAddr,
    pub peer_port: u16,
    /// The workload's own end.
    pub local: IpAddr,
    pub local_port: u16,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::Egress => "->",
            Direction::Ingress => "<-",
        };
        write!(
            f,
            "{} {} {arrow} {}",
            self.protocol.as_str(),
            SocketText(self.local, self.local_port),
            SocketText(self.peer, self.peer_port)
        )
    }
}

/// `1.2.3.4:80` or `[fd00::1]:80`.
pub struct SocketText(pub IpAddr, pub u16);

impl fmt::Display for SocketText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// The canonical form of an address (IPv4-mapped IPv6 becomes IPv4).
pub fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

/// Appends the address as text, as `Display` writes it, straight into a line being written.
/// IPv4 by hand: std's formatter (padding support through a stack buffer) was 5% of the daemon's
/// CPU per line under a connect storm, and a `String` per address two more allocations a line.
pub fn write_addr(out: &mut Vec<u8>, addr: IpAddr) {
    let IpAddr::V4(v4) = addr else {
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_fmt(out, format_args!("{addr}"));
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

#[cfg(test)]
mod write_addr_tests {
    use std::net::{IpAddr, Ipv4Addr};

    fn text(addr: IpAddr) -> String {
        let mut out = b"x".to_vec();
        super::write_addr(&mut out, addr);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn matches_display_for_every_octet_and_ipv6() {
        for octet in 0..=255u8 {
            let addr = IpAddr::V4(Ipv4Addr::new(octet, 0, 10, octet.wrapping_mul(7)));
            assert_eq!(
                text(addr),
                format!("x{addr}"),
                "appended after what was there"
            );
        }
        let v6: IpAddr = "fd00::1"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(text(v6), "xfd00::1");
    }
}
