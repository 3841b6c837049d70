//! io_uring requests (`ebpf/probes/src/uring.rs`): opens, renames, unlinks, links and connects
//! submitted through a ring, judged like their syscalls. Optional: a kernel without them (or
//! without io_uring in BTF) loses only what rings do, and the daemon says so.
use sealwatch_abi::programs::uring::*;

use super::{Family, Need::Optional, Program};

pub static FAMILY: Family = Family {
    sensor: "io_uring",
    degraded:
        "io_uring tracepoint not attached: operations submitted through io_uring are not judged",
    programs: &[
        Program::tp_btf(IO_URING_SUBMIT_REQ, "io_uring_submit_req", Optional),
        Program::tp_btf(IO_URING_COMPLETE, "io_uring_complete", Optional),
    ],
};
