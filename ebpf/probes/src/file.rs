//! File modifications: writes, truncation, renames, unlinks, mode and owner changes.
//!
//! Filtering happens here so uninteresting syscalls cost a few instructions: opens are judged
//! at exit alone (read-only ones return after reading their flags) from the opened file's overlay
//! inode (image file = lower stack present), and writes to a container's own files (upper layer,
//! no exec bits) or to volumes never leave the kernel. Path-based syscalls inside containers are
//! reported with their path and result; userspace checks the path against the image's lower
//! directories.
use core::intrinsics::{atomic_xadd, AtomicOrdering::Relaxed};

use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_ktime_get_boot_ns, bpf_probe_read_user, generated as gen,
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use sealwatch_abi::{
    budget, file_flags, file_op, kind, lane, layer, programs, Blob, FileFixed, SyscallResult,
    DATA_MASK, FILE_FIXED_SIZE, NAME_MAX, PATH_MAX,
};

use crate::{
    budget::within_budget,
    emit::{count_drop, output_bytes, paced_wakeup, submit},
    interp::reads_scripts,
    kernel::{
        fd_file, fill_header, in_container_cgroup, inode_deleted, inode_layer, is_self, read,
        read_ptr, task_in_container, walk_path, Ptr, TARGET_FILE,
    },
    maps::{config, FileRepeat, FileRepeatKey, FILE_REPEATS, FILE_SCRATCH, NEEDS_RESULT, SETTINGS},
    syscall::{ctx_arg, ctx_ret, current_task, syscall_regs, tid},
};

const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_ACCMODE: u32 = 0o3;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;
const WRITE_INTENT: u32 = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC;
/// `__O_TMPFILE`, the bit O_TMPFILE adds to O_DIRECTORY.
const O_TMPFILE_BIT: u32 = 0o20000000;
/// Flags under which an open's mode argument means something.
const CREATE_MODE: u32 = O_CREAT | O_TMPFILE_BIT;
const EXEC_BITS: u32 = 0o111;
const AT_FDCWD: i64 = -100;

#[inline(always)]
fn host_watch() -> bool {
    SETTINGS.get(0).is_some_and(|s| s.host_watch != 0)
}

// ---- opens: judged at exit ------------------------------------------------------------------

/// Where an open syscall's flags and mode are when it returns. They are read from its saved
/// registers, not carried from entry in a map (an insert, lookup and delete per open): the
/// registers are the thread's own and hold what the syscall used.
#[derive(Clone, Copy)]
enum OpenArgs {
    /// In the registers at these `pt_regs` offsets (open, openat).
    Registers { path: u32, flags: u32, mode: u32 },
    /// creat(path, mode): the flags are implied.
    Creat { mode: u32 },
    /// openat2(dfd, path, how, size): in the caller's `struct open_how`, at the address in the
    /// register at this offset.
    How { path: u32, how: u32 },
}

impl OpenArgs {
    /// `(flags, mode)`; the mode only when the flags create a file (0 otherwise).
    #[inline(always)]
    fn read(self) -> Result<(u32, u32), i64> {
        let regs = syscall_regs();
        match self {
            Self::Registers { flags, mode, .. } => {
                let flags = read::<u64>(regs, flags)? as u32;
                if flags & CREATE_MODE == 0 {
                    return Ok((flags, 0));
                }
                Ok((flags, read::<u64>(regs, mode)? as u32))
            }
            Self::Creat { mode } => Ok((
                O_CREAT | O_WRONLY | O_TRUNC,
                read::<u64>(regs, mode)? as u32,
            )),
            Self::How { how, .. } => {
                let how = read::<u64>(regs, how)?;
                // struct open_how { u64 flags; u64 mode; u64 resolve; }
                // SAFETY: user pointer read through the checked helper.
                let [flags, mode] = unsafe { bpf_probe_read_user(how as *const [u64; 2]) }?;
                Ok((flags as u32, mode as u32))
            }
        }
    }

    /// The path the caller gave (a user pointer; 0 when unknown).
    #[inline(always)]
    fn path(self) -> u64 {
        match self {
            Self::Registers { path, .. } | Self::How { path, .. } => {
                read::<u64>(syscall_regs(), path).unwrap_or(0)
            }
            Self::Creat { .. } => 0,
        }
    }

    /// Whether the flags are in user memory that another thread may rewrite after the kernel
    /// copied them (openat2's `open_how`): the opened file's own mode must be asked.
    #[inline(always)]
    fn rewritable(self) -> bool {
        matches!(self, Self::How { .. })
    }
}

