//! Connections, accepts, listeners, first datagrams and TCP DNS answers
//! (`ebpf/probes/src/net.rs`): syscall tracepoints, each optional on its own like the file
//! sensor's.
use sealwatch_abi::programs::net::*;

use super::{Family, Need::Optional, Program};

pub static FAMILY: Family = Family {
    sensor: "network",
    degraded: "syscall tracepoint not attached: this syscall is not watched",
    programs: &[
        Program::syscall(SYS_ENTER_CONNECT, Optional),
        Program::syscall(SYS_EXIT_CONNECT, Optional),
        Program::syscall(SYS_ENTER_BIND, Optional),
        Program::syscall(SYS_EXIT_BIND, Optional),
        Program::syscall(SYS_EXIT_ACCEPT, Optional),
        Program::syscall(SYS_EXIT_ACCEPT4, Optional),
        Program::syscall(SYS_ENTER_LISTEN, Optional),
        Program::syscall(SYS_EXIT_LISTEN, Optional),
        Program::syscall(SYS_ENTER_SENDTO, Optional),
        Program::syscall(SYS_EXIT_SENDTO, Optional),
        Program::syscall(SYS_ENTER_SENDMSG, Optional),
        Program::syscall(SYS_EXIT_SENDMSG, Optional),
        Program::syscall(SYS_ENTER_RECVFROM, Optional),
        Program::syscall(SYS_EXIT_RECVFROM, Optional),
        Program::syscall(SYS_ENTER_RECVMSG, Optional),
        Program::syscall(SYS_EXIT_RECVMSG, Optional),
    ],
};
