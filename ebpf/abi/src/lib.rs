//! The binary contract between sealwatch's kernel programs and its daemon.
//!
//! Every record starts with a [`Header`]. Structs are `#[repr(C)]` with explicit padding and no
//! `bool`, so both sides agree on the layout without a compiler in the loop. Kind ids are fixed and
//! never reused; bump [`ABI_VERSION`] when a layout changes.
#![no_std]

/// Version of this layout, written into [`Config`]. The probes are built into the daemon from
/// the same source, so the two cannot disagree; bump it when a layout changes, to tell objects
/// apart.
pub const ABI_VERSION: u32 = 8;

/// `BPF_F_MMAPABLE` (uapi `linux/bpf.h`, Linux 5.5): an array map the daemon can map into its
/// memory. [`names::DRAINING_UNTIL`] is one.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Record kinds. Fixed numbers: never renumber, never reuse a retired one.
pub mod kind {
    pub const EXEC: u32 = 1;
    pub const FORK: u32 = 2;
    pub const EXIT: u32 = 3;
    pub const CGROUP_MKDIR: u32 = 4;
    pub const CGROUP_RMDIR: u32 = 5;
    pub const FILE: u32 = 6;
    pub const SYSCALL_RESULT: u32 = 7;
    pub const NET: u32 = 8;
    pub const DNS: u32 = 9;
}

/// Per-container (cgroup) budgets: one container flooding the rings (failing path syscalls,
/// connects, datagrams from port 53) must not push out another container's records. Records
/// over a cgroup's budget for the current window are dropped in the kernel and counted per
/// cgroup ([`BudgetUse::dropped`]) and per class (the `DROPS` slots from [`budget::DROP_SLOT`]).
/// Process lifecycle and cgroup records are never budgeted: attribution depends on them.
pub mod budget {
    /// File records (bulk lane).
    pub const BULK: u32 = 0;
    /// Connects, accepts, listens, sends and DNS answers (critical lane).
    pub const NETWORK: u32 = 1;
    pub const COUNT: u32 = 2;
    /// The window a budget is counted over.
    pub const WINDOW_NS: u64 = 100_000_000;
    /// `DROPS` slot of class 0; class `c` counts at `DROP_SLOT + c`.
    pub const DROP_SLOT: u32 = super::lane::COUNT;
    /// Defaults per second (`--cgroup-budget-file`, `--cgroup-budget-network`).
    pub const FILE_PER_SEC_DEFAULT: u32 = 20_000;
    pub const NETWORK_PER_SEC_DEFAULT: u32 = 5_000;
}

/// Key of a cgroup's use of one budget class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    pub cgroup_id: u64,
    pub class: u32,
    pub _pad: u32,
}

/// A cgroup's use of one budget class: the current window and what it dropped since it was
/// first seen (a total: the daemon reports differences).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetUse {
    pub window_start_ns: u64,
    pub used: u64,
    pub dropped: u64,
}

/// Ring-buffer lanes. Critical carries what attribution depends on (process lifecycle, cgroups,
/// later sessions and connects); bulk carries high-volume file events, so a file storm can never
/// push out an exec.
pub mod lane {
    pub const CRITICAL: u32 = 0;
    pub const BULK: u32 = 1;
    pub const COUNT: u32 = 2;
}

pub mod programs;

