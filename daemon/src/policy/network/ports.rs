//! Ports and protocols of network entries: what a policy writes (`ports:`, `protocol:`) and the
//! port rules the kernel allowlist carries.

use crate::net::Protocol;

/// The transport protocols one entry covers (`protocol:`; `any` when left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocols {
    Tcp,
    Udp,
    Any,
}

impl Protocols {
    pub(crate) const NAMES: &'static str = "tcp, udp, any";

    pub(crate) fn from_name(name: &str) -> Option<Protocols> {
        match name {
            "tcp" => Some(Protocols::Tcp),
            "udp" => Some(Protocols::Udp),
            "any" => Some(Protocols::Any),
            _ => None,
        }
    }

    fn covers(self, protocol: Protocol) -> bool {
        match self {
            Protocols::Any => true,
            Protocols::Tcp => protocol == Protocol::Tcp,
            Protocols::Udp => protocol == Protocol::Udp,
        }
    }
}

/// An inclusive range of ports as written: a single port is `lo == hi`; both are 1-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    pub(crate) lo: u16,
    pub(crate) hi: u16,
}

impl PortRange {
    /// A port as written in a list: 1-65535 (0 is "any port" to the kernel, never a real one).
    pub(crate) fn single(port: u64) -> Result<PortRange, String> {
        match u16::try_from(port) {
            Ok(0) => Err(
                "port 0 is not a port; ports are 1-65535 (omit `ports` for any port)".to_owned(),
            ),
            Ok(port) => Ok(PortRange { lo: port, hi: port }),
            Err(_) => Err(format!("port {port} is out of range; ports are 1-65535")),
        }
    }

    /// A `"lo-hi"` string, both ends included.
    pub(crate) fn parse(text: &str) -> Result<PortRange, String> {
        let bad = || {
            format!(
                "invalid port range `{text}`; write a range as \"lo-hi\" (e.g. \"8000-8100\") \
                 and a single port as a number"
            )
        };
        let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
        let number = |part: &str| -> Result<u64, String> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u64>().map_err(|_| bad())
        };
        let (lo, hi) = (number(lo)?, number(hi)?);
        let range = |port| {
            PortRange::single(port).map_err(|reason| format!("in port range `{text}`: {reason}"))
        };
        let (lo, hi) = (range(lo)?.lo, range(hi)?.lo);
        if lo > hi {
            return Err(format!(
                "invalid port range `{text}`: the first port is greater than the last"
            ));
        }
        Ok(PortRange { lo, hi })
    }
}

/// What one entry allows in port terms: its protocols and its ports (`None` = any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ports {
    pub(crate) protocols: Protocols,
    pub(crate) ranges: Option<Vec<PortRange>>,
}

impl Ports {
    /// Any port, any protocol: the default of an entry that says neither.
    pub(crate) const ANY: Ports = Ports {
        protocols: Protocols::Any,
        ranges: None,
    };

    pub(crate) fn allows(&self, protocol: Protocol, port: u16) -> bool {
        self.protocols.covers(protocol)
            && self.ranges.as_ref().is_none_or(|ranges| {
                ranges
                    .iter()
                    .any(|range| (range.lo..=range.hi).contains(&port))
            })
    }

    /// The same permission as kernel port rules (not normalized).
    pub(crate) fn rules(&self) -> Vec<PortRule> {
        let (tcp, udp) = match self.protocols {
            Protocols::Tcp => (true, false),
            Protocols::Udp => (false, true),
            Protocols::Any => (true, true),
        };
        match &self.ranges {
            None => vec![PortRule {
                tcp,
                udp,
                lo: 0,
                hi: u16::MAX,
            }],
            Some(ranges) => ranges
                .iter()
                .map(|range| PortRule {
                    tcp,
                    udp,
                    lo: range.lo,
                    hi: range.hi,
                })
                .collect(),
        }
    }
}

/// One port rule of the kernel allowlist: the ports `lo..=hi` for the protocols flagged. "Any
/// port" is `0..=65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRule {
    pub tcp: bool,
    pub udp: bool,
    pub lo: u16,
    pub hi: u16,
}

impl PortRule {
    /// Every port of both protocols.
    pub const ANY: PortRule = PortRule {
        tcp: true,
        udp: true,
        lo: 0,
        hi: u16::MAX,
    };

    /// Whether this rule allows `port` over `protocol`.
    pub fn allows(&self, protocol: Protocol, port: u16) -> bool {
        let flagged = match protocol {
            Protocol::Tcp => self.tcp,
            Protocol::Udp => self.udp,
        };
        flagged && (self.lo..=self.hi).contains(&port)
    }
}

/// The same permission as `rules` in few rules, in a fixed order: overlapping and adjacent
/// ranges of one protocol are merged, and a range both protocols share becomes one rule. Fewer
/// rules matter because a kernel allowlist entry holds a bounded number of them.
pub(crate) fn normalize(rules: impl IntoIterator<Item = PortRule>) -> Vec<PortRule> {
    let (mut tcp, mut udp) = (Vec::new(), Vec::new());
    for rule in rules {
        if rule.tcp {
            tcp.push((rule.lo, rule.hi));
        }
        if rule.udp {
            udp.push((rule.lo, rule.hi));
        }
    }
    let (tcp, udp) = (merge(tcp), merge(udp));
    let mut out: Vec<PortRule> = Vec::with_capacity(tcp.len() + udp.len());
    for &(lo, hi) in &tcp {
        let shared = udp.contains(&(lo, hi));
        out.push(PortRule {
            tcp: true,
            udp: shared,
            lo,
            hi,
        });
    }
    for &(lo, hi) in &udp {
        if !tcp.contains(&(lo, hi)) {
            out.push(PortRule {
                tcp: false,
                udp: true,
                lo,
                hi,
            });
        }
    }
    out.sort_by_key(|rule| (rule.lo, rule.hi, !rule.tcp, !rule.udp));
    out
}

/// Sorted, disjoint, non-adjacent ranges covering the same ports as `ranges`.
fn merge(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            // u32: `hi + 1` of port 65535 must not wrap.
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}