/// `FMODE_READ` and `FMODE_WRITE` in `file.f_mode`.
const FMODE_READ: u32 = 0x1;
const FMODE_WRITE: u32 = 0x2;

/// The access mode (`O_RDONLY`, `O_WRONLY` or `O_RDWR`) the file behind a descriptor the
/// current task just opened really has.
#[inline(always)]
fn opened_access(fd: u64) -> Result<u32, i64> {
    let file = fd_file(current_task(), fd)?;
    let mode = read::<u32>(file, config!(offsets.file_f_mode))?;
    Ok(match (mode & FMODE_READ != 0, mode & FMODE_WRITE != 0) {
        (_, false) => 0,
        (false, true) => O_WRONLY,
        (true, true) => O_RDWR,
    })
}

abi_name!(sys_exit_openat, programs::file::SYS_EXIT_OPENAT);
#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub fn sys_exit_openat(ctx: TracePointContext) -> u32 {
    let args = OpenArgs::Registers {
        path: config!(offsets.regs_arg1),
        flags: config!(offsets.regs_arg2),
        mode: config!(offsets.regs_arg3),
    };
    exit_open(&ctx, args);
    0
}

abi_name!(sys_exit_open, programs::file::SYS_EXIT_OPEN);
#[tracepoint(category = "syscalls", name = "sys_exit_open")]
pub fn sys_exit_open(ctx: TracePointContext) -> u32 {
    let args = OpenArgs::Registers {
        path: config!(offsets.regs_arg0),
        flags: config!(offsets.regs_arg1),
        mode: config!(offsets.regs_arg2),
    };
    exit_open(&ctx, args);
    0
}

abi_name!(sys_exit_creat, programs::file::SYS_EXIT_CREAT);
#[tracepoint(category = "syscalls", name = "sys_exit_creat")]
pub fn sys_exit_creat(ctx: TracePointContext) -> u32 {
    exit_open(
        &ctx,
        OpenArgs::Creat {
            mode: config!(offsets.regs_arg1),
        },
    );
    0
}

abi_name!(sys_exit_openat2, programs::file::SYS_EXIT_OPENAT2);
#[tracepoint(category = "syscalls", name = "sys_exit_openat2")]
pub fn sys_exit_openat2(ctx: TracePointContext) -> u32 {
    exit_open(
        &ctx,
        OpenArgs::How {
            path: config!(offsets.regs_arg1),
            how: config!(offsets.regs_arg2),
        },
    );
    0
}

#[inline(always)]
fn exit_open(ctx: &TracePointContext, args: OpenArgs) {
    let fd = ctx_ret(ctx);
    if fd < 0 {
        return;
    }
    let (mut flags, mode) = match args.read() {
        Ok(read) => read,
        // Unmapped by then: the file's mode decides below.
        Err(_) if args.rewritable() => (0, 0),
        Err(_) => return,
    };
    if args.rewritable() {
        // Another thread can rewrite (or unmap) openat2's flags after the kernel used them:
        // whether it opened for writing is the file's to say.
        if let Ok(access) = opened_access(fd as u64) {
            flags = flags & !O_ACCMODE | access;
        }
    }
    // Most opens are reads by programs that are not interpreters: they stop here, after one
    // look-up (the text, a register read, only matters for an interpreter's read).
    let text = match open_kind(flags) {
        OpenKind::Ignored => return,
        OpenKind::ScriptRead => args.path(),
        OpenKind::Write => 0,
    };
    if let Ok(file) = fd_file(current_task(), fd as u64) {
        let _ = judge_open(file, flags, mode, text);
    }
}

/// What an open with `flags` is to the file sensor.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OpenKind {
    /// Writable: judged as a change.
    Write,
    /// A read by an interpreter: maybe its script.
    ScriptRead,
    /// Any other read.
    Ignored,
}

/// Decides what an open with `flags` by the current process is (one map look-up for reads).
#[inline(always)]
pub fn open_kind(flags: u32) -> OpenKind {
    if flags & WRITE_INTENT != 0 {
        OpenKind::Write
    } else if reads_scripts((tid() >> 32) as u32) {
        OpenKind::ScriptRead
    } else {
        OpenKind::Ignored
    }
}

