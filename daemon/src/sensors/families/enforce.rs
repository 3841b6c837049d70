//! In-kernel egress enforcement (`ebpf/probes/src/block.rs`): the `cgroup/connect4|6` and
//! `cgroup/sendmsg4|6` hooks, loaded at start-up and attached to the cgroups of blocking
//! workloads by `sensors::enforce`. Optional, and all or nothing: without them connections are
//! still judged and reported, only not blocked.
use sealwatch_abi::programs::enforce::*;

use super::{Attach::CgroupSockAddr, Family, Need::Optional, Program};

/// How a failure of the hooks is recorded (`AttachFailure::program`): they fail together.
pub const GROUP: &str = "cgroup_sock_addr";

pub static FAMILY: Family = Family {
    sensor: "enforce",
    degraded:
        "network `action: block` cannot be enforced; connections are still judged and reported",
    programs: &[
        Program::with(BLOCK_CONNECT4, CgroupSockAddr, Optional),
        Program::with(BLOCK_CONNECT6, CgroupSockAddr, Optional),
        Program::with(BLOCK_SENDMSG4, CgroupSockAddr, Optional),
        Program::with(BLOCK_SENDMSG6, CgroupSockAddr, Optional),
    ],
};

/// The hooks' program names, in registry order.
pub fn hooks() -> impl Iterator<Item = &'static str> {
    FAMILY.programs.iter().map(|program| program.name)
}