/// Names of the maps, shared so the loader cannot drift from the object (programs: [`programs`]).
pub mod names {
    pub const RING_CRITICAL: &str = "EVENTS_CRITICAL";
    pub const RING_BULK: &str = "EVENTS_BULK";
    pub const DROPS: &str = "DROPS";
    pub const SCRATCH: &str = "SCRATCH";
    pub const CONFIG: &str = "CONFIG";
    pub const SETTINGS: &str = "SETTINGS";
    /// Per lane: until when (boot-time ns) the daemon drains that ring on its own timer, so
    /// paced records need not wake it (see [`super::Config::wakeup_pace_ns`]).
    pub const DRAINING_UNTIL: &str = "DRAINING_UNTIL";
    /// cgroup id → workload key of containers whose egress is enforced in the kernel.
    pub const BLOCK_WORKLOAD: &str = "BLOCK_WORKLOAD";
    /// (workload key, address prefix) → allowed port rules, for the connect/sendmsg hooks.
    pub const BLOCK_ALLOW: &str = "BLOCK_ALLOW";
    /// [`super::BudgetKey`] → [`super::BudgetUse`]: per-container budgets.
    pub const BUDGETS: &str = "BUDGETS";
    /// Interpreter names ([`interpreter_key`]) whose processes' reads of the container's own
    /// files are reported (`file_op::SCRIPT_READ`).
    pub const INTERPRETERS: &str = "INTERPRETERS";
    /// cgroup ids of containers (filled by the daemon as it recognises them, emptied at
    /// rmdir): a task in one whose root is not on overlayfs has `chroot`ed inside the container
    /// and is still judged as its process.
    pub const CONTAINER_CGROUPS: &str = "CONTAINER_CGROUPS";
}

/// Entries of [`names::CONTAINER_CGROUPS`]: container cgroups on one node.
pub const CONTAINER_CGROUPS_MAX: u32 = 16384;

/// Bytes of an executable's file name compared with [`names::INTERPRETERS`].
pub const INTERPRETER_NAME_LEN: usize = 16;

/// Turns an executable's file name (cut to 16 bytes, NUL-padded) into its key in
/// [`names::INTERPRETERS`]: without a version suffix (`python3.11` → `python`, `perl5.36` →
/// `perl`), so one entry covers every version an image may ship. Shared by the daemon, which
/// fills the map, and the exec program, which looks names up.
#[inline(always)]
pub fn interpreter_key(name: &mut [u8; INTERPRETER_NAME_LEN]) {
    let mut ended = false;
    let mut keep = 0;
    let mut i = 0;
    while i < INTERPRETER_NAME_LEN {
        let byte = name[i];
        ended |= byte == 0;
        if !ended && !byte.is_ascii_digit() && byte != b'.' {
            keep = i + 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < INTERPRETER_NAME_LEN {
        if i >= keep {
            name[i] = 0;
        }
        i += 1;
    }
}

/// `OVERLAYFS_SUPER_MAGIC` (linux/magic.h).
pub const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;

/// Common prefix of every record (64 bytes: asserted below).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    /// Kind-specific flag bits (see `exec_flags`).
    pub flags: u32,
    /// `bpf_ktime_get_boot_ns()`: CLOCK_BOOTTIME, converted to wall time in userspace.
    pub ktime_ns: u64,
    /// Thread-group id (the "pid" users know).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    pub uid: u32,
    pub gid: u32,
    /// cgroup v2 id of the task (inode of its cgroup directory): the container key.
    pub cgroup_id: u64,
    /// Inode numbers of the task's mount and pid namespaces.
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub comm: [u8; 16],
}

// Userspace decodes every record's first 64 bytes as the header, whatever its kind.
const _: () = assert!(core::mem::size_of::<Header>() == 64);

/// Offset and length of a variable-length field inside a record's trailing data area.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blob {
    pub off: u16,
    pub len: u16,
}

/// Flag bits of [`ExecEvent::header`]`.flags`.
pub mod exec_flags {
    /// argv was longer than [`super::ARGS_MAX`] and was cut.
    pub const ARGS_TRUNCATED: u32 = 1 << 0;
    /// The exe path walk stopped early (too deep or too long); the path is a suffix.
    pub const EXE_TRUNCATED: u32 = 1 << 1;
    pub const CWD_TRUNCATED: u32 = 1 << 2;
    /// The task has a controlling terminal (`tty_name` is set).
    pub const HAS_TTY: u32 = 1 << 3;
    /// The kernel does not track login uids (no CONFIG_AUDIT): `loginuid` is meaningless.
    pub const NO_LOGINUID: u32 = 1 << 4;
    /// The executable lives on overlayfs (a container root filesystem).
    pub const EXE_OVERLAY: u32 = 1 << 5;
    /// ... and comes from a lower (image) layer.
    pub const EXE_LOWER: u32 = 1 << 6;
    /// ... and exists only in the upper (writable) layer: written after the container started.
    pub const EXE_UPPER: u32 = 1 << 7;
    /// The executable has no links left (deleted, or a memfd).
    pub const EXE_DELETED: u32 = 1 << 8;
    /// The task's root directory is not on overlayfs: a host process, or a runtime process that
    /// has joined a container's cgroup but not yet its root filesystem (runc init).
    pub const HOST_ROOT: u32 = 1 << 9;
}

