//! Process lifecycle: exec (with everything needed to attribute it later), fork and exit (to keep
//! the daemon's process table exact).
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated as gen},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use sealwatch_abi::{
    exec_flags, kind, lane, layer, programs, Blob, ExecEvent, ExitEvent, ForkEvent, ARGS_MAX,
    DATA_MASK, EXEC_FIXED_SIZE, NAME_MAX,
};

use crate::{
    emit::{count_drop, output_bytes, paced_wakeup, submit, NO_WAKEUP},
    env::scan_env,
    kernel::{
        fill_header, inode_deleted, inode_layer, is_self, pid_ns, read, read_kernel_str, read_ptr,
        task_in_container, vpid_and_level, walk_path, Ptr, TARGET_EXEC,
    },
    maps::{config, SCRATCH},
};

abi_name!(sched_process_exec, programs::process::SCHED_PROCESS_EXEC);
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    let _ = try_sched_process_exec(&ctx);
    0
}

fn try_sched_process_exec(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let task: Ptr = ctx.arg(0);
    let bprm: Ptr = ctx.arg(2);
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if is_self(tgid) {
        return Ok(());
    }
    let Some(event) = SCRATCH.get_ptr_mut(0) else {
        count_drop(lane::CRITICAL);
        return Ok(());
    };
    // SAFETY: the per-CPU scratch slot is ours until this program returns.
    let record = event as *const u8;
    let event: &mut ExecEvent = unsafe { &mut *event };
    let data = event.data.as_mut_ptr();
    let event = &mut event.fixed;
    fill_header(&mut event.header, kind::EXEC, task);
    let mut flags = 0u32;
    // The slot is reused: reset every field that is only set conditionally.
    event.loginuid = u32::MAX;
    event.sessionid = u32::MAX;
    event._pad0 = 0;
    event.exe_ino = 0;
    event.exe_dev = 0;
    event._pad1 = 0;

    let parent = read_ptr(task, config!(offsets.task_real_parent))?;
    event.ppid = read::<u32>(parent, config!(offsets.task_tgid))?;
    let (vpid, pid_level) = vpid_and_level(task);
    event.vpid = vpid;
    event.pid_level = pid_level;
    event.parent_pid_ns = pid_ns(parent);
    event._pad2 = 0;
    // Login candidates: entered a pid namespace from outside (runc exec, nsenter), or started by
    // sshd/login. Only they pay for the environment copy.
    let entered = event.parent_pid_ns != event.header.pid_ns && vpid != 1;
    let parent_comm = read::<[u8; 8]>(parent, config!(offsets.task_comm)).unwrap_or([0; 8]);
    let login_parent = parent_comm.starts_with(b"sshd") || parent_comm.starts_with(b"login\0");
    let want_env = entered || login_parent;
    if config!(offsets.has_loginuid) != 0 {
        event.loginuid = read::<u32>(task, config!(offsets.task_loginuid)).unwrap_or(u32::MAX);
        event.sessionid = read::<u32>(task, config!(offsets.task_sessionid)).unwrap_or(u32::MAX);
    } else {
        flags |= exec_flags::NO_LOGINUID;
    }
    if !task_in_container(task) {
        flags |= exec_flags::HOST_ROOT;
    }
    event.tty_name = [0; 32];
    if let Ok(signal) = read_ptr(task, config!(offsets.task_signal)) {
        if let Ok(tty) = read_ptr(signal, config!(offsets.signal_tty)) {
            if !tty.is_null() {
                let name = tty.wrapping_add(config!(offsets.tty_name) as usize);
                if read_kernel_str(event.tty_name.as_mut_ptr(), 32, name) > 0 {
                    flags |= exec_flags::HAS_TTY;
                }
            }
        }
    }

    let mut off = 0usize;

    // The executed file, as opened by the kernel (symlinks resolved).
    let file = read_ptr(bprm, config!(offsets.binprm_file))?;
    let f_path = config!(offsets.file_f_path);
    let exe_dentry = read_ptr(file, f_path + config!(offsets.path_dentry))?;
    let exe_mnt = read_ptr(file, f_path + config!(offsets.path_mnt))?;
    let exe = walk_path(TARGET_EXEC, off, exe_dentry, exe_mnt);
    crate::interp::note_exec(tgid, exe_dentry);
    if exe.truncated {
        flags |= exec_flags::EXE_TRUNCATED;
    }
    event.exe = Blob {
        off: off as u16,
        len: exe.len as u16,
    };
    off += exe.len;
    if let Ok(inode) = read_ptr(file, config!(offsets.file_f_inode)) {
        // Decided now: a binary deleted or a container gone a moment later can't be asked later.
        let placement = inode_layer(inode);
        if inode_deleted(inode) {
            flags |= exec_flags::EXE_DELETED;
        }
        flags |= match placement.layer {
            layer::LOWER => exec_flags::EXE_OVERLAY | exec_flags::EXE_LOWER,
            layer::UPPER => exec_flags::EXE_OVERLAY | exec_flags::EXE_UPPER,
            layer::UNKNOWN => exec_flags::EXE_OVERLAY,
            _ => 0,
        };
        event.exe_ino = read::<u64>(inode, config!(offsets.inode_i_ino)).unwrap_or(0);
        event.exe_dev = placement.dev();
    }

    // Working directory.
    event.cwd = Blob {
        off: off as u16,
        len: 0,
    };
    if let Ok(fs) = read_ptr(task, config!(offsets.task_fs)) {
        let pwd = config!(offsets.fs_pwd);
        let dentry = read_ptr(fs, pwd + config!(offsets.path_dentry));
        let mnt = read_ptr(fs, pwd + config!(offsets.path_mnt));
        if let (Ok(dentry), Ok(mnt)) = (dentry, mnt) {
            let cwd = walk_path(TARGET_EXEC, off, dentry, mnt);
            if cwd.truncated {
                flags |= exec_flags::CWD_TRUNCATED;
            }
            event.cwd.len = cwd.len as u16;
            off += cwd.len;
        }
    }

    // The name execve was called with (relative paths, scripts).
    event.filename = Blob {
        off: off as u16,
        len: 0,
    };
    if let Ok(filename) = read_ptr(bprm, config!(offsets.binprm_filename)) {
        let n = read_kernel_str(
            data.wrapping_add(off & DATA_MASK),
            NAME_MAX as u32,
            filename,
        );
        event.filename.len = n as u16;
        off += n;
    }

    // The interpreter a binfmt handler chose (differs from filename for `#!` scripts).
    event.interp = Blob {
        off: off as u16,
        len: 0,
    };
    if let Ok(interp) = read_ptr(bprm, config!(offsets.binprm_interp)) {
        let n = read_kernel_str(data.wrapping_add(off & DATA_MASK), NAME_MAX as u32, interp);
        event.interp.len = n as u16;
        off += n;
    }

    // argv, straight from the new program's stack.
    event.args = Blob {
        off: off as u16,
        len: 0,
    };
    let mm = read_ptr(task, config!(offsets.task_mm))?;
    let arg_start = read::<u64>(mm, config!(offsets.mm_arg_start))?;
    let arg_end = read::<u64>(mm, config!(offsets.mm_arg_end))?;
    let (args_len, args_cut) = copy_user_area(data, off, arg_start, arg_end, ARGS_MAX);
    if args_cut {
        flags |= exec_flags::ARGS_TRUNCATED;
    }
    event.args.len = args_len as u16;
    off += args_len;

    // Environment of login candidates (k8s exec audit id, SSH_CONNECTION).
    event.env = Blob {
        off: off as u16,
        len: 0,
    };
    if want_env {
        let env_start = read::<u64>(mm, config!(offsets.mm_env_start)).unwrap_or(0);
        let env_end = read::<u64>(mm, config!(offsets.mm_env_end)).unwrap_or(0);
        let env_len = scan_env(TARGET_EXEC, off, env_start, env_end);
        event.env.len = env_len as u16;
        off += env_len;
    }

    event.header.flags = flags;
    let mut len = EXEC_FIXED_SIZE + off;
    if len > core::mem::size_of::<ExecEvent>() {
        len = core::mem::size_of::<ExecEvent>();
    }
    output_bytes(lane::CRITICAL, paced_wakeup(lane::CRITICAL), record, len);
    Ok(())
}

