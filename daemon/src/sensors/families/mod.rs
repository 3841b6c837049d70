//! The sensor registry: every kernel program the daemon loads, grouped by hook family, one file
//! per family. A family says what logs and metrics call it, what is lost when one of its optional
//! programs fails, and for each program its name (a `sealwatch_abi::programs` constant, which the
//! probe asserts equals its function's name) and how it attaches. The loader (`super::attach`)
//! only walks this list.
//!
//! Adding a probe: its function in `ebpf/probes`, its constant in `sealwatch_abi::programs`, its
//! entry in its family's file here.
mod container;
mod dns;
pub mod enforce;
mod file;
mod net;
mod process;
#[cfg(test)]
mod tests;
mod uring;

/// Every family, in attach order within each kind of hook (see `super::attach`).
pub static FAMILIES: &[&Family] = &[
    &process::FAMILY,
    &container::FAMILY,
    &file::FAMILY,
    &uring::FAMILY,
    &net::FAMILY,
    &dns::FAMILY,
    &enforce::FAMILY,
];

/// A hook family: the programs of one sensor.
#[derive(Debug)]
pub struct Family {
    /// What logs and metrics (`sensor` label) call it.
    pub sensor: &'static str,
    /// The warning logged when one of its optional programs does not load or attach: what the
    /// daemon no longer sees.
    pub degraded: &'static str,
    pub programs: &'static [Program],
}

/// One program of the kernel object.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// Its name in the object (`sealwatch_abi::programs`).
    pub name: &'static str,
    pub attach: Attach,
    pub need: Need,
}

/// How (and when) a program attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// `tp_btf` on the kernel tracepoint `event`: loaded against the kernel's BTF at start-up.
    TpBtf { event: &'static str },
    /// A classic tracepoint `category:event`, attached by its tracefs id.
    TracePoint {
        category: &'static str,
        event: &'static str,
    },
    /// `cgroup_skb/ingress` on the root of the cgroup v2 tree: every container's sockets.
    RootCgroupSkbIngress,
    /// `cgroup_skb/egress` on the root of the cgroup v2 tree: every container's sockets.
    RootCgroupSkbEgress,
    /// `cgroup_sock_addr`: loaded at start-up, attached to container cgroups later by
    /// `super::enforce::Enforcement`. The family's programs load together or not at all.
    CgroupSockAddr,
}

/// What a failure to load or attach costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Start-up fails (`SensorError::Program`).
    Required,
    /// The daemon runs without it: the family's `degraded` warning and an `AttachFailure`.
    Optional,
}

impl Program {
    /// A `tp_btf` program on the kernel tracepoint `event`.
    pub const fn tp_btf(name: &'static str, event: &'static str, need: Need) -> Program {
        Program {
            name,
            attach: Attach::TpBtf { event },
            need,
        }
    }

    /// A syscall tracepoint program, named after its tracepoint (`sys_enter_*`/`sys_exit_*`).
    pub const fn syscall(name: &'static str, need: Need) -> Program {
        Program {
            name,
            attach: Attach::TracePoint {
                category: "syscalls",
                event: name,
            },
            need,
        }
    }

    pub const fn with(name: &'static str, attach: Attach, need: Need) -> Program {
        Program { name, attach, need }
    }
}

/// Every registered program with its family, in registry order.
pub fn programs() -> impl Iterator<Item = (&'static Family, &'static Program)> {
    FAMILIES.iter().flat_map(|family| {
        family
            .programs
            .iter()
            .map(move |program| (*family, program))
    })
}