/// Data-area budget for the login variables found in a login candidate's environment (the
/// kernel scans the whole environment and keeps only those, at most 1 KiB of them).
pub const ENV_MAX: usize = 3072;

/// Layer of a file on overlayfs, as the kernel saw it at the syscall.
pub mod layer {
    /// Not on overlayfs (host file, volume, bind mount).
    pub const NONE: u32 = 0;
    /// Has a lower stack: the file comes from the image (copied up or not).
    pub const LOWER: u32 = 1;
    /// Upper layer only: created in the container.
    pub const UPPER: u32 = 2;
    /// Not decided in the kernel (path-based syscalls, or overlay layout unknown): userspace
    /// checks the path against the image's lower directories.
    pub const UNKNOWN: u32 = 3;
}

/// File operations ([`FileFixed::op`]).
pub mod file_op {
    pub const OPEN_WRITE: u32 = 1;
    pub const TRUNCATE: u32 = 2;
    pub const RENAME: u32 = 3;
    pub const UNLINK: u32 = 4;
    pub const CHMOD: u32 = 5;
    pub const CHOWN: u32 = 6;
    pub const CREATE: u32 = 7;
    /// link(2): a new name for an existing file (judged on the file linked to).
    pub const LINK: u32 = 8;
    /// A read-only open by an interpreter of a file of the container's own (upper layer); the
    /// record carries the path text it gave, so the daemon can tell whether it is its script.
    pub const SCRIPT_READ: u32 = 9;
    /// An executable mapping (`mmap` with `PROT_EXEC`) of a file of the container's own: the
    /// dynamic loader running a program (`ld.so /tmp/x`) or loading a library written after
    /// start.
    pub const MAP_EXEC: u32 = 10;
}

/// Flag bits of [`FileFixed`]`.header.flags`.
pub mod file_flags {
    /// The record was taken at syscall entry: a [`super::SyscallResult`] from the same thread
    /// follows and says whether it succeeded.
    pub const NEEDS_RESULT: u32 = 1 << 0;
    /// The path walk was cut (too deep or too long).
    pub const PATH_TRUNCATED: u32 = 1 << 1;
    /// The task runs on a host (non-overlay) root filesystem.
    pub const HOST_TASK: u32 = 1 << 2;
    /// The file had no links left when seen.
    pub const DELETED: u32 = 1 << 3;
}

/// Bytes of argv captured per exec: the documented limit behind `args_truncated`.
pub const ARGS_MAX: usize = 4096;
/// Bytes available to one path (components leaf-first, NUL-terminated each).
pub const PATH_MAX: usize = 4096;
/// Longest single path component the kernel copies (NAME_MAX + NUL).
pub const NAME_MAX: usize = 256;
/// Mount/dentry hops followed when building a path; deeper paths are flagged truncated.
pub const PATH_DEPTH_MAX: u32 = 64;
/// Size of the data area of one exec record. Writes use `off & DATA_MASK` with a bounded length,
/// so the verifier can prove every store stays inside: hence twice the largest single write.
/// Budgets: exe, cwd and args of at most 4 KiB each, two 256-byte names and 3 KiB of environment
/// never pass 16 KiB, so the mask never wraps an offset in practice. (A per-CPU map value may
/// not exceed 32 KiB, which rules out a larger area.)
pub const EXEC_DATA_SIZE: usize = 16384 + 4096;
pub const DATA_MASK: usize = 16384 - 1;

