//! DNS responses → which names map to which addresses, for name-based network rules.
//!
//! Written by hand rather than with a DNS crate: we need only the header, the question and the
//! answer section's A/AAAA/CNAME records, on untrusted bytes that may be cut short by the kernel
//! capture; the full crates (hickory-proto, domain) bring a whole resolver's worth of types and
//! dependencies for that. Safety rules: every read is bounds-checked, compression pointers must
//! point strictly backwards (so they cannot loop), names are capped at 255 wire bytes, labels at
//! 63, and the work is linear in the message length whatever the counts in the header say.
//!
//! Only records on the CNAME chain that starts at a question name are learned, as a stub resolver
//! would accept them: an unrelated A record in a response cannot teach the address of a name
//! nobody asked for.
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

const HEADER_LEN: usize = 12;
/// RFC 1035 §3.1: a name takes at most 255 bytes on the wire, length bytes included.
const MAX_NAME_WIRE: usize = 255;
const MAX_LABEL: usize = 63;
/// Real messages chain a few pointers per name; the strictly-backwards rule already bounds this,
/// the cap just keeps one hostile name cheap.
const MAX_POINTERS: usize = 64;
/// (name, address) pairs reported per message: far more than any real answer holds.
const MAX_PAIRS: usize = 1024;

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A question of a message: its name (as in [`DnsAnswer::names`]) and type, class IN.
pub type Question = (String, u16);

/// What a query asked: the id and questions an answer must repeat to count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsQuery {
    pub id: u16,
    /// Class IN questions, in message order.
    pub questions: Vec<Question>,
}

/// What a DNS response taught: each name with the addresses it resolves to and their TTLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The id and questions it answers.
    pub query: DnsQuery,
    /// Sorted by name; each name's addresses sorted, each once (with its longest TTL).
    /// Names are lowercase, without the trailing dot, in presentation form (bytes outside
    /// printable ASCII, `.` and `\` inside a label are written `\DDD`).
    pub names: Vec<(String, Vec<(IpAddr, u32)>)>,
    /// The message ended inside the answer section (capture limit): the records before the cut
    /// are reported, later ones are missing.
    pub truncated: bool,
}

impl DnsAnswer {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Why a message taught nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DnsError {
    #[error("message ends inside the header or question section")]
    Truncated,
    #[error("TCP message without its 2-byte length prefix")]
    NoLengthPrefix,
    #[error("not a response (QR bit clear)")]
    NotResponse,
    #[error("not a query (QR bit set)")]
    NotQuery,
    #[error("opcode {0} is not a standard query")]
    Opcode(u8),
    #[error("response code {0} is not NOERROR")]
    Rcode(u8),
    #[error("label at offset {0} is longer than 63 bytes or of a reserved type")]
    BadLabel(usize),
    #[error("name at offset {0} is longer than 255 bytes")]
    NameTooLong(usize),
    #[error("compression pointer at offset {0} does not point backwards")]
    BadPointer(usize),
    #[error("name at offset {0} has too many compression pointers")]
    TooManyPointers(usize),
    #[error("record data at offset {0} does not fit its type")]
    BadRecordData(usize),
}

/// Parses a response as carried in one UDP datagram.
pub fn parse_udp(message: &[u8]) -> Result<DnsAnswer, DnsError> {
    parse(message)
}

/// Parses a response as carried over TCP (see [`tcp_message`]).
pub fn parse_tcp(stream: &[u8]) -> Result<DnsAnswer, DnsError> {
    parse(tcp_message(stream)?)
}

/// Parses a query, as carried in one UDP datagram or (`tcp`) with its length prefix.
pub fn parse_query(message: &[u8], tcp: bool) -> Result<DnsQuery, DnsError> {
    let msg = if tcp { tcp_message(message)? } else { message };
    let mut r = Reader { msg, pos: 0 };
    if r.flags()? & 0x8000 != 0 {
        return Err(DnsError::NotQuery);
    }
    r.query()
}

/// A message as carried over TCP: a 2-byte big-endian length, then the message. Bytes after the
/// announced length (the next message) are ignored; fewer bytes than announced are treated as a
/// cut message.
fn tcp_message(stream: &[u8]) -> Result<&[u8], DnsError> {
    let (prefix, rest) = stream
        .split_first_chunk::<2>()
        .ok_or(DnsError::NoLengthPrefix)?;
    let len = usize::from(u16::from_be_bytes(*prefix));
    Ok(rest.get(..len).unwrap_or(rest))
}

fn parse(msg: &[u8]) -> Result<DnsAnswer, DnsError> {
    let mut r = Reader { msg, pos: 0 };
    let flags = r.flags()?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::NotResponse);
    }
    let rcode = (flags & 0xf) as u8;
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let ancount = r.u16_at(6)?;
    let query = r.query()?;
    let questions: BTreeSet<String> = query.questions.iter().map(|(n, _)| n.clone()).collect();

    let mut records = Records::default();
    let mut truncated = false;
    for _ in 0..ancount {
        match r.record(&mut records) {
            Ok(()) => {}
            Err(DnsError::Truncated) => {
                truncated = true;
                break;
            }
            Err(other) => return Err(other),
        }
    }
    Ok(DnsAnswer {
        query,
        names: records.resolve(&questions),
        truncated,
    })
}

