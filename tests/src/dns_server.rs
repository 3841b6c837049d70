//! A tiny authoritative DNS server over UDP, for the name-based network rules: it answers A and
//! AAAA queries for the names of a [`Zone`] with a fixed TTL, other types of a known name with
//! no records, and NXDOMAIN for every other name. Names match case-insensitively, without a
//! trailing dot. Enough for `busybox nslookup`; nothing else (no TCP, no compression in queries,
//! no EDNS: an OPT record in a query is ignored).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use anyhow::{Context, Result};

use crate::peers::{canonical, is_timeout, Server};

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Response code NXDOMAIN.
pub const NXDOMAIN: u8 = 3;

/// Names and their addresses, answered with one TTL.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    ttl: u32,
    names: BTreeMap<String, Vec<IpAddr>>,
}

/// A query the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuery {
    pub peer: SocketAddr,
    /// The queried name, lowercase, without a trailing dot.
    pub name: String,
    pub qtype: u16,
    /// The response code sent (0 or [`NXDOMAIN`]).
    pub rcode: u8,
    /// How many answer records were sent.
    pub answers: usize,
}

/// The server's response to one query, and what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub response: Vec<u8>,
    /// The queried name, lowercase, without a trailing dot.
    pub name: String,
    pub qtype: u16,
    /// The response code (0 or [`NXDOMAIN`]).
    pub rcode: u8,
    /// How many answer records the response has.
    pub answers: usize,
}

/// A DNS server thread; stops when dropped.
pub type DnsServer = Server<DnsQuery>;

impl Zone {
    /// An empty zone whose answers carry `ttl` seconds.
    pub fn new(ttl: u32) -> Zone {
        Zone {
            ttl,
            names: BTreeMap::new(),
        }
    }

    /// Adds `addr` to `name` (an A or AAAA record by its family).
    pub fn with(mut self, name: &str, addr: impl Into<IpAddr>) -> Zone {
        self.names
            .entry(normalize(name))
            .or_default()
            .push(addr.into());
        self
    }

    /// The response to `query`, and what was asked; `None` for a packet that is not a query
    /// this server understands (it is dropped, as a real server may do).
    pub fn answer(&self, query: &[u8]) -> Option<Answer> {
        let flags = u16::from_be_bytes([*query.get(2)?, *query.get(3)?]);
        let qdcount = u16::from_be_bytes([*query.get(4)?, *query.get(5)?]);
        // A query (QR 0), opcode QUERY, exactly one question.
        if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 || qdcount != 1 {
            return None;
        }
        let (name, mut pos) = read_name(query, 12)?;
        let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
        pos += 4; // type and class
        let question = query.get(12..pos)?;
        let (rcode, addrs): (u8, Vec<IpAddr>) = match self.names.get(&name) {
            None => (NXDOMAIN, Vec::new()),
            Some(addrs) => (
                0,
                addrs
                    .iter()
                    .copied()
                    .filter(|a| match a {
                        IpAddr::V4(_) => qtype == TYPE_A,
                        IpAddr::V6(_) => qtype == TYPE_AAAA,
                    })
                    .collect(),
            ),
        };
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(query.get(0..2)?); // id
                                                 // QR, AA, RD copied from the query, RA 0, the response code.
        let flags = 0x8400 | (flags & 0x0100) | u16::from(rcode);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&u16::try_from(addrs.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional records
        out.extend_from_slice(question);
        for addr in &addrs {
            out.extend_from_slice(&0xc00cu16.to_be_bytes()); // the name of the question
            let (rtype, rdata) = match addr {
                IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
                IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
            };
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes()); // class IN
            out.extend_from_slice(&self.ttl.to_be_bytes());
            out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        Some(Answer {
            response: out,
            name,
            qtype,
            rcode,
            answers: addrs.len(),
        })
    }
}

impl DnsServer {
    /// Serves `zone` on `socket` (already bound) until dropped.
    pub fn serve(socket: UdpSocket, zone: Zone) -> Result<DnsServer> {
        let local = canonical(
            socket
                .local_addr()
                .context("reading the socket's address")?,
        );
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .context("setting the socket's read timeout")?;
        Server::spawn(format!("dns server {local}"), local, move || {
            let mut buf = [0u8; 1500];
            let (len, peer) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if is_timeout(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            let Some(answer) = zone.answer(&buf[..len]) else {
                eprintln!("dns server {local}: dropped a packet from {peer} that is no query");
                return Ok(None);
            };
            socket.send_to(&answer.response, peer)?;
            Ok(Some(DnsQuery {
                peer: canonical(peer),
                name: answer.name,
                qtype: answer.qtype,
                rcode: answer.rcode,
                answers: answer.answers,
            }))
        })
    }
}

/// A query for `name` and `qtype` with id `id` and recursion desired (what a stub resolver sends).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

/// The name at `pos` (uncompressed labels only) and the position after it.
fn read_name(packet: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*packet.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 || pos + len > packet.len() || labels.len() > 127 {
            return None;
        }
        labels.push(String::from_utf8_lossy(&packet[pos..pos + len]).into_owned());
        pos += len;
    }
    Some((normalize(&labels.join(".")), pos))
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
    use std::time::Duration;

    use anyhow::{ensure, Context, Result};

    use super::{build_query, DnsServer, Zone, NXDOMAIN, TYPE_A, TYPE_AAAA};
    use crate::cmd;
    use crate::netns::TestNet;

    fn zone() -> Zone {
        Zone::new(300)
            .with("api.sealwatch.test", Ipv4Addr::new(10, 231, 9, 2))
            .with("Dual.Sealwatch.Test.", Ipv4Addr::new(10, 231, 9, 3))
            .with(
                "dual.sealwatch.test",
                Ipv6Addr::new(0xfd00, 0x231, 9, 0, 0, 0, 0, 3),
            )
    }