// The invariants the comment above states, checked wherever the ABI compiles (probes and daemon).
const _: () = {
    // A mask needs a power of two.
    assert!((DATA_MASK + 1).is_power_of_two());
    // A masked offset plus the largest single write (a path, argv or the environment) stays inside.
    assert!(EXEC_DATA_SIZE >= DATA_MASK + 1 + PATH_MAX);
    assert!(PATH_MAX >= ARGS_MAX && PATH_MAX >= ENV_MAX && PATH_MAX >= NAME_MAX);
    // exe, cwd, args, two names and the environment never pass the masked range.
    assert!(2 * PATH_MAX + ARGS_MAX + 2 * NAME_MAX + ENV_MAX <= DATA_MASK + 1);
    // `Blob` offsets and lengths are u16.
    assert!(EXEC_DATA_SIZE <= u16::MAX as usize + 1);
};

/// Fixed part of an exec record (see [`ExecEvent`]).
///
/// Paths (`exe`, `cwd`) are stored in the data area as components leaf-first, each
/// NUL-terminated (`"busybox\0bin\0"` for `/bin/busybox`): the kernel can only walk dentries
/// upwards, and reversing in userspace is cheaper than in the verifier. `args` is the raw argv
/// area (NUL-separated).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecFixed {
    pub header: Header,
    /// Thread-group id of the real parent.
    pub ppid: u32,
    pub loginuid: u32,
    pub sessionid: u32,
    pub _pad0: u32,
    pub exe_ino: u64,
    pub exe_dev: u32,
    pub _pad1: u32,
    /// Controlling terminal name as the kernel knows it (`pts3`, `tty1`), NUL-padded.
    pub tty_name: [u8; 32],
    pub exe: Blob,
    pub cwd: Blob,
    pub args: Blob,
    /// The filename passed to execve (may be relative, or a script run through an interpreter).
    pub filename: Blob,
    /// `bprm->interp`: equals `filename` unless a binfmt handler (`#!` scripts) replaced it with
    /// the interpreter's path.
    pub interp: Blob,
    /// Login variables (`NAME=value`, NUL-separated) found in the environment of processes that
    /// may open a login session: those entering a pid namespace from outside, and children of
    /// sshd/login.
    pub env: Blob,
    /// Pid of the task in its own pid namespace, and that namespace's depth (0 = the host's).
    pub vpid: u32,
    pub pid_level: u32,
    /// Pid namespace of the real parent: differs from the task's when it entered from outside.
    pub parent_pid_ns: u32,
    pub _pad2: u32,
}

/// `sched_process_exec`: a program image was replaced. Only `size_of::<ExecFixed>()` plus the
/// used part of `data` is sent to userspace.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecEvent {
    pub fixed: ExecFixed,
    pub data: [u8; EXEC_DATA_SIZE],
}

/// Size of an [`ExecEvent`] without its data area: what userspace needs at least.
pub const EXEC_FIXED_SIZE: usize = core::mem::size_of::<ExecFixed>();

/// `sched_process_fork` of a new process (threads are not reported).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    /// The parent (current task).
    pub header: Header,
    pub child_pid: u32,
    pub _pad: u32,
}

/// `sched_process_exit` of a thread-group leader.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: Header,
    pub exit_code: u32,
    pub _pad: u32,
}

/// A file modification candidate (bulk lane). Paths are either resolved by the kernel (`path`,
/// leaf-first components like exec paths) or, for path-based syscalls, given as the user string
/// (`name`, and `name2` for the rename target) plus the directory it is relative to (`base`,
/// leaf-first components; empty when the user string is absolute).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileFixed {
    pub header: Header,
    pub op: u32,
    /// One of [`layer`].
    pub layer: u32,
    /// open flags for opens, mode for chmod/creat, new uid for chown.
    pub open_flags: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    pub dev: u32,
    /// Identical fd-based operations (same cgroup, file and operation) the kernel folded into
    /// this record: it sends at most one per second for them and counts the rest here.
    pub repeats: u32,
    pub path: Blob,
    pub base: Blob,
    pub name: Blob,
    pub name2: Blob,
    /// The directory `name2` is relative to when it is not `base` (renameat and linkat with a
    /// second directory descriptor); empty otherwise.
    pub base2: Blob,
    /// The task's root (leaf-first components, as the container sees it) when the task is in a
    /// container's cgroup ([`names::CONTAINER_CGROUPS`]) and its root is not on overlayfs: a
    /// `chroot` inside a container (or the runtime before `pivot_root`). Its absolute names are
    /// relative to it. Empty otherwise.
    pub root: Blob,
}

