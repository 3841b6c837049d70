//! Reading one JSON event line: only the fields learning needs, unknown ones ignored.
use std::net::IpAddr;

use serde::Deserialize;

use super::model::{Outcome, PeerKey, Stamp};
use crate::net::{canonical, Protocol};

/// What became of a line given to [`super::Learner::observe_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A network event of a container with a known image: learned.
    Learned,
    /// Not a network event (process, file, loss, ...), or one with nothing to learn (port 0).
    Ignored,
    /// A network event of a host process, or of a container whose image was not known.
    WithoutImage,
    /// Not event JSON, or a network event with missing or invalid fields.
    Malformed,
}

/// A line's fields that matter, and its network observation when it is a network event.
pub(super) struct Parsed {
    pub(super) node: Option<String>,
    pub(super) time: Option<Stamp>,
    pub(super) network: Option<Result<NetEvent, Observed>>,
}

/// One connect, accept or listen of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NetEvent {
    pub(super) image: String,
    pub(super) stamp: Stamp,
    pub(super) protocol: Protocol,
    pub(super) what: What,
    pub(super) outcome: Outcome,
    /// Identical violations the daemon held back and counted in this line (`violation.repeats`).
    pub(super) repeats: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum What {
    Egress {
        peer: PeerKey,
        port: u16,
    },
    /// `port` is the local port accepted on.
    Ingress {
        peer: IpAddr,
        port: u16,
    },
    Listen {
        port: u16,
    },
}

#[derive(Deserialize)]
struct RawLine {
    time: Option<String>,
    node: Option<String>,
    kind: Option<String>,
    container: Option<RawContainer>,
    network: Option<RawNetwork>,
    violation: Option<RawViolation>,
}

#[derive(Deserialize)]
struct RawViolation {
    repeats: Option<u64>,
}

#[derive(Deserialize)]
struct RawContainer {
    image: Option<String>,
}

#[derive(Deserialize)]
struct RawNetwork {
    protocol: Protocol,
    src: Option<IpAddr>,
    sport: Option<u16>,
    dst: Option<IpAddr>,
    dport: Option<u16>,
    result: Option<String>,
    name: Option<String>,
}

pub(super) fn parse(line: &str) -> Result<Parsed, Observed> {
    let raw: RawLine = serde_json::from_str(line).map_err(|_| Observed::Malformed)?;
    let time = raw.time.as_deref().and_then(|text| {
        humantime::parse_rfc3339_weak(text)
            .ok()
            .map(|time| Stamp::new(time, text))
    });
    let network = match raw.kind.as_deref() {
        Some(kind @ ("connect" | "accept" | "listen")) => {
            let repeats = raw.violation.and_then(|v| v.repeats).unwrap_or(0);
            Some(
                network(kind, raw.container, raw.network, time.clone())
                    .map(|event| NetEvent { repeats, ..event }),
            )
        }
        _ => None,
    };
    Ok(Parsed {
        node: raw.node,
        time,
        network,
    })
}

fn network(
    kind: &str,
    container: Option<RawContainer>,
    net: Option<RawNetwork>,
    stamp: Option<Stamp>,
) -> Result<NetEvent, Observed> {
    let image = container
        .and_then(|c| c.image)
        .filter(|image| !image.is_empty())
        .ok_or(Observed::WithoutImage)?;
    let (Some(stamp), Some(net)) = (stamp, net) else {
        return Err(Observed::Malformed);
    };
    let what = match kind {
        // connect: dst is the peer; accept: src is the peer, dport the local port.
        "connect" => What::Egress {
            peer: match net.name.as_deref().and_then(host_name) {
                Some(name) => PeerKey::Name(name),
                None => PeerKey::Addr(canonical(net.dst.ok_or(Observed::Malformed)?)),
            },
            port: net.dport.ok_or(Observed::Malformed)?,
        },
        "accept" => What::Ingress {
            peer: canonical(net.src.ok_or(Observed::Malformed)?),
            port: net.dport.ok_or(Observed::Malformed)?,
        },
        _ => What::Listen {
            port: net.sport.ok_or(Observed::Malformed)?,
        },
    };
    let port = match what {
        What::Egress { port, .. } | What::Ingress { port, .. } | What::Listen { port } => port,
    };
    if port == 0 {
        return Err(Observed::Ignored); // no policy can name port 0
    }
    Ok(NetEvent {
        image,
        stamp,
        protocol: net.protocol,
        what,
        outcome: Outcome::from_result(net.result.as_deref()),
        repeats: 0,
    })
}

/// The name as a policy peer, when the policy would accept it as a plain host name (DNS names
/// can hold bytes a policy cannot): lowercase, no trailing dot, RFC 1123 labels (`_` allowed),
/// not ending in a numeric label. Otherwise the connection is learned by address.
fn host_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    let numeric_tld = name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    (name.len() <= 253 && name.split('.').all(label_ok) && !numeric_tld).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_the_policy_accepts() {
        assert_eq!(
            host_name("API.Example.com."),
            Some("api.example.com".into())
        );
        assert_eq!(
            host_name("_sip._tcp.example.com"),
            Some("_sip._tcp.example.com".into())
        );
        for bad in [
            "",
            "a..b",
            "*.example.com",
            "a b.com",
            "-a.com",
            "10.0.0.1",
            "a\\046b.com",
        ] {
            assert_eq!(host_name(bad), None, "{bad}");
        }
        assert_eq!(host_name(&"a.".repeat(128)), None);
    }
}
