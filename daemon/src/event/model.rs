//! Typed kernel events. Owned, serialisable (captures store them), free of kernel pointers.
use serde::{Deserialize, Serialize};

/// Who did it: the task fields every record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub args: Vec<Vec<u8>>,
    pub args_truncated: bool,
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
}

impl KernelEvent {
    pub fn task(&self) -> &Task {
        match self {
            KernelEvent::Exec(exec) => &exec.task,
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
        }
    }
}