/// Judges a successful open of `file` with `flags` and `mode` whose [`open_kind`] is not
/// `Ignored` (`text`: the path the caller gave, a user pointer or 0): from a syscall's exit, or
/// an io_uring request's completion.
#[inline(always)]
pub fn judge_open(file: Ptr, flags: u32, mode: u32, text: u64) -> Result<(), i64> {
    if flags & WRITE_INTENT == 0 {
        return judge_file(
            file,
            file_op::SCRIPT_READ,
            flags,
            0,
            Interest::Code { text },
        );
    }
    let makes_executable = flags & O_CREAT != 0 && mode & EXEC_BITS != 0;
    let op = if flags & O_TRUNC != 0 {
        file_op::TRUNCATE
    } else {
        file_op::OPEN_WRITE
    };
    judge_file(file, op, flags, mode, Interest::Change { makes_executable })
}

/// `PROT_EXEC` in mmap's `prot`.
const PROT_EXEC: u64 = 0x4;

abi_name!(sys_enter_mmap, programs::file::SYS_ENTER_MMAP);
#[tracepoint(category = "syscalls", name = "sys_enter_mmap")]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    // mmap(addr, len, prot, flags, fd, off): only executable mappings of a file matter.
    let (Ok(prot), Ok(fd)) = (ctx_arg::<u64>(&ctx, 2), ctx_arg::<i64>(&ctx, 4)) else {
        return 0;
    };
    if prot & PROT_EXEC == 0 || (fd as i32) < 0 {
        return 0;
    }
    let _ = judge_fd(
        fd as u64,
        file_op::MAP_EXEC,
        prot as u32,
        0,
        Interest::Code { text: 0 },
    );
    0
}

// ---- descriptor operations: judged at entry -------------------------------------------------

abi_name!(sys_enter_fchmod, programs::file::SYS_ENTER_FCHMOD);
#[tracepoint(category = "syscalls", name = "sys_enter_fchmod")]
pub fn sys_enter_fchmod(ctx: TracePointContext) -> u32 {
    if let (Ok(fd), Ok(mode)) = (ctx_arg::<u64>(&ctx, 0), ctx_arg::<u64>(&ctx, 1)) {
        let mode = mode as u32;
        let makes_executable = mode & EXEC_BITS != 0;
        let _ = judge_fd(
            fd,
            file_op::CHMOD,
            mode,
            mode,
            Interest::Change { makes_executable },
        );
    }
    0
}

abi_name!(sys_enter_fchown, programs::file::SYS_ENTER_FCHOWN);
#[tracepoint(category = "syscalls", name = "sys_enter_fchown")]
pub fn sys_enter_fchown(ctx: TracePointContext) -> u32 {
    if let Ok(fd) = ctx_arg::<u64>(&ctx, 0) {
        let uid = ctx_arg::<u64>(&ctx, 1).unwrap_or(u64::MAX) as u32;
        let unchanged = Interest::Change {
            makes_executable: false,
        };
        let _ = judge_fd(fd, file_op::CHOWN, uid, 0, unchanged);
    }
    0
}

abi_name!(sys_enter_ftruncate, programs::file::SYS_ENTER_FTRUNCATE);
#[tracepoint(category = "syscalls", name = "sys_enter_ftruncate")]
pub fn sys_enter_ftruncate(ctx: TracePointContext) -> u32 {
    if let Ok(fd) = ctx_arg::<u64>(&ctx, 0) {
        let unchanged = Interest::Change {
            makes_executable: false,
        };
        let _ = judge_fd(fd, file_op::TRUNCATE, 0, 0, unchanged);
    }
    0
}

/// What makes an fd-based operation worth a record.
#[derive(Clone, Copy)]
enum Interest {
    /// It changes the file: image files always matter, the container's own only when the change
    /// leaves them executable (create with x, chmod +x).
    Change { makes_executable: bool },
    /// It runs the file's content as code (an interpreter's script, an executable mapping): only
    /// the container's own files matter, image files are what may run. `text`: the path the
    /// caller gave (user pointer, 0 if none), kept in the record's `name`.
    Code { text: u64 },
}

/// Decides from the file behind `fd` whether the operation matters, and reports it if so.
#[inline(always)]
fn judge_fd(fd: u64, op: u32, flags: u32, mode: u32, interest: Interest) -> Result<(), i64> {
    judge_file(fd_file(current_task(), fd)?, op, flags, mode, interest)
}

