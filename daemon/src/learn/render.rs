//! One learned image as a complete policy file: header comments, then `version` and a single
//! workload whose entries each carry a comment saying when they were first seen and how often.
use std::fmt::Write as _;

use super::model::{Group, ImageNet, PeerKey, Tally, MAX_ITEMS_PER_IMAGE};
use super::naming::exact_glob;
use super::yaml::{comment, quote, quoted_list};

/// Consecutive ports from this many on are written as one `"lo-hi"` range.
const MIN_RUN_AS_RANGE: usize = 3;

pub(super) struct File<'a> {
    pub(super) image: &'a str,
    pub(super) workload: &'a str,
    pub(super) node: &'a str,
    pub(super) window: (&'a str, &'a str),
    pub(super) net: &'a ImageNet,
}

impl File<'_> {
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# sealwatch learn: image {}, node {}, observed {} to {}",
            comment(self.image),
            comment(self.node),
            comment(self.window.0),
            comment(self.window.1),
        );
        out.push_str(
            "# Review every entry, then merge the workload into your policy's network.workloads.\n",
        );
        if self.net.dropped > 0 {
            let _ = writeln!(
                out,
                "# {} further observations are not listed: the image passed {MAX_ITEMS_PER_IMAGE} \
                 distinct peers and ports.",
                self.net.dropped
            );
        }
        out.push_str("version: 1\nnetwork:\n  workloads:\n");
        let _ = writeln!(out, "    - name: {}", quote(self.workload));
        out.push_str("      match:\n");
        let _ = writeln!(out, "        image: {}", quote(&exact_glob(self.image)));
        self.egress(&mut out);
        self.ingress(&mut out);
        self.listen(&mut out);
        out
    }

    fn egress(&self, out: &mut String) {
        out.push_str("      egress:\n");
        loopback(out, "to", self.net.loopback_egress.as_ref());
        for ((peer, protocol), group) in &self.net.egress {
            let peer = match peer {
                PeerKey::Name(name) => name.clone(),
                PeerKey::Addr(addr) => addr.to_string(),
            };
            entry_comment(out, &group.tally, "connection");
            let _ = writeln!(out, "        - to: {}", quoted_list([peer.as_str()]));
            ports_and_protocol(out, group, protocol.as_str());
        }
    }

    fn ingress(&self, out: &mut String) {
        out.push_str("      ingress:\n");
        loopback(out, "from", self.net.loopback_ingress.as_ref());
        for ((port, protocol), group) in &self.net.ingress {
            let peers: Vec<String> = group.members.iter().map(|a| a.to_string()).collect();
            entry_comment(out, &group.tally, "connection");
            let _ = writeln!(
                out,
                "        - from: {}",
                quoted_list(peers.iter().map(String::as_str))
            );
            let _ = writeln!(out, "          ports: [{port}]");
            let _ = writeln!(out, "          protocol: {}", protocol.as_str());
        }
    }

    fn listen(&self, out: &mut String) {
        if self.net.listen.is_empty() {
            return;
        }
        out.push_str("      listen:\n");
        for (protocol, group) in &self.net.listen {
            entry_comment(out, &group.tally, "time");
            let _ = writeln!(out, "        - ports: {}", port_list(&group.members));
            let _ = writeln!(out, "          protocol: {}", protocol.as_str());
        }
    }
}

/// The default rules allow loopback both ways; a workload replaces them, so it keeps that unless
/// the reviewer removes it.
fn loopback(out: &mut String, key: &str, tally: Option<&Tally>) {
    out.push_str("        # loopback, as the default rules allow");
    match tally {
        Some(tally) => {
            out.push_str("; ");
            out.push_str(&tally_text(tally, "connection"));
        }
        None => out.push_str(" (none seen)"),
    }
    out.push('\n');
    let _ = writeln!(out, "        - {key}: [\"set:loopback\"]");
}

fn entry_comment(out: &mut String, tally: &Tally, noun: &str) {
    let _ = writeln!(out, "        # {}", tally_text(tally, noun));
}

/// `first seen T, 12 connections (2 blocked, 1 refused)`.
fn tally_text(tally: &Tally, noun: &str) -> String {
    let plural = if tally.count == 1 { "" } else { "s" };
    let mut text = format!(
        "first seen {}, {} {noun}{plural}",
        comment(&tally.first.text),
        tally.count
    );
    if !tally.failed.is_empty() {
        let failed: Vec<String> = tally
            .failed
            .iter()
            .map(|(result, n)| format!("{n} {result}"))
            .collect();
        let _ = write!(text, " ({})", failed.join(", "));
    }
    text
}

fn ports_and_protocol(out: &mut String, group: &Group<u16>, protocol: &str) {
    let _ = writeln!(out, "          ports: {}", port_list(&group.members));
    let _ = writeln!(out, "          protocol: {protocol}");
}

/// `[53, 80, "8000-8003"]`: sorted, runs of consecutive ports as ranges.
fn port_list<'a>(ports: impl IntoIterator<Item = &'a u16>) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &port in ports {
        match runs.last_mut() {
            Some((_, hi)) if u32::from(*hi) + 1 == u32::from(port) => *hi = port,
            _ => runs.push((port, port)),
        }
    }
    let mut items = Vec::new();
    for (lo, hi) in runs {
        if usize::from(hi - lo) + 1 >= MIN_RUN_AS_RANGE {
            items.push(format!("\"{lo}-{hi}\""));
        } else {
            items.extend((lo..=hi).map(|p| p.to_string()));
        }
    }
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_runs_become_ranges() {
        assert_eq!(port_list(&[80u16]), "[80]");
        assert_eq!(port_list(&[80u16, 81]), "[80, 81]");
        assert_eq!(
            port_list(&[53u16, 8000, 8001, 8002, 8003, 9000, 65534, 65535]),
            "[53, \"8000-8003\", 9000, 65534, 65535]"
        );
        assert_eq!(port_list(&[1u16, 2, 3]), "[\"1-3\"]");
    }
}
