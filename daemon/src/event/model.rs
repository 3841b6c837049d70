//! Typed kernel events. Owned, serialisable (captures store them), free of kernel pointers.
use serde::{Deserialize, Serialize};

/// Who did it: the task fields every record carries.
/// `Default` exists for tests and fixtures that only care about a few fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// CLOCK_BOOTTIME nanoseconds when the kernel saw it.
    pub ktime_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub comm: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub task: Task,
    pub ppid: u32,
    /// None when unset (`(uid_t)-1`) or when the kernel does not track it.
    pub loginuid: Option<u32>,
    pub sessionid: Option<u32>,
    /// Kernel tty name (`pts3`), None without a controlling terminal.
    pub tty: Option<Vec<u8>>,
    pub exe: Vec<u8>,
    pub exe_truncated: bool,
    pub exe_ino: u64,
    pub exe_dev: u32,
    pub cwd: Vec<u8>,
    pub cwd_truncated: bool,
    /// What execve was called with (relative, or the script behind an interpreter).
    pub filename: Vec<u8>,
    /// Interpreter chosen by the kernel; differs from `filename` for `#!` scripts.
    pub interp: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    pub args_truncated: bool,
    /// Where the executable came from, decided by the kernel at exec.
    pub exe_origin: ExeOrigin,
    /// The task's root is not on overlayfs (host, or a runtime process not yet inside its
    /// container's root filesystem).
    pub host_root: bool,
    /// Pid inside its own pid namespace, and that namespace's depth (0 = the host's).
    #[serde(default)]
    pub vpid: u32,
    #[serde(default)]
    pub pid_level: u32,
    /// Pid namespace of the real parent.
    #[serde(default)]
    pub parent_pid_ns: u32,
    /// The few environment variables that identify a login (`NAME=value`), captured for login
    /// candidates only; every other variable is dropped at decode so secrets never travel.
    #[serde(default)]
    pub login_env: Vec<Vec<u8>>,
}

/// Environment variables kept from a login candidate's environment.
pub const LOGIN_ENV_VARS: &[&str] = &[
    "KUBERNETES_EXEC_AUDIT_ID",
    "SPO_EXEC_REQUEST_UID",
    "SSH_CONNECTION",
];

impl ExecRecord {
    /// Value of a captured login variable.
    pub fn login_var(&self, name: &str) -> Option<&[u8]> {
        self.login_env.iter().find_map(|pair| {
            pair.strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    }
}

/// Origin of an executable file as the kernel saw it at exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ExeOrigin {
    /// On overlayfs (a container root filesystem).
    pub overlay: bool,
    /// From a lower (image) layer.
    pub lower: bool,
    /// Only in the upper (writable) layer.
    pub upper: bool,
    /// No links left: deleted, or a memfd.
    pub deleted: bool,
}

/// Overlay layer of a file at the syscall (see `sealwatch_abi::layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Not on overlayfs: host file, volume, bind mount.
    None,
    Lower,
    Upper,
    /// Left to userspace (path-based syscalls).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOp {
    OpenWrite,
    Truncate,
    Rename,
    Unlink,
    Chmod,
    Chown,
    Create,
    /// A new name for an existing file (hard link): judged on the file linked to.
    Link,
    /// An interpreter read a file of the container's own (it may be its script).
    ScriptRead,
    /// A file of the container's own was mapped executable (the dynamic loader running it, or
    /// a library loaded from it).
    MapExec,
}

impl FileOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileOp::OpenWrite => "open_write",
            FileOp::Truncate => "truncate",
            FileOp::Rename => "rename",
            FileOp::Unlink => "unlink",
            FileOp::Chmod => "chmod",
            FileOp::Chown => "chown",
            FileOp::Create => "create",
            FileOp::Link => "link",
            FileOp::ScriptRead => "script_read",
            FileOp::MapExec => "map_exec",
        }
    }
}