/// Decides from `file` whether the operation matters, and reports it if so.
#[inline(always)]
fn judge_file(file: Ptr, op: u32, flags: u32, mode: u32, interest: Interest) -> Result<(), i64> {
    if is_self((tid() >> 32) as u32) {
        return Ok(());
    }
    let task = current_task();
    let inode = read_ptr(file, config!(offsets.file_f_inode))?;
    let placement = inode_layer(inode);
    let file_layer = placement.layer;
    // Whether a host task made it (host tasks include the runtime preparing a container, whose
    // root is not the overlay yet). On overlay files it only flags the record, so it is asked
    // after folding: a write loop on an image file then skips the four reads of the check.
    let (makes_executable, text) = match interest {
        Interest::Change { makes_executable } => (makes_executable, 0),
        Interest::Code { text } => (false, text),
    };
    let host_task = match (interest, file_layer) {
        // Code from the container's own file; image files (and volumes) may run.
        (Interest::Code { .. }, layer::UPPER) => None,
        (Interest::Code { .. }, _) => return Ok(()),
        // An image file: always reported.
        (_, layer::LOWER | layer::UNKNOWN) => None,
        // The container's own file: only when it becomes executable.
        (_, layer::UPPER) if makes_executable => None,
        (_, layer::UPPER) => return Ok(()),
        // Not on overlayfs: a host task's write matters only for host-file-modified.
        _ if !host_watch() => return Ok(()),
        _ if task_in_container(task) => return Ok(()),
        _ => Some(true),
    };
    // A new file of the container's own with exec bits (`cp /bin/sh /tmp/x` opens with O_TRUNC).
    let op = if op != file_op::CHMOD && makes_executable && file_layer == layer::UPPER {
        file_op::CREATE
    } else {
        op
    };
    let ino = read::<u64>(inode, config!(offsets.inode_i_ino)).unwrap_or(0);
    let dev = placement.dev();
    let f_path = config!(offsets.file_f_path);
    let dentry = read_ptr(file, f_path + config!(offsets.path_dentry))?;
    let repeat_key = FileRepeatKey {
        // SAFETY: helper without arguments.
        cgroup: unsafe { bpf_get_current_cgroup_id() },
        dentry: dentry as u64,
        ino,
        dev,
        op,
    };
    let Some(repeats) = fold_repeat(&repeat_key) else {
        return Ok(());
    };
    if !within_budget(repeat_key.cgroup, budget::BULK) {
        return Ok(());
    }
    let mut header_flags = if inode_deleted(inode) {
        file_flags::DELETED
    } else {
        0
    };
    if host_task.unwrap_or_else(|| !task_in_container(task)) {
        header_flags |= file_flags::HOST_TASK;
    }
    let Some(event) = FILE_SCRATCH.get_ptr_mut(0) else {
        count_drop(lane::BULK);
        return Ok(());
    };
    let record = event as *const u8;
    // SAFETY: the per-CPU scratch slot is ours until this program returns.
    let fixed: &mut FileFixed = unsafe { &mut (*event).fixed };
    fill_header(&mut fixed.header, kind::FILE, task);
    fixed.op = op;
    fixed.layer = file_layer;
    fixed.open_flags = flags;
    fixed.mode = mode;
    fixed.uid = 0;
    fixed.gid = 0;
    fixed.ino = ino;
    fixed.dev = dev;
    fixed.repeats = repeats;
    let mnt = read_ptr(file, f_path + config!(offsets.path_mnt))?;
    let walk = walk_path(TARGET_FILE, 0, dentry, mnt);
    if walk.truncated {
        header_flags |= file_flags::PATH_TRUNCATED;
    }
    fixed.header.flags = header_flags;
    fixed.path = Blob {
        off: 0,
        len: walk.len as u16,
    };
    fixed.base = Blob::default();
    fixed.name = Blob {
        off: walk.len as u16,
        len: 0,
    };
    fixed.name2 = Blob::default();
    fixed.base2 = Blob::default();
    fixed.root = Blob::default();
    let mut used = walk.len;
    if text != 0 {
        // SAFETY: the per-CPU scratch slot is ours until this program returns.
        let data = unsafe { (*event).data.as_mut_ptr() };
        let n = read_user_str(data, used, text);
        fixed.name.len = n as u16;
        used += n;
    }
    let len = (FILE_FIXED_SIZE + used).min(core::mem::size_of::<sealwatch_abi::FileEvent>());
    // File lines wait for the critical lane anyway (the pipeline's lane skew of 50 ms): no
    // need to wake the daemon for each one.
    output_bytes(lane::BULK, paced_wakeup(lane::BULK), record, len);
    Ok(())
}

