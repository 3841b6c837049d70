//! Peer strings of network entries and sets: `set:NAME`, a CIDR, an address, or a DNS host name.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::sets::{canonical_net, Builtin};

/// Where a peer string is written; it decides which forms are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerPlace {
    /// `egress[].to`: every form.
    To,
    /// `ingress[].from`: no host names (an accepted connection has no name to match).
    From,
    /// A list under `sets`: CIDRs and addresses only.
    Set,
}

/// One peer as written, with `set:` references not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Peer {
    Net(IpNet),
    Set(SetRef),
    Name(NamePattern),
}

/// A `set:NAME` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetRef {
    Builtin(Builtin),
    /// A set from `network.sets`.
    Defined(String),
}

pub(crate) const SET_PREFIX: &str = "set:";

/// Parses a peer string written at `place`. A `set:` reference is returned unchecked against
/// the sets the policy defines (the caller knows them).
pub(crate) fn parse_peer(text: &str, place: PeerPlace) -> Result<Peer, String> {
    if let Some(name) = text.strip_prefix(SET_PREFIX) {
        if place == PeerPlace::Set {
            return Err(format!(
                "`{text}`: a set lists CIDRs and addresses only, not other sets"
            ));
        }
        if name.is_empty() {
            return Err("`set:` names no set; write `set:NAME`".to_owned());
        }
        return Ok(Peer::Set(match Builtin::from_name(name) {
            Some(builtin) => SetRef::Builtin(builtin),
            None => SetRef::Defined(name.to_owned()),
        }));
    }
    if text.contains('/') {
        return parse_cidr(text).map(Peer::Net);
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(Peer::Net(canonical_net(IpNet::from(addr))));
    }
    if text.contains(':') || text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("invalid address `{text}`"));
    }
    let name = NamePattern::parse(text)?;
    match place {
        PeerPlace::To => Ok(Peer::Name(name)),
        PeerPlace::From => Err(format!(
            "host name `{text}` in `from`: names are allowed in `egress.to` only; use an \
             address, a CIDR or a set"
        )),
        PeerPlace::Set => Err(format!(
            "host name `{text}` in a set: sets hold CIDRs and addresses only"
        )),
    }
}

/// A CIDR without host bits, IPv4-mapped IPv6 ones (`::ffff:10.0.0.0/104`) given as IPv4.
fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let net: IpNet = text.parse().map_err(|_| {
        format!(
            "invalid CIDR `{text}`; expected ADDRESS/PREFIX-LENGTH such as 10.0.0.0/8 or fd00::/64"
        )
    })?;
    if net.trunc() != net {
        return Err(format!(
            "CIDR `{text}` has host bits set; did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(canonical_net(net))
}

/// A DNS host name to match, or `*.SUFFIX` for any name below SUFFIX. Kept lowercase without a
/// trailing dot; matching ignores case and a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NamePattern {
    /// The name, or the suffix after `*.`.
    name: String,
    wildcard: bool,
}

impl NamePattern {
    pub(crate) fn parse(text: &str) -> Result<NamePattern, String> {
        let lower = text.to_ascii_lowercase();
        let trimmed = lower.strip_suffix('.').unwrap_or(&lower);
        let (name, wildcard) = match trimmed.strip_prefix("*.") {
            Some(suffix) => (suffix, true),
            None => (trimmed, false),
        };
        if name.contains('*') {
            return Err(format!(
                "invalid host name `{text}`: `*` is allowed only as the whole first label, as in \
                 `*.example.com`"
            ));
        }
        check_host_name(name).map_err(|why| format!("invalid host name `{text}`: {why}"))?;
        Ok(NamePattern {
            name: name.to_owned(),
            wildcard,
        })
    }

    /// Whether `name` (any case, trailing dot or not) is this name, or below it for `*.`.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
        let own = self.name.as_bytes();
        if !self.wildcard {
            return name.eq_ignore_ascii_case(own);
        }
        // At least one label, then a dot, then the suffix.
        name.len() > own.len() + 1
            && name[name.len() - own.len() - 1] == b'.'
            && name[name.len() - own.len()..].eq_ignore_ascii_case(own)
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

/// RFC 1123 host name rules (lowercase already), with `_` allowed as in service names. A name
/// whose last label is all digits is a mistyped address (`10.0.0.256`), not a name.
fn check_host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err("a name has letters, digits, `-`, `_` and dots only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label cannot start or end with `-`");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("not a valid address, and a name cannot end in a numeric label");
    }
    Ok(())
}