/// Size of the data area of a file record: paths and user strings, masked like exec data.
pub const FILE_DATA_SIZE: usize = 16384 + 4096;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileEvent {
    pub fixed: FileFixed,
    pub data: [u8; FILE_DATA_SIZE],
}

pub const FILE_FIXED_SIZE: usize = core::mem::size_of::<FileFixed>();

/// A per-CPU map value may not exceed 32 KiB: exec and file records are built in one.
const PERCPU_VALUE_MAX: usize = 32 * 1024;

const _: () = {
    assert!(core::mem::size_of::<ExecEvent>() <= PERCPU_VALUE_MAX);
    assert!(core::mem::size_of::<FileEvent>() <= PERCPU_VALUE_MAX);
    // Path walks write into either record's data area with the same masked offsets.
    assert!(FILE_DATA_SIZE == EXEC_DATA_SIZE);
    // No implicit padding between the fixed parts and their data areas.
    assert!(core::mem::size_of::<ExecEvent>() == EXEC_FIXED_SIZE + EXEC_DATA_SIZE);
    assert!(core::mem::size_of::<FileEvent>() == FILE_FIXED_SIZE + FILE_DATA_SIZE);
};

/// Return value of a syscall whose entry produced a record with `NEEDS_RESULT` (bulk lane, same
/// thread, always after it in the ring).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallResult {
    pub header: Header,
    pub ret: i64,
}

/// Bytes of a cgroup path captured at mkdir/rmdir.
pub const CGROUP_PATH_MAX: usize = 512;

/// `cgroup_mkdir` / `cgroup_rmdir`: lets userspace register a container before its first process.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CgroupEvent {
    pub header: Header,
    /// Id of the created/removed cgroup (kernfs node id; equals the directory's inode).
    pub id: u64,
    /// Hierarchy id of the cgroup root: userspace keeps only the v2 hierarchy's.
    pub hierarchy_id: u32,
    pub level: u32,
    /// Path relative to the hierarchy root, NUL-terminated.
    pub path: [u8; CGROUP_PATH_MAX],
}