/// A write loop on one file (a log kept in the image, a cache rewritten each request) would send
/// a record, and walk its path, on every open: the kernel sends one record per second per
/// (cgroup, file, operation) and counts the others into the next one it sends. The daemon's own
/// repeat window (10 s) then adds them to `violation.repeats`, so no occurrence goes uncounted.
const REPEAT_WINDOW_NS: u64 = 1_000_000_000;

/// `Some(operations folded since the last record)` when a record goes out now; None when this
/// one is folded (counted) instead.
#[inline(always)]
fn fold_repeat(key: &FileRepeatKey) -> Option<u32> {
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let Some(entry) = FILE_REPEATS.get_ptr_mut(key) else {
        let fresh = FileRepeat {
            sent_ns: now,
            folded: 0,
        };
        let _ = FILE_REPEATS.insert(key, fresh, 0);
        return Some(0);
    };
    // SAFETY: a map value stays valid while the program runs; `folded` is only changed through
    // atomic adds, so increments from other CPUs are never overwritten.
    unsafe {
        let folded = &raw mut (*entry).folded;
        if now.wrapping_sub((*entry).sent_ns) < REPEAT_WINDOW_NS {
            atomic_xadd::<u64, u64, { Relaxed }>(folded, 1);
            return None;
        }
        (*entry).sent_ns = now;
        // Take what was counted, keeping increments that race with this read.
        let taken = core::ptr::read_volatile(folded);
        atomic_xadd::<u64, u64, { Relaxed }>(folded, taken.wrapping_neg());
        Some(taken.min(u64::from(u32::MAX)) as u32)
    }
}

// ---- path operations: reported at entry with their path, completed by their result ----------

/// A path a path-based operation names: a user pointer (a syscall's argument) or the kernel's
/// own copy (an io_uring request's `struct filename`, copied when it was submitted).
#[derive(Clone, Copy)]
pub enum PathText {
    User(u64),
    Kernel(u64),
    Absent,
}

/// A path-based operation to report: what it names, relative to what, and how its result will
/// be paired with it.
pub struct PathOp {
    pub op: u32,
    /// The directory descriptor relative names start from (`AT_FDCWD`: the cwd).
    pub dirfd: i64,
    /// The one a relative second name starts from, when it has its own (renameat, linkat).
    pub dirfd2: Option<i64>,
    pub name: PathText,
    /// The second name (rename and link targets).
    pub name2: PathText,
    pub mode: u32,
    /// The key its result is awaited under in `NEEDS_RESULT` (the thread, or an io_uring
    /// request, whose completion may run on another thread).
    pub result_key: u64,
    /// The thread id the daemon pairs the record and its result by, when it is not the
    /// current thread's.
    pub pair_tid: Option<u32>,
}

/// `name_arg`/`name2_arg`: indices of user path arguments; `dirfd_arg`: index of the directory
/// descriptor (None: relative to the cwd).
#[inline(always)]
fn report_path_op(
    ctx: &TracePointContext,
    op: u32,
    dirfd_arg: Option<usize>,
    name_arg: usize,
    name2_arg: Option<usize>,
    mode: u32,
) -> Result<(), i64> {
    let dirfd = match dirfd_arg {
        Some(index) => ctx_arg::<i64>(ctx, index).unwrap_or(AT_FDCWD),
        None => AT_FDCWD,
    };
    let name2 = match name2_arg {
        Some(index) => PathText::User(ctx_arg::<u64>(ctx, index)?),
        None => PathText::Absent,
    };
    // renameat, renameat2 and linkat: (olddirfd, old, newdirfd, new, ...).
    let dirfd2 = match (dirfd_arg, name2_arg) {
        (Some(0), Some(3)) => Some(ctx_arg::<i64>(ctx, 2).unwrap_or(AT_FDCWD)),
        _ => None,
    };
    report_path(&PathOp {
        op,
        dirfd,
        dirfd2,
        name: PathText::User(ctx_arg::<u64>(ctx, name_arg)?),
        name2,
        mode,
        result_key: tid(),
        pair_tid: None,
    })
}