    /// The answer records of a response: (type, ttl, address).
    fn answers(response: &[u8], query_len: usize) -> Vec<(u16, u32, IpAddr)> {
        let count = u16::from_be_bytes([response[6], response[7]]);
        let mut pos = query_len;
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(&response[pos..pos + 2], &[0xc0, 0x0c], "name pointer");
            let rtype = u16::from_be_bytes([response[pos + 2], response[pos + 3]]);
            let ttl = u32::from_be_bytes([
                response[pos + 6],
                response[pos + 7],
                response[pos + 8],
                response[pos + 9],
            ]);
            let len = usize::from(u16::from_be_bytes([response[pos + 10], response[pos + 11]]));
            let data = &response[pos + 12..pos + 12 + len];
            let addr = match len {
                4 => IpAddr::from(<[u8; 4]>::try_from(data).expect("4 bytes")),
                _ => IpAddr::from(<[u8; 16]>::try_from(data).expect("16 bytes")),
            };
            out.push((rtype, ttl, addr));
            pos += 12 + len;
        }
        assert_eq!(pos, response.len(), "trailing bytes");
        out
    }

    #[test]
    fn answers_a_and_aaaa_and_nxdomain() {
        let zone = zone();
        let q = build_query(0x1234, "API.sealwatch.test.", TYPE_A);
        let a = zone.answer(&q).expect("a query");
        assert_eq!(
            (a.name.as_str(), a.qtype, a.rcode, a.answers),
            ("api.sealwatch.test", TYPE_A, 0, 1)
        );
        let r = a.response;
        assert_eq!(&r[0..2], &[0x12, 0x34], "id");
        assert_eq!(
            u16::from_be_bytes([r[2], r[3]]),
            0x8500,
            "QR AA RD, NOERROR"
        );
        assert_eq!(&r[12..q.len()], &q[12..], "question echoed");
        assert_eq!(
            answers(&r, q.len()),
            [(TYPE_A, 300, IpAddr::V4(Ipv4Addr::new(10, 231, 9, 2)))]
        );

        let q = build_query(7, "dual.sealwatch.test", TYPE_AAAA);
        let r = zone.answer(&q).expect("a query").response;
        assert_eq!(
            answers(&r, q.len()),
            [(
                TYPE_AAAA,
                300,
                "fd00:231:9::3".parse::<IpAddr>().expect("an address")
            )]
        );

        // A known name without records of the type: NOERROR, no answers.
        let q = build_query(8, "api.sealwatch.test", TYPE_AAAA);
        let a = zone.answer(&q).expect("a query");
        assert_eq!((a.rcode, a.answers, a.response[3] & 0xf), (0, 0, 0));

        let q = build_query(9, "nope.sealwatch.test", TYPE_A);
        let a = zone.answer(&q).expect("a query");
        assert_eq!(
            (a.rcode, a.answers, a.response[3] & 0xf),
            (NXDOMAIN, 0, NXDOMAIN)
        );
        let r = a.response;

        // Responses and garbage are not answered.
        assert!(zone.answer(&r).is_none());
        assert!(zone.answer(&[1, 2, 3]).is_none());
    }

    /// The server answers a hand-built query over loopback.
    #[test]
    fn serves_over_udp() -> Result<()> {
        let server = DnsServer::serve(UdpSocket::bind("127.0.0.1:0")?, zone())?;
        let client = UdpSocket::bind("127.0.0.1:0")?;
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        let q = build_query(42, "api.sealwatch.test", TYPE_A);
        client.send_to(&q, server.local_addr())?;
        let mut buf = [0u8; 512];
        let (len, _) = client.recv_from(&mut buf).context("no response")?;
        ensure!(
            answers(&buf[..len], q.len()) == [(TYPE_A, 300, Ipv4Addr::new(10, 231, 9, 2).into())],
            "response {:?}",
            &buf[..len]
        );
        server.wait_for("the query", Duration::from_secs(10), |q| {
            q.name == "api.sealwatch.test" && q.qtype == TYPE_A && q.answers == 1
        })?;
        Ok(())
    }

    /// `busybox nslookup` from the host gets the answers of the server in a test namespace.
    #[test]
    fn busybox_nslookup_resolves_through_the_namespace() -> Result<()> {
        let net = TestNet::create()?;
        let server = net.dns_server(
            53,
            Zone::new(60)
                .with("api.sealwatch.test", net.peer_v4())
                .with("api.sealwatch.test", net.peer_v6()),
        )?;
        for via in [net.peer_v4().to_string(), net.peer_v6().to_string()] {
            let out = cmd::ok("busybox", &["nslookup", "api.sealwatch.test", &via])?;
            for addr in [net.peer_v4().to_string(), net.peer_v6().to_string()] {
                ensure!(
                    out.contains(&addr),
                    "nslookup via {via} does not show {addr}:\n{out}"
                );
            }
            let out = cmd::run(
                &mut cmd::command("busybox", &["nslookup", "nope.sealwatch.test", &via]),
                cmd::DEFAULT_TIMEOUT,
            )?;
            let text = String::from_utf8_lossy(&out.stdout);
            ensure!(
                text.contains("NXDOMAIN"),
                "nslookup of an unknown name via {via}: {out:?}"
            );
        }
        server.wait_for("an AAAA query", Duration::from_secs(10), |q| {
            q.qtype == TYPE_AAAA && q.peer.ip() == IpAddr::V6(net.host_v6())
        })?;
        Ok(())
    }
}