/// Offsets (bytes) of the kernel struct members the programs read, resolved from the running
/// kernel's BTF at start-up and handed to the programs as a read-only global. Never compiled in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_pid: u32,
    pub task_loginuid: u32,
    pub task_sessionid: u32,
    pub task_signal: u32,
    pub task_fs: u32,
    pub task_mm: u32,
    pub task_nsproxy: u32,
    pub task_thread_pid: u32,
    pub task_exit_code: u32,
    pub signal_tty: u32,
    pub tty_name: u32,
    pub fs_pwd: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_env_start: u32,
    pub mm_env_end: u32,
    pub task_comm: u32,
    pub binprm_file: u32,
    pub binprm_filename: u32,
    pub binprm_interp: u32,
    pub file_f_path: u32,
    pub file_f_inode: u32,
    pub inode_i_ino: u32,
    pub inode_i_sb: u32,
    pub sb_s_dev: u32,
    pub dentry_d_parent: u32,
    pub dentry_d_name_name: u32,
    pub vfsmount_mnt_root: u32,
    pub mount_mnt: u32,
    pub mount_mnt_parent: u32,
    pub mount_mnt_mountpoint: u32,
    pub nsproxy_mnt_ns: u32,
    pub mnt_ns_inum: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_size: u32,
    pub upid_ns: u32,
    pub pid_ns_inum: u32,
    pub cgroup_kn: u32,
    pub cgroup_root: u32,
    pub cgroup_level: u32,
    pub kernfs_node_id: u32,
    pub cgroup_root_hierarchy_id: u32,
    /// 1 when `task_loginuid`/`task_sessionid` exist (CONFIG_AUDIT).
    pub has_loginuid: u32,
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdtable_fd: u32,
    pub fdtable_max_fds: u32,
    pub fs_root: u32,
    pub vfsmount_mnt_sb: u32,
    pub sb_s_magic: u32,
    pub inode_i_nlink: u32,
    pub inode_i_mode: u32,
    /// `container_of(inode, struct ovl_inode, vfs_inode)` and the members read from there.
    pub ovl_inode_vfs_inode: u32,
    pub ovl_inode_upperdentry: u32,
    pub ovl_inode_oe: u32,
    pub ovl_entry_numlower: u32,
    /// 1 when the overlay offsets above were found (overlayfs in vmlinux BTF, Linux 6.5+ layout).
    pub has_ovl: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    pub sock_protocol: u32,
    pub skc_family: u32,
    pub skc_num: u32,
    pub skc_dport: u32,
    pub skc_daddr: u32,
    pub skc_rcv_saddr: u32,
    pub skc_v6_daddr: u32,
    pub skc_v6_rcv_saddr: u32,
    /// Offsets in `struct pt_regs` of the first four syscall arguments (x86-64: di, si, dx,
    /// r10; arm64: orig_x0, x1..x3): exit programs read an open's path, flags and mode there.
    pub regs_arg0: u32,
    pub regs_arg1: u32,
    pub regs_arg2: u32,
    pub regs_arg3: u32,
    /// `file.f_mode`: whether an openat2 opened for writing, whatever its `open_how` says by the
    /// time its exit reads it.
    pub file_f_mode: u32,
    /// io_uring: a request's opcode and result (`io_kiocb.opcode`, `io_kiocb.cqe.res`), and
    /// the members of the request's command (at the start of `io_kiocb`) that say what it opens,
    /// renames, unlinks or links. `has_io_uring` is 0 when BTF has no io_uring types.
    pub io_kiocb_opcode: u32,
    pub io_kiocb_res: u32,
    pub io_open_how: u32,
    pub io_open_file_slot: u32,
    pub io_rename_old_dfd: u32,
    pub io_rename_oldpath: u32,
    pub io_rename_newpath: u32,
    pub io_rename_new_dfd: u32,
    pub io_unlink_dfd: u32,
    pub io_unlink_filename: u32,
    pub io_link_old_dfd: u32,
    pub io_link_oldpath: u32,
    pub io_link_newpath: u32,
    pub io_link_new_dfd: u32,
    /// `filename.name`: the kernel's copy of a path a request names.
    pub filename_name: u32,
    pub has_io_uring: u32,
    /// `io_kiocb.ctx`: the ring a request belongs to.
    pub io_kiocb_ctx: u32,
    /// The ring's fixed-file table: where its array is in `io_ring_ctx`, where its length is,
    /// and how its entries are laid out ([`io_fixed_layout`]); an entry's `file_ptr` is the
    /// `struct file *` with flag bits below [`IO_FIXED_FILE_FLAGS`].
    pub io_fixed_files: u32,
    pub io_fixed_files_nr: u32,
    /// `io_rsrc_node.file_ptr` (layout `NODES`).
    pub io_rsrc_node_file_ptr: u32,
    pub io_fixed_layout: u32,
    /// `io_connect.addr`: the caller's address of the peer a connect request asks for (0:
    /// unknown layout; the peer then comes from the socket only).
    pub io_connect_addr: u32,
    pub _pad: u32,
}

