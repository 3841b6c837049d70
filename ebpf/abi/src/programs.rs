//! Names of the kernel programs, one module per hook family. The aya macros name a program after
//! its function, so each probe asserts at compile time that its function's name equals its
//! constant here ([`same_name`]); the daemon's sensor registry finds the programs by these
//! constants and refuses an object that lacks one. Syscall tracepoint programs are named after
//! their tracepoint.

/// `tp_btf` programs on the scheduler's process tracepoints.
pub mod process {
    pub const SCHED_PROCESS_EXEC: &str = "sched_process_exec";
    pub const SCHED_PROCESS_FORK: &str = "sched_process_fork";
    pub const SCHED_PROCESS_EXIT: &str = "sched_process_exit";
}

/// `tp_btf` programs on cgroup creation and removal.
pub mod container {
    pub const CGROUP_MKDIR: &str = "cgroup_mkdir";
    pub const CGROUP_RMDIR: &str = "cgroup_rmdir";
}

/// Syscall tracepoint programs of the file sensor.
pub mod file {
    pub const SYS_EXIT_OPENAT: &str = "sys_exit_openat";
    pub const SYS_EXIT_OPENAT2: &str = "sys_exit_openat2";
    pub const SYS_EXIT_OPEN: &str = "sys_exit_open";
    pub const SYS_EXIT_CREAT: &str = "sys_exit_creat";
    pub const SYS_ENTER_FCHMOD: &str = "sys_enter_fchmod";
    pub const SYS_ENTER_FCHOWN: &str = "sys_enter_fchown";
    pub const SYS_ENTER_FTRUNCATE: &str = "sys_enter_ftruncate";
    pub const SYS_ENTER_UNLINKAT: &str = "sys_enter_unlinkat";
    pub const SYS_EXIT_UNLINKAT: &str = "sys_exit_unlinkat";
    pub const SYS_ENTER_UNLINK: &str = "sys_enter_unlink";
    pub const SYS_EXIT_UNLINK: &str = "sys_exit_unlink";
    pub const SYS_ENTER_RMDIR: &str = "sys_enter_rmdir";
    pub const SYS_EXIT_RMDIR: &str = "sys_exit_rmdir";
    pub const SYS_ENTER_RENAMEAT2: &str = "sys_enter_renameat2";
    pub const SYS_EXIT_RENAMEAT2: &str = "sys_exit_renameat2";
    pub const SYS_ENTER_RENAMEAT: &str = "sys_enter_renameat";
    pub const SYS_EXIT_RENAMEAT: &str = "sys_exit_renameat";
    pub const SYS_ENTER_RENAME: &str = "sys_enter_rename";
    pub const SYS_EXIT_RENAME: &str = "sys_exit_rename";
    pub const SYS_ENTER_FCHMODAT: &str = "sys_enter_fchmodat";
    pub const SYS_EXIT_FCHMODAT: &str = "sys_exit_fchmodat";
    pub const SYS_ENTER_FCHMODAT2: &str = "sys_enter_fchmodat2";
    pub const SYS_EXIT_FCHMODAT2: &str = "sys_exit_fchmodat2";
    pub const SYS_ENTER_CHMOD: &str = "sys_enter_chmod";
    pub const SYS_EXIT_CHMOD: &str = "sys_exit_chmod";
    pub const SYS_ENTER_FCHOWNAT: &str = "sys_enter_fchownat";
    pub const SYS_EXIT_FCHOWNAT: &str = "sys_exit_fchownat";
    pub const SYS_ENTER_CHOWN: &str = "sys_enter_chown";
    pub const SYS_EXIT_CHOWN: &str = "sys_exit_chown";
    pub const SYS_ENTER_LCHOWN: &str = "sys_enter_lchown";
    pub const SYS_EXIT_LCHOWN: &str = "sys_exit_lchown";
    pub const SYS_ENTER_TRUNCATE: &str = "sys_enter_truncate";
    pub const SYS_EXIT_TRUNCATE: &str = "sys_exit_truncate";
    pub const SYS_ENTER_LINKAT: &str = "sys_enter_linkat";
    pub const SYS_EXIT_LINKAT: &str = "sys_exit_linkat";
    pub const SYS_ENTER_LINK: &str = "sys_enter_link";
    pub const SYS_EXIT_LINK: &str = "sys_exit_link";
    pub const SYS_ENTER_MMAP: &str = "sys_enter_mmap";
}

/// io_uring requests (`ebpf/probes/src/uring.rs`): what a request names is read when it is
/// submitted (its paths are freed by completion), what it did when it completes.
pub mod uring {
    pub const IO_URING_SUBMIT_REQ: &str = "io_uring_submit_req";
    pub const IO_URING_COMPLETE: &str = "io_uring_complete";
}

/// Syscall tracepoint programs of the network sensor (TCP DNS answers included).
pub mod net {
    pub const SYS_ENTER_CONNECT: &str = "sys_enter_connect";
    pub const SYS_EXIT_CONNECT: &str = "sys_exit_connect";
    pub const SYS_ENTER_BIND: &str = "sys_enter_bind";
    pub const SYS_EXIT_BIND: &str = "sys_exit_bind";
    pub const SYS_EXIT_ACCEPT: &str = "sys_exit_accept";
    pub const SYS_EXIT_ACCEPT4: &str = "sys_exit_accept4";
    pub const SYS_ENTER_LISTEN: &str = "sys_enter_listen";
    pub const SYS_EXIT_LISTEN: &str = "sys_exit_listen";
    pub const SYS_ENTER_SENDTO: &str = "sys_enter_sendto";
    pub const SYS_EXIT_SENDTO: &str = "sys_exit_sendto";
    pub const SYS_ENTER_SENDMSG: &str = "sys_enter_sendmsg";
    pub const SYS_EXIT_SENDMSG: &str = "sys_exit_sendmsg";
    pub const SYS_ENTER_RECVFROM: &str = "sys_enter_recvfrom";
    pub const SYS_EXIT_RECVFROM: &str = "sys_exit_recvfrom";
    pub const SYS_ENTER_RECVMSG: &str = "sys_enter_recvmsg";
    pub const SYS_EXIT_RECVMSG: &str = "sys_exit_recvmsg";
}

/// The `cgroup_skb` programs that read DNS answers over UDP (ingress) and the queries they
/// answer, over UDP and TCP (egress).
pub mod dns {
    pub const DNS_ANSWERS: &str = "dns_answers";
    pub const DNS_QUERIES: &str = "dns_queries";
}

/// The `cgroup_sock_addr` programs that enforce egress, attached per container cgroup.
pub mod enforce {
    pub const BLOCK_CONNECT4: &str = "block_connect4";
    pub const BLOCK_CONNECT6: &str = "block_connect6";
    pub const BLOCK_SENDMSG4: &str = "block_sendmsg4";
    pub const BLOCK_SENDMSG6: &str = "block_sendmsg6";
}

/// `a == b`, usable in `const` assertions (`str`'s `==` is not `const`).
pub const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(same_name("dns_answers", dns::DNS_ANSWERS));
const _: () = assert!(!same_name("dns_answers", "dns_answer"));
const _: () = assert!(!same_name("block_connect4", enforce::BLOCK_CONNECT6));