/// Reports a path-based operation; its result follows in a `SyscallResult`.
#[inline(always)]
pub fn report_path(path_op: &PathOp) -> Result<(), i64> {
    let pid_tgid = tid();
    if is_self((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let task = current_task();
    let mut header_flags = file_flags::NEEDS_RESULT;
    // A task whose root is not on overlayfs: a host task, or (in a container's cgroup) a
    // container's process in a chroot, whose absolute names start at that root.
    let mut chrooted = false;
    if !task_in_container(task) {
        chrooted = in_container_cgroup();
        if !chrooted && !host_watch() {
            return Ok(());
        }
        header_flags |= file_flags::HOST_TASK;
    }
    // SAFETY: helper without arguments.
    if !within_budget(unsafe { bpf_get_current_cgroup_id() }, budget::BULK) {
        return Ok(());
    }
    let Some(event) = FILE_SCRATCH.get_ptr_mut(0) else {
        count_drop(lane::BULK);
        return Ok(());
    };
    let record = event as *const u8;
    // SAFETY: per-CPU scratch slot, ours until this program returns.
    let (fixed, data) = unsafe { (&mut (*event).fixed, (*event).data.as_mut_ptr()) };
    fill_header(&mut fixed.header, kind::FILE, task);
    if let Some(pair_tid) = path_op.pair_tid {
        fixed.header.tid = pair_tid;
    }
    fixed.op = path_op.op;
    fixed.layer = layer::UNKNOWN;
    fixed.open_flags = 0;
    fixed.mode = path_op.mode;
    fixed.uid = 0;
    fixed.gid = 0;
    fixed.ino = 0;
    fixed.dev = 0;
    fixed.repeats = 0;
    fixed.path = Blob::default();
    let mut off = 0usize;

    // The path strings first: they decide whether a base directory is needed.
    let n = read_path_text(data, off, path_op.name);
    fixed.name = Blob {
        off: off as u16,
        len: n as u16,
    };
    off += n;
    fixed.name2 = Blob {
        off: off as u16,
        len: 0,
    };
    let n2 = read_path_text(data, off, path_op.name2);
    // A name that filled the buffer was cut: the daemon must not judge the cut text as a path.
    if n >= PATH_TEXT_MAX || n2 >= PATH_TEXT_MAX {
        header_flags |= file_flags::PATH_TRUNCATED;
    }
    fixed.name2.len = n2 as u16;
    off += n2;
    // Relative paths are resolved against the directory descriptor or the cwd. (For renames
    // both names share it unless they use different descriptors: rare, and then the cwd wins.)
    fixed.base = Blob {
        off: off as u16,
        len: 0,
    };
    let first = if n > 0 {
        // SAFETY: inside the scratch data area (masked like every store).
        unsafe { *data.wrapping_add(fixed.name.off as usize & DATA_MASK) }
    } else {
        b'/'
    };
    if first != b'/' {
        let (dentry, mnt) = dir_of(task, path_op.dirfd)?;
        let walk = walk_path(TARGET_FILE, off, dentry, mnt);
        if walk.truncated {
            header_flags |= file_flags::PATH_TRUNCATED;
        }
        fixed.base.len = walk.len as u16;
        off += walk.len;
    }
    // A relative second name with a directory of its own (`renameat(AT_FDCWD, "/tmp/x", etc,
    // "passwd")`): its directory too, or the daemon would join it to the first one's.
    fixed.base2 = Blob {
        off: off as u16,
        len: 0,
    };
    let second_relative = n2 > 0 && {
        // SAFETY: inside the scratch data area (masked like every store).
        unsafe { *data.wrapping_add(fixed.name2.off as usize & DATA_MASK) != b'/' }
    };
    // (rename(2) and link(2) have no descriptors: their second name starts from the cwd too.)
    let dirfd2 = path_op.dirfd2.unwrap_or(path_op.dirfd);
    if second_relative && (first == b'/' || dirfd2 != path_op.dirfd) {
        let (dentry, mnt) = dir_of(task, dirfd2)?;
        let walk = walk_path(TARGET_FILE, off, dentry, mnt);
        if walk.truncated {
            header_flags |= file_flags::PATH_TRUNCATED;
        }
        fixed.base2.len = walk.len as u16;
        off += walk.len;
    }
    fixed.root = Blob {
        off: off as u16,
        len: 0,
    };
    if chrooted {
        let fs = read_ptr(task, config!(offsets.task_fs))?;
        let root = config!(offsets.fs_root);
        let dentry = read_ptr(fs, root + config!(offsets.path_dentry))?;
        let mnt = read_ptr(fs, root + config!(offsets.path_mnt))?;
        let walk = walk_path(TARGET_FILE, off, dentry, mnt);
        if walk.truncated {
            header_flags |= file_flags::PATH_TRUNCATED;
        }
        fixed.root.len = walk.len as u16;
        off += walk.len;
    }
    fixed.header.flags = header_flags;
    let len = (FILE_FIXED_SIZE + off).min(core::mem::size_of::<sealwatch_abi::FileEvent>());
    let _ = NEEDS_RESULT.insert(path_op.result_key, 1, 0);
    output_bytes(lane::BULK, paced_wakeup(lane::BULK), record, len);
    Ok(())
}

/// The directory (dentry, vfsmount) relative names start from: the cwd for `AT_FDCWD`, else
/// the directory descriptor's.
#[inline(always)]
fn dir_of(task: Ptr, dirfd: i64) -> Result<(Ptr, Ptr), i64> {
    let (base, at) = if dirfd == AT_FDCWD {
        (
            read_ptr(task, config!(offsets.task_fs))?,
            config!(offsets.fs_pwd),
        )
    } else {
        (fd_file(task, dirfd as u64)?, config!(offsets.file_f_path))
    };
    Ok((
        read_ptr(base, at + config!(offsets.path_dentry))?,
        read_ptr(base, at + config!(offsets.path_mnt))?,
    ))
}

/// Copies a user string into the data area at `off`; returns bytes written including the NUL.
#[inline(always)]
fn read_user_str(data: *mut u8, off: usize, src: u64) -> usize {
    read_path_text(data, off, PathText::User(src))
}

/// Bytes of a path text the records keep (with its NUL); a longer one is cut and flagged.
const PATH_TEXT_MAX: usize = PATH_MAX - NAME_MAX;

/// Copies a path into the data area at `off`; returns bytes written including the NUL.
#[inline(always)]
fn read_path_text(data: *mut u8, off: usize, text: PathText) -> usize {
    let dst = data.wrapping_add(off & DATA_MASK) as *mut _;
    let max = PATH_TEXT_MAX as u32;
    // SAFETY: masked offset plus PATH_MAX stays inside the data area.
    let n = unsafe {
        match text {
            PathText::User(src) => gen::bpf_probe_read_user_str(dst, max, src as *const _),
            PathText::Kernel(src) => gen::bpf_probe_read_kernel_str(dst, max, src as *const _),
            PathText::Absent => 0,
        }
    };
    if n > 0 {
        n as usize
    } else {
        0
    }
}

/// Reports the return value of a syscall whose entry was reported.
#[inline(always)]
fn report_result(ctx: &TracePointContext) {
    report_result_of(tid(), ctx_ret(ctx), None);
}

/// Reports `ret` as the result of the operation awaited under `key`, if one is (see
/// [`PathOp::result_key`] and [`PathOp::pair_tid`]).
#[inline(always)]
pub fn report_result_of(key: u64, ret: i64, pair_tid: Option<u32>) {
    // SAFETY: only presence matters.
    if unsafe { NEEDS_RESULT.get(key) }.is_none() {
        return;
    }
    let _ = NEEDS_RESULT.remove(key);
    let task = current_task();
    submit::<SyscallResult>(lane::BULK, paced_wakeup(lane::BULK), |result| {
        fill_header(&mut result.header, kind::SYSCALL_RESULT, task);
        if let Some(pair_tid) = pair_tid {
            result.header.tid = pair_tid;
        }
        result.ret = ret;
        Ok(())
    });
}

/// Defines an entry program for a path syscall and the exit program that reports its result.
macro_rules! path_syscall {
    ($enter:ident = $enter_name:expr, $exit:ident = $exit_name:expr, $enter_tp:literal,
     $exit_tp:literal, $op:expr, $dirfd:expr, $name:expr, $name2:expr, $mode:expr) => {
        abi_name!($enter, $enter_name);
        #[tracepoint(category = "syscalls", name = $enter_tp)]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            let mode: Option<usize> = $mode;
            let mode = mode.and_then(|i| ctx_arg::<u64>(&ctx, i).ok()).unwrap_or(0) as u32;
            let _ = report_path_op(&ctx, $op, $dirfd, $name, $name2, mode);
            0
        }

        abi_name!($exit, $exit_name);
        #[tracepoint(category = "syscalls", name = $exit_tp)]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            report_result(&ctx);
            0
        }
    };
}