/// How a ring's fixed files are kept (`KernelOffsets::io_fixed_layout`).
pub mod io_fixed_layout {
    /// Unknown to this build: opens into fixed-file slots are not judged.
    pub const NONE: u32 = 0;
    /// `struct io_fixed_file *files`, entries of one `unsigned long file_ptr` (5.19 to 6.12).
    pub const FLAT: u32 = 1;
    /// `struct io_rsrc_node **nodes`, each with its `file_ptr` (6.13 on).
    pub const NODES: u32 = 2;
}

/// Flag bits (`FFS_NOWAIT`, `FFS_ISREG`, and `FFS_SCM` before 6.x) kept in the low bits of a
/// fixed file's `file_ptr`.
pub const IO_FIXED_FILE_FLAGS: u64 = 0x7;

/// io_uring opcodes (`enum io_uring_op`, UAPI: stable) the io_uring programs judge.
pub mod io_uring_op {
    pub const CONNECT: u8 = 16;
    pub const OPENAT: u8 = 18;
    pub const OPENAT2: u8 = 28;
    pub const RENAMEAT: u8 = 35;
    pub const UNLINKAT: u8 = 36;
    pub const LINKAT: u8 = 39;
}

/// Network operations ([`NetEvent::op`]).
pub mod net_op {
    /// connect(2) on a TCP or UDP socket.
    pub const CONNECT: u32 = 1;
    /// accept(2)/accept4(2) returned a connection.
    pub const ACCEPT: u32 = 2;
    /// listen(2) on a TCP socket.
    pub const LISTEN: u32 = 3;
    /// bind(2) of a UDP socket to a non-zero port: a UDP listener.
    pub const BIND: u32 = 4;
    /// The first datagram a UDP socket sends to a peer (sendto/sendmsg with an address).
    pub const SEND: u32 = 5;
}

/// Flag bits of [`NetEvent`]`.header.flags`.
pub mod net_flags {
    /// The connect/sendmsg hook of the container's cgroup denied it (the process got EPERM).
    pub const BLOCKED: u32 = 1 << 0;
    /// The socket could not be read (closed meanwhile): local address and protocol are unknown.
    pub const NO_SOCKET: u32 = 1 << 1;
}

/// `AF_INET` / `AF_INET6`.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
/// `IPPROTO_TCP` / `IPPROTO_UDP`.
pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;

/// A connection, accept or listener of a container task (critical lane).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetEvent {
    pub header: Header,
    /// One of [`net_op`].
    pub op: u32,
    /// The syscall's return value (0 or a descriptor on success, `-errno` on failure).
    pub ret: i32,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u16,
    /// [`IPPROTO_TCP`] or [`IPPROTO_UDP`].
    pub protocol: u16,
    /// Ports in host byte order.
    pub local_port: u16,
    pub peer_port: u16,
    /// Addresses in network byte order; IPv4 uses the first four bytes.
    pub local_addr: [u8; 16],
    pub peer_addr: [u8; 16],
}

/// Bytes of a DNS message copied from the packet or the receiving process's buffer.
pub const DNS_MAX: usize = 1024;

/// Which way a [`DnsEvent`] went ([`DnsEvent::direction`]).
pub mod dns_dir {
    /// A query a container socket sent to port 53 (`cgroup_skb/egress`).
    pub const QUERY: u32 = 1;
    /// A response a container socket received from port 53.
    pub const ANSWER: u32 = 2;
}

/// A DNS query a container sent or a response it received (critical lane: the answer must be
/// seen before the connection it enables, and its query before it). The daemon learns names only
/// from an answer that matches a query of the same cgroup: same id and question, from the address
/// and port the query went to, to the port it came from.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DnsEvent {
    pub header: Header,
    /// Bytes of the message (UDP payload, or what `recv` returned over TCP), and how many of them
    /// were copied into `data`.
    pub len: u32,
    pub captured: u32,
    /// [`IPPROTO_TCP`] (the message has a 2-byte length prefix) or [`IPPROTO_UDP`].
    pub protocol: u16,
    pub family: u16,
    /// One of [`dns_dir`].
    pub direction: u32,
    /// Interface a UDP answer arrived on (`skb->ifindex`: 1 is loopback in every network
    /// namespace); 0 when unknown (TCP answers are read from the socket, not the packet).
    pub ifindex: u32,
    /// Ports in host byte order: the container's end and the DNS server's end.
    pub local_port: u16,
    pub peer_port: u16,
    /// Addresses in network byte order; IPv4 uses the first four bytes.
    pub local_addr: [u8; 16],
    pub peer_addr: [u8; 16],
    pub data: [u8; DNS_MAX],
}

