//! DNS over UDP (`ebpf/probes/src/dns.rs`), for name-based network allow entries: on the root of
//! the cgroup v2 tree, a `cgroup_skb/ingress` program reads answers and a `cgroup_skb/egress` one
//! the queries they must answer (UDP and TCP). Optional: without the answers, names are learnt
//! from TCP answers only; without the queries, no answer matches one, and no name is learnt.
use sealwatch_abi::programs::dns::{DNS_ANSWERS, DNS_QUERIES};

use super::{Attach, Family, Need::Optional, Program};

pub static FAMILY: Family = Family {
    // Part of the network sensor, as logs and metrics have always called it.
    sensor: "network",
    degraded: "DNS over UDP is not fully seen: name-based network allow entries match only the names answers to queries seen in the kernel taught (none without the query program)",
    programs: &[
        Program::with(DNS_ANSWERS, Attach::RootCgroupSkbIngress, Optional),
        Program::with(DNS_QUERIES, Attach::RootCgroupSkbEgress, Optional),
    ],
};