/// The answer section's useful records.
#[derive(Default)]
struct Records {
    /// owner → target; the first CNAME of an owner wins (an owner may have only one).
    cnames: BTreeMap<String, (String, u32)>,
    addrs: BTreeMap<String, Vec<(IpAddr, u32)>>,
}

impl Records {
    /// Walks each question's CNAME chain; every name on the chain maps to the addresses of the
    /// names after it, with the smallest TTL along the way. At most `MAX_PAIRS` (name, address)
    /// pairs, so a long chain times many addresses stays cheap even in a 64 KiB TCP message.
    fn resolve(&self, questions: &BTreeSet<String>) -> Vec<(String, Vec<(IpAddr, u32)>)> {
        let mut out: BTreeMap<&str, BTreeMap<IpAddr, u32>> = BTreeMap::new();
        let mut pairs = 0;
        for question in questions {
            // (name, smallest CNAME TTL from it to the current chain end)
            let mut chain: Vec<(&str, u32)> = vec![(question, u32::MAX)];
            let mut seen = BTreeSet::from([question.as_str()]);
            let mut current = question.as_str();
            loop {
                for &(addr, ttl) in self.addrs.get(current).into_iter().flatten() {
                    for &(name, chain_ttl) in &chain {
                        let addrs = out.entry(name).or_default();
                        if !addrs.contains_key(&addr) {
                            if pairs >= MAX_PAIRS {
                                continue;
                            }
                            pairs += 1;
                        }
                        let best = addrs.entry(addr).or_default();
                        *best = (*best).max(ttl.min(chain_ttl));
                    }
                }
                let Some((target, ttl)) = self.cnames.get(current) else {
                    break;
                };
                if !seen.insert(target) {
                    break; // a CNAME loop: the chain ends here
                }
                for link in &mut chain {
                    link.1 = link.1.min(*ttl);
                }
                chain.push((target, u32::MAX));
                current = target;
            }
        }
        out.into_iter()
            .filter(|(name, addrs)| !name.is_empty() && !addrs.is_empty())
            .map(|(name, addrs)| (name.to_owned(), addrs.into_iter().collect()))
            .collect()
    }
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// The header's flags, once the whole header is there and its opcode is a standard query.
    fn flags(&self) -> Result<u16, DnsError> {
        if self.msg.len() < HEADER_LEN {
            return Err(DnsError::Truncated);
        }
        let flags = self.u16_at(2)?;
        let opcode = ((flags >> 11) & 0xf) as u8;
        if opcode != 0 {
            return Err(DnsError::Opcode(opcode));
        }
        Ok(flags)
    }

    /// The id and the class IN questions; leaves the cursor after the question section.
    fn query(&mut self) -> Result<DnsQuery, DnsError> {
        let id = self.u16_at(0)?;
        let qdcount = self.u16_at(4)?;
        self.pos = HEADER_LEN;
        let mut questions = Vec::new();
        for _ in 0..qdcount {
            let name = self.name()?;
            let qtype = self.u16()?;
            let qclass = self.u16()?;
            if qclass == CLASS_IN {
                questions.push((name, qtype));
            }
        }
        Ok(DnsQuery { id, questions })
    }

