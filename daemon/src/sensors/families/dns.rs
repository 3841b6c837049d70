//! DNS answers over UDP (`ebpf/probes/src/dns.rs`), for name-based network allow entries: one
//! `cgroup_skb/ingress` program on the root of the cgroup v2 tree. Optional: without it, names
//! are learnt from TCP answers only.
use sealwatch_abi::programs::dns::DNS_ANSWERS;

use super::{Attach, Family, Need::Optional, Program};

pub static FAMILY: Family = Family {
    // Part of the network sensor, as logs and metrics have always called it.
    sensor: "network",
    degraded: "DNS answers over UDP are not seen: name-based network allow entries match only TCP-resolved names",
    programs: &[Program::with(
        DNS_ANSWERS,
        Attach::RootCgroupSkbIngress,
        Optional,
    )],
};