/// A file modification candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub task: Task,
    pub op: FileOp,
    pub layer: Layer,
    pub open_flags: u32,
    pub mode: u32,
    pub ino: u64,
    pub dev: u32,
    /// Path resolved by the kernel from the file itself (fd-based and open events).
    pub path: Option<Vec<u8>>,
    /// Directory a relative `name` is relative to (path-based syscalls).
    pub base: Option<Vec<u8>>,
    /// The path string the program passed (path-based syscalls).
    pub name: Vec<u8>,
    /// The process's root when it is a container's process in a `chroot` (as the container
    /// sees it): its absolute names start there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Vec<u8>>,
    /// The directory the rename or link target is relative to, when it is not `base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base2: Option<Vec<u8>>,
    /// Rename target.
    pub name2: Vec<u8>,
    /// Taken at syscall entry: a `SyscallResult` of the same thread follows.
    pub needs_result: bool,
    pub path_truncated: bool,
    /// The task runs on the host's root filesystem, not in a container.
    pub host_task: bool,
    pub deleted: bool,
    /// Identical operations the kernel folded into this record (at most one record per second
    /// per cgroup, file and operation); 0 in captures made before it did.
    #[serde(default)]
    pub repeats: u32,
}

/// What a network record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetOp {
    /// connect(2), TCP or UDP.
    Connect,
    /// An accepted connection.
    Accept,
    /// listen(2) on a TCP socket.
    Listen,
    /// bind(2) of a UDP socket to a port: a UDP listener.
    Bind,
    /// The first datagram a UDP socket sent to a peer.
    Send,
}

/// A connection, accept or listener of a container task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRecord {
    pub task: Task,
    pub op: NetOp,
    /// The syscall's return value (`-errno` on failure).
    pub ret: i32,
    pub ipv6: bool,
    /// `crate::net::Protocol`, None for another protocol or an unreadable socket.
    pub protocol: Option<crate::net::Protocol>,
    pub local: std::net::IpAddr,
    pub local_port: u16,
    /// Unspecified for listeners.
    pub peer: std::net::IpAddr,
    pub peer_port: u16,
    /// The container's connect/sendmsg hook denied it.
    pub blocked: bool,
}

/// A DNS query a container sent or a response it received (for name-based allow entries: an
/// answer counts only when it matches a query).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub task: Task,
    /// Over TCP the message starts with its 2-byte length.
    pub tcp: bool,
    /// Bytes sent or received; `data` may hold fewer (the kernel copies at most 1 KiB).
    pub len: u32,
    pub data: Vec<u8>,
    /// A query the container sent; false for an answer it received.
    #[serde(default)]
    pub query: bool,
    /// The container's end and the server's end. None in captures made before the kernel
    /// recorded them: such an answer matches no query.
    #[serde(default)]
    pub ends: Option<DnsEnds>,
    /// Interface a UDP answer came in on (1: loopback); 0 when unknown.
    #[serde(default)]
    pub ifindex: u32,
}

/// The two ends of a DNS exchange, seen from the container. Addresses are canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsEnds {
    pub local: std::net::IpAddr,
    pub local_port: u16,
    pub peer: std::net::IpAddr,
    pub peer_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KernelEvent {
    Exec(ExecRecord),
    Fork {
        task: Task,
        child_pid: u32,
    },
    Exit {
        task: Task,
        exit_code: u32,
    },
    CgroupMkdir {
        task: Task,
        id: u64,
        hierarchy_id: u32,
        path: Vec<u8>,
    },
    CgroupRmdir {
        task: Task,
        id: u64,
        hierarchy_id: u32,
        path: Vec<u8>,
    },
    File(FileRecord),
    SyscallResult {
        task: Task,
        ret: i64,
    },
    Net(NetRecord),
    Dns(DnsRecord),
}

impl KernelEvent {
    pub fn task(&self) -> &Task {
        match self {
            KernelEvent::Exec(exec) => &exec.task,
            KernelEvent::File(file) => &file.task,
            KernelEvent::SyscallResult { task, .. } => task,
            KernelEvent::Net(net) => &net.task,
            KernelEvent::Dns(dns) => &dns.task,
            KernelEvent::Fork { task, .. }
            | KernelEvent::Exit { task, .. }
            | KernelEvent::CgroupMkdir { task, .. }
            | KernelEvent::CgroupRmdir { task, .. } => task,
        }
    }

    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            KernelEvent::Exec(_) => "exec",
            KernelEvent::Fork { .. } => "fork",
            KernelEvent::Exit { .. } => "exit",
            KernelEvent::CgroupMkdir { .. } => "cgroup_mkdir",
            KernelEvent::CgroupRmdir { .. } => "cgroup_rmdir",
            KernelEvent::File(_) => "file",
            KernelEvent::SyscallResult { .. } => "syscall_result",
            KernelEvent::Net(_) => "net",
            KernelEvent::Dns(_) => "dns",
        }
    }
}