path_syscall!(
    sys_enter_unlinkat = programs::file::SYS_ENTER_UNLINKAT,
    sys_exit_unlinkat = programs::file::SYS_EXIT_UNLINKAT,
    "sys_enter_unlinkat",
    "sys_exit_unlinkat",
    file_op::UNLINK,
    Some(0),
    1,
    None,
    None
);
path_syscall!(
    sys_enter_unlink = programs::file::SYS_ENTER_UNLINK,
    sys_exit_unlink = programs::file::SYS_EXIT_UNLINK,
    "sys_enter_unlink",
    "sys_exit_unlink",
    file_op::UNLINK,
    None,
    0,
    None,
    None
);
path_syscall!(
    sys_enter_rmdir = programs::file::SYS_ENTER_RMDIR,
    sys_exit_rmdir = programs::file::SYS_EXIT_RMDIR,
    "sys_enter_rmdir",
    "sys_exit_rmdir",
    file_op::UNLINK,
    None,
    0,
    None,
    None
);
path_syscall!(
    sys_enter_renameat2 = programs::file::SYS_ENTER_RENAMEAT2,
    sys_exit_renameat2 = programs::file::SYS_EXIT_RENAMEAT2,
    "sys_enter_renameat2",
    "sys_exit_renameat2",
    file_op::RENAME,
    Some(0),
    1,
    Some(3),
    None
);
path_syscall!(
    sys_enter_renameat = programs::file::SYS_ENTER_RENAMEAT,
    sys_exit_renameat = programs::file::SYS_EXIT_RENAMEAT,
    "sys_enter_renameat",
    "sys_exit_renameat",
    file_op::RENAME,
    Some(0),
    1,
    Some(3),
    None
);
path_syscall!(
    sys_enter_rename = programs::file::SYS_ENTER_RENAME,
    sys_exit_rename = programs::file::SYS_EXIT_RENAME,
    "sys_enter_rename",
    "sys_exit_rename",
    file_op::RENAME,
    None,
    0,
    Some(1),
    None
);
path_syscall!(
    sys_enter_fchmodat = programs::file::SYS_ENTER_FCHMODAT,
    sys_exit_fchmodat = programs::file::SYS_EXIT_FCHMODAT,
    "sys_enter_fchmodat",
    "sys_exit_fchmodat",
    file_op::CHMOD,
    Some(0),
    1,
    None,
    Some(2)
);
path_syscall!(
    sys_enter_fchmodat2 = programs::file::SYS_ENTER_FCHMODAT2,
    sys_exit_fchmodat2 = programs::file::SYS_EXIT_FCHMODAT2,
    "sys_enter_fchmodat2",
    "sys_exit_fchmodat2",
    file_op::CHMOD,
    Some(0),
    1,
    None,
    Some(2)
);
path_syscall!(
    sys_enter_chmod = programs::file::SYS_ENTER_CHMOD,
    sys_exit_chmod = programs::file::SYS_EXIT_CHMOD,
    "sys_enter_chmod",
    "sys_exit_chmod",
    file_op::CHMOD,
    None,
    0,
    None,
    Some(1)
);
path_syscall!(
    sys_enter_fchownat = programs::file::SYS_ENTER_FCHOWNAT,
    sys_exit_fchownat = programs::file::SYS_EXIT_FCHOWNAT,
    "sys_enter_fchownat",
    "sys_exit_fchownat",
    file_op::CHOWN,
    Some(0),
    1,
    None,
    None
);
path_syscall!(
    sys_enter_chown = programs::file::SYS_ENTER_CHOWN,
    sys_exit_chown = programs::file::SYS_EXIT_CHOWN,
    "sys_enter_chown",
    "sys_exit_chown",
    file_op::CHOWN,
    None,
    0,
    None,
    None
);
path_syscall!(
    sys_enter_lchown = programs::file::SYS_ENTER_LCHOWN,
    sys_exit_lchown = programs::file::SYS_EXIT_LCHOWN,
    "sys_enter_lchown",
    "sys_exit_lchown",
    file_op::CHOWN,
    None,
    0,
    None,
    None
);
path_syscall!(
    sys_enter_linkat = programs::file::SYS_ENTER_LINKAT,
    sys_exit_linkat = programs::file::SYS_EXIT_LINKAT,
    "sys_enter_linkat",
    "sys_exit_linkat",
    file_op::LINK,
    Some(0),
    1,
    Some(3),
    None
);
path_syscall!(
    sys_enter_link = programs::file::SYS_ENTER_LINK,
    sys_exit_link = programs::file::SYS_EXIT_LINK,
    "sys_enter_link",
    "sys_exit_link",
    file_op::LINK,
    None,
    0,
    Some(1),
    None
);
path_syscall!(
    sys_enter_truncate = programs::file::SYS_ENTER_TRUNCATE,
    sys_exit_truncate = programs::file::SYS_EXIT_TRUNCATE,
    "sys_enter_truncate",
    "sys_exit_truncate",
    file_op::TRUNCATE,
    None,
    0,
    None,
    None
);