    fn u16_at(&self, at: usize) -> Result<u16, DnsError> {
        match self.msg.get(at..at + 2) {
            Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
            _ => Err(DnsError::Truncated),
        }
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let value = self.u16_at(self.pos)?;
        self.pos += 2;
        Ok(value)
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        let hi = self.u16()?;
        let lo = self.u16()?;
        Ok((u32::from(hi) << 16) | u32::from(lo))
    }

    /// One resource record; A, AAAA and CNAME of class IN are kept.
    fn record(&mut self, records: &mut Records) -> Result<(), DnsError> {
        let owner = self.name()?;
        let rtype = self.u16()?;
        let class = self.u16()?;
        // RFC 2181 §8: a TTL with the top bit set is read as zero.
        let ttl = match self.u32()? {
            ttl if ttl & 0x8000_0000 != 0 => 0,
            ttl => ttl,
        };
        let rdlen = usize::from(self.u16()?);
        let start = self.pos;
        let end = start + rdlen;
        let rdata = self.msg.get(start..end).ok_or(DnsError::Truncated)?;
        if class == CLASS_IN {
            match rtype {
                TYPE_A => {
                    let octets: [u8; 4] = rdata
                        .try_into()
                        .map_err(|_| DnsError::BadRecordData(start))?;
                    push_addr(records, owner, IpAddr::V4(Ipv4Addr::from(octets)), ttl);
                }
                TYPE_AAAA => {
                    let octets: [u8; 16] = rdata
                        .try_into()
                        .map_err(|_| DnsError::BadRecordData(start))?;
                    push_addr(records, owner, IpAddr::V6(Ipv6Addr::from(octets)), ttl);
                }
                TYPE_CNAME => {
                    let target = self.name()?;
                    if self.pos != end {
                        return Err(DnsError::BadRecordData(start));
                    }
                    records.cnames.entry(owner).or_insert((target, ttl));
                }
                _ => {}
            }
        }
        self.pos = end;
        Ok(())
    }

    /// A possibly compressed name at the cursor, in presentation form; the cursor moves past it
    /// (past the first pointer, if any).
    fn name(&mut self) -> Result<String, DnsError> {
        let name_start = self.pos;
        let mut out = String::new();
        let mut at = self.pos;
        // Where the next pointer must point below: the start of the run we are reading.
        let mut floor = self.pos;
        let mut wire_len = 1; // the final zero byte
        let mut pointers = 0;
        let mut resume = None;
        loop {
            let len = *self.msg.get(at).ok_or(DnsError::Truncated)?;
            match len {
                0 => {
                    self.pos = resume.unwrap_or(at + 1);
                    return Ok(out);
                }
                1..=0x3f => {
                    let label_len = usize::from(len);
                    debug_assert!(label_len <= MAX_LABEL);
                    wire_len += 1 + label_len;
                    if wire_len > MAX_NAME_WIRE {
                        return Err(DnsError::NameTooLong(name_start));
                    }
                    let label = self
                        .msg
                        .get(at + 1..at + 1 + label_len)
                        .ok_or(DnsError::Truncated)?;
                    if !out.is_empty() {
                        out.push('.');
                    }
                    push_label(&mut out, label);
                    at += 1 + label_len;
                }
                0xc0..=0xff => {
                    let low = *self.msg.get(at + 1).ok_or(DnsError::Truncated)?;
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    if target >= floor {
                        return Err(DnsError::BadPointer(at));
                    }
                    pointers += 1;
                    if pointers > MAX_POINTERS {
                        return Err(DnsError::TooManyPointers(name_start));
                    }
                    resume.get_or_insert(at + 2);
                    floor = target;
                    at = target;
                }
                // 0x40 and 0x80: extended / reserved label types (RFC 6891 §5).
                _ => return Err(DnsError::BadLabel(at)),
            }
        }
    }
}

fn push_addr(records: &mut Records, owner: String, addr: IpAddr, ttl: u32) {
    records.addrs.entry(owner).or_default().push((addr, ttl));
}

/// Lowercase ASCII; `\DDD` for bytes that would be ambiguous or unprintable in a name.
fn push_label(out: &mut String, label: &[u8]) {
    for &byte in label {
        match byte {
            b'.' | b'\\' => out.push_str(&format!("\\{byte:03}")),
            0x21..=0x7e => out.push(char::from(byte.to_ascii_lowercase())),
            _ => out.push_str(&format!("\\{byte:03}")),
        }
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
