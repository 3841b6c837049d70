//! cgroup creation and removal (`ebpf/probes/src/cgroup.rs`): containers are registered before
//! their first process, so the daemon does not start without them.
use sealwatch_abi::programs::container::*;

use super::{Family, Need::Required, Program};

pub static FAMILY: Family = Family {
    sensor: "container",
    degraded: "cgroup tracepoint not attached: containers are registered late",
    programs: &[
        Program::tp_btf(CGROUP_MKDIR, "cgroup_mkdir", Required),
        Program::tp_btf(CGROUP_RMDIR, "cgroup_rmdir", Required),
    ],
};
