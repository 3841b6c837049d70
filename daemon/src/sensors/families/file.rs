//! File modifications (`ebpf/probes/src/file.rs`): syscall tracepoints, each optional on its own.
//! A kernel without one (fchmodat2 is Linux 6.6+) loses only that syscall, and the daemon says so.
use sealwatch_abi::programs::file::*;

use super::{Family, Need::Optional, Program};

pub static FAMILY: Family = Family {
    sensor: "file",
    degraded: "syscall tracepoint not attached: this syscall is not watched",
    programs: &[
        Program::syscall(SYS_EXIT_OPENAT, Optional),
        Program::syscall(SYS_EXIT_OPENAT2, Optional),
        Program::syscall(SYS_EXIT_OPEN, Optional),
        Program::syscall(SYS_EXIT_CREAT, Optional),
        Program::syscall(SYS_ENTER_FCHMOD, Optional),
        Program::syscall(SYS_ENTER_FCHOWN, Optional),
        Program::syscall(SYS_ENTER_FTRUNCATE, Optional),
        Program::syscall(SYS_ENTER_UNLINKAT, Optional),
        Program::syscall(SYS_EXIT_UNLINKAT, Optional),
        Program::syscall(SYS_ENTER_UNLINK, Optional),
        Program::syscall(SYS_EXIT_UNLINK, Optional),
        Program::syscall(SYS_ENTER_RMDIR, Optional),
        Program::syscall(SYS_EXIT_RMDIR, Optional),
        Program::syscall(SYS_ENTER_RENAMEAT2, Optional),
        Program::syscall(SYS_EXIT_RENAMEAT2, Optional),
        Program::syscall(SYS_ENTER_RENAMEAT, Optional),
        Program::syscall(SYS_EXIT_RENAMEAT, Optional),
        Program::syscall(SYS_ENTER_RENAME, Optional),
        Program::syscall(SYS_EXIT_RENAME, Optional),
        Program::syscall(SYS_ENTER_FCHMODAT, Optional),
        Program::syscall(SYS_EXIT_FCHMODAT, Optional),
        Program::syscall(SYS_ENTER_FCHMODAT2, Optional),
        Program::syscall(SYS_EXIT_FCHMODAT2, Optional),
        Program::syscall(SYS_ENTER_CHMOD, Optional),
        Program::syscall(SYS_EXIT_CHMOD, Optional),
        Program::syscall(SYS_ENTER_FCHOWNAT, Optional),
        Program::syscall(SYS_EXIT_FCHOWNAT, Optional),
        Program::syscall(SYS_ENTER_CHOWN, Optional),
        Program::syscall(SYS_EXIT_CHOWN, Optional),
        Program::syscall(SYS_ENTER_LCHOWN, Optional),
        Program::syscall(SYS_EXIT_LCHOWN, Optional),
        Program::syscall(SYS_ENTER_TRUNCATE, Optional),
        Program::syscall(SYS_EXIT_TRUNCATE, Optional),
    ],
};
