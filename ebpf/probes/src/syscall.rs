//! Reading syscall tracepoint records and the current task: shared by the file and network
//! sensors.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated as gen},
    programs::TracePointContext,
    EbpfContext,
};

use crate::kernel::Ptr;

/// Syscall tracepoint records: 8-byte common header, 8-byte syscall nr, then 8 bytes per arg.
pub const fn arg(n: usize) -> usize {
    16 + 8 * n
}
pub const RET: usize = 16;

#[inline(always)]
pub fn current_task() -> Ptr {
    // SAFETY: tracing programs may read the current task pointer.
    unsafe { gen::bpf_get_current_task() as Ptr }
}

#[inline(always)]
pub fn tid() -> u64 {
    bpf_get_current_pid_tgid()
}

/// Reads argument `n` straight from the tracepoint record: the verifier allows direct loads
/// from a tracepoint's context, which saves a helper call on every traced syscall (most of them
/// read-only opens that return right after this).
#[inline(always)]
pub fn ctx_arg<T: Copy>(ctx: &TracePointContext, n: usize) -> Result<T, i64> {
    // SAFETY: offsets follow the syscall tracepoint format; every argument slot is 8 bytes.
    Ok(unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(arg(n)).cast::<T>()) })
}

/// The current syscall's saved user registers (`struct pt_regs`). They keep the syscall's
/// arguments until it returns to user space, so a `sys_exit_*` program can read an argument
/// there instead of a map carrying it from `sys_enter_*` (read offsets `config.offsets.regs_arg*`).
#[inline(always)]
pub fn syscall_regs() -> Ptr {
    // SAFETY: helpers on the current task (Linux 5.15+; the daemon needs 5.17).
    unsafe { gen::bpf_task_pt_regs(gen::bpf_get_current_task_btf()) as Ptr }
}

/// The syscall's return value in a `sys_exit_*` record.
#[inline(always)]
pub fn ctx_ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: `ret` sits at RET in every sys_exit format.
    unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(RET).cast::<i64>()) }
}