// No implicit padding before `data`.
const _: () = assert!(core::mem::size_of::<DnsEvent>() == 64 + 56 + DNS_MAX);

/// One allowed port range of an in-kernel egress allowlist entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortRule {
    pub lo: u16,
    pub hi: u16,
    /// Bit 0: TCP allowed; bit 1: UDP allowed.
    pub protocols: u32,
}

pub const PORT_RULE_TCP: u32 = 1;
pub const PORT_RULE_UDP: u32 = 2;
/// Port rules per allowlist prefix (the policy refuses more).
pub const PORT_RULES_MAX: usize = 16;

/// Key of [`names::BLOCK_ALLOW`] (an LPM trie): the prefix length counts from `workload`, so a
/// CIDR of length n has `prefix_len = 32 + n` (IPv4 as IPv4-mapped IPv6: `32 + 96 + n`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowKey {
    /// Big-endian so the trie's bitwise prefix match covers it before the address.
    pub workload: [u8; 4],
    pub addr: [u8; 16],
}

/// Value of [`names::BLOCK_ALLOW`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllowRules {
    pub count: u32,
    pub _pad: u32,
    pub rules: [PortRule; PORT_RULES_MAX],
}

/// Settings that can change while running (policy reload), in the `SETTINGS` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// 1: also report writes by host (non-container) tasks, for `host-file-modified`.
    pub host_watch: u32,
    pub _pad: u32,
}

/// Run-time settings handed to the programs as a read-only global.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub abi_version: u32,
    /// The daemon's own tgid: its activity is never reported.
    pub self_tgid: u32,
    pub offsets: KernelOffsets,
    /// A paced record (exec, file, connect) forces a ring wake-up only if its CPU forced none in
    /// the last this many nanoseconds, and the daemon is not draining its lane on a timer
    /// ([`names::DRAINING_UNTIL`]); 0 forces one for every record (`--wakeup-pace-us`).
    pub wakeup_pace_ns: u64,
    /// Records one cgroup may send per [`budget::WINDOW_NS`], by [`budget`] class (0: no limit).
    pub budgets: [u32; budget::COUNT as usize],
}

/// Default of [`Config::wakeup_pace_ns`] (`--wakeup-pace-us 5000`): at most one forced wake-up
/// per CPU per 5 ms.
///
/// A forced wake-up is paid by the task that made the record: the ring's irq_work raises an IPI,
/// and the daemon's CPU gets another. Measured with `kernel.bpf_stats_enabled` on this project's
/// 2-core VM: the exec program took 121 µs per exec with a wake-up each, 5 µs without (IPIs exit
/// to the hypervisor) — 10% of every fork+exec on the node. So while records keep coming the
/// daemon drains the rings on its own timer, every pace, and the kernel wakes nobody
/// ([`names::DRAINING_UNTIL`]): a record waits at most about a pace, and the daemon pays for the
/// wake-ups.
pub const WAKEUP_PACE_NS_DEFAULT: u64 = 5_000_000;

// No implicit padding: `wakeup_pace_ns` must stay 8-aligned right after `offsets` (an odd number
// of offsets needs an explicit `_pad: u32` before it).
const _: () = assert!(
    core::mem::size_of::<Config>()
        == 8 + core::mem::size_of::<KernelOffsets>() + 8 + 4 * budget::COUNT as usize
);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] integers with explicit padding: every bit pattern is valid.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::BudgetKey {}
    unsafe impl aya::Pod for super::BudgetUse {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::Settings {}
    unsafe impl aya::Pod for super::AllowKey {}
    unsafe impl aya::Pod for super::AllowRules {}
}
