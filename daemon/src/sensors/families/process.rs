//! Process lifecycle (`ebpf/probes/src/process.rs`): exec, fork and exit keep the process table
//! exact and attribute every exec, so the daemon does not start without them.
use sealwatch_abi::programs::process::*;

use super::{Family, Need::Required, Program};

pub static FAMILY: Family = Family {
    sensor: "process",
    degraded: "process tracepoint not attached: process events are incomplete",
    programs: &[
        Program::tp_btf(SCHED_PROCESS_EXEC, "sched_process_exec", Required),
        Program::tp_btf(SCHED_PROCESS_FORK, "sched_process_fork", Required),
        Program::tp_btf(SCHED_PROCESS_EXIT, "sched_process_exit", Required),
    ],
};