abi_name!(sched_process_fork, programs::process::SCHED_PROCESS_FORK);
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    let _ = try_sched_process_fork(&ctx);
    0
}

fn try_sched_process_fork(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let parent: Ptr = ctx.arg(0);
    let child: Ptr = ctx.arg(1);
    let child_pid = read::<u32>(child, config!(offsets.task_pid))?;
    let child_tgid = read::<u32>(child, config!(offsets.task_tgid))?;
    // New threads share the process; only new processes change the table.
    if child_pid != child_tgid {
        return Ok(());
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if is_self(tgid) {
        return Ok(());
    }
    submit::<ForkEvent>(lane::CRITICAL, NO_WAKEUP, |event| {
        fill_header(&mut event.header, kind::FORK, parent);
        event.child_pid = child_pid;
        Ok(())
    });
    Ok(())
}

abi_name!(sched_process_exit, programs::process::SCHED_PROCESS_EXIT);
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    let _ = try_sched_process_exit(&ctx);
    0
}

fn try_sched_process_exit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    let task: Ptr = ctx.arg(0);
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // Only the thread-group leader's exit ends a process in the table.
    if tgid != pid_tgid as u32 || is_self(tgid) {
        return Ok(());
    }
    crate::interp::note_exit(tgid);
    submit::<ExitEvent>(lane::CRITICAL, NO_WAKEUP, |event| {
        fill_header(&mut event.header, kind::EXIT, task);
        event.exit_code = read::<u32>(task, config!(offsets.task_exit_code)).unwrap_or(0);
        Ok(())
    });
    Ok(())
}

/// Copies the user memory area `[start, end)` (argv or environment of the new image) into the
/// data area at `off`, at most `max` bytes. Returns the bytes copied and whether it was cut.
#[inline(always)]
fn copy_user_area(data: *mut u8, off: usize, start: u64, end: u64, max: usize) -> (usize, bool) {
    let mut len = end.saturating_sub(start) as usize;
    let cut = len > max;
    if cut {
        len = max;
    }
    if len == 0 {
        return (0, cut);
    }
    // SAFETY: the data area has `max` bytes of room past any masked offset.
    let ret = unsafe {
        gen::bpf_probe_read_user(
            data.wrapping_add(off & DATA_MASK) as *mut _,
            len as u32,
            start as *const _,
        )
    };
    if ret == 0 {
        (len, cut)
    } else {
        (0, cut)
    }
}
