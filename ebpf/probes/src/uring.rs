//! io_uring: operations submitted through a ring never pass the syscall tracepoints, so the
//! requests themselves are judged, like their syscalls. A request's paths are read when it is
//! submitted (`io_uring_submit_req`: prepared, its `struct filename`s are the kernel's own copy,
//! freed before completion); what it did when it completes (`io_uring_complete`: its result in
//! `req->cqe.res`). Opens are judged on the opened file (the new descriptor in the task's
//! table, which io-wq workers share, or the ring's fixed-file slot it was opened into),
//! renames, unlinks and links are reported like their syscalls and paired with their result
//! through the request rather than the thread (a worker may complete it), connects are
//! reported from the socket.
use aya_ebpf::{
    helpers::bpf_probe_read_kernel, macros::btf_tracepoint, programs::BtfTracePointContext,
    EbpfContext,
};
use sealwatch_abi::{file_op, io_fixed_layout, io_uring_op, programs, IO_FIXED_FILE_FLAGS};

use crate::{
    file::{judge_open, open_kind, report_path, report_result_of, OpenKind, PathOp, PathText},
    kernel::{fd_file, read, read_ptr, Ptr},
    maps::config,
    syscall::current_task,
};

/// The tracepoint's argument `index` (the request) as a plain number: the verifier types a
/// `tp_btf` argument as a trusted pointer, on which no arithmetic (the pairing id) is allowed.
#[inline(always)]
fn request(ctx: &BtfTracePointContext, index: usize) -> Result<Ptr, i64> {
    let args = ctx.as_ptr() as *const u64;
    // SAFETY: a tp_btf context is the array of the tracepoint's arguments; the helper checks.
    let req = unsafe { bpf_probe_read_kernel(args.wrapping_add(index)) }?;
    if req == 0 {
        return Err(-1);
    }
    Ok(req as Ptr)
}

/// The thread id the daemon pairs a request's record and its result by: never a real thread's
/// (those stay below 2^22), distinct for requests alive at the same time (slab objects of
/// more than 256 bytes).
#[inline(always)]
fn pair_tid(req: Ptr) -> u32 {
    0x8000_0000 | ((req as u64 >> 8) as u32 & 0x7fff_ffff)
}

abi_name!(io_uring_submit_req, programs::uring::IO_URING_SUBMIT_REQ);
#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn io_uring_submit_req(ctx: BtfTracePointContext) -> i32 {
    let _ = try_submit(&ctx);
    0
}

#[inline(always)]
fn try_submit(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if config!(offsets.has_io_uring) == 0 {
        return Ok(());
    }
    let req = request(ctx, 0)?;
    let opcode = read::<u8>(req, config!(offsets.io_kiocb_opcode))?;
    // (operation, directory descriptor, name, second name and its directory descriptor) in
    // the request's command.
    let (op, dirfd, name, second) = match opcode {
        io_uring_op::RENAMEAT => (
            file_op::RENAME,
            config!(offsets.io_rename_old_dfd),
            config!(offsets.io_rename_oldpath),
            Some((
                config!(offsets.io_rename_newpath),
                config!(offsets.io_rename_new_dfd),
            )),
        ),
        io_uring_op::UNLINKAT => (
            file_op::UNLINK,
            config!(offsets.io_unlink_dfd),
            config!(offsets.io_unlink_filename),
            None,
        ),
        io_uring_op::LINKAT => (
            file_op::LINK,
            config!(offsets.io_link_old_dfd),
            config!(offsets.io_link_oldpath),
            Some((
                config!(offsets.io_link_newpath),
                config!(offsets.io_link_new_dfd),
            )),
        ),
        io_uring_op::CONNECT => return crate::net::note_uring_connect(req),
        _ => return Ok(()),
    };
    let (name2, dirfd2) = match second {
        Some((name2, dirfd2)) => (
            PathText::Kernel(kernel_name(req, name2)?),
            Some(i64::from(read::<i32>(req, dirfd2)?)),
        ),
        None => (PathText::Absent, None),
    };
    report_path(&PathOp {
        op,
        dirfd: i64::from(read::<i32>(req, dirfd)?),
        dirfd2,
        name: PathText::Kernel(kernel_name(req, name)?),
        name2,
        mode: 0,
        result_key: req as u64,
        pair_tid: Some(pair_tid(req)),
    })
}

/// The kernel's copy of the path in the `struct filename *` at `req + at`.
#[inline(always)]
fn kernel_name(req: Ptr, at: u32) -> Result<u64, i64> {
    let filename = read_ptr(req, at)?;
    Ok(read_ptr(filename, config!(offsets.filename_name))? as u64)
}

/// `IORING_FILE_INDEX_ALLOC` (UAPI): the kernel picks the fixed-file slot.
const IORING_FILE_INDEX_ALLOC: u32 = u32::MAX;

/// The file in fixed-file slot `slot` of the ring `req` was submitted to.
#[inline(always)]
fn fixed_file(req: Ptr, slot: u32) -> Result<Ptr, i64> {
    let ring = read_ptr(req, config!(offsets.io_kiocb_ctx))?;
    if slot >= read::<u32>(ring, config!(offsets.io_fixed_files_nr))? {
        return Err(-1);
    }
    let table = read_ptr(ring, config!(offsets.io_fixed_files))?;
    let at = slot.wrapping_mul(8);
    let file_ptr = match config!(offsets.io_fixed_layout) {
        io_fixed_layout::NODES => {
            read::<u64>(read_ptr(table, at)?, config!(offsets.io_rsrc_node_file_ptr))?
        }
        io_fixed_layout::FLAT => read::<u64>(table, at)?,
        _ => return Err(-1),
    };
    Ok((file_ptr & !IO_FIXED_FILE_FLAGS) as Ptr)
}

abi_name!(io_uring_complete, programs::uring::IO_URING_COMPLETE);
#[btf_tracepoint(function = "io_uring_complete")]
pub fn io_uring_complete(ctx: BtfTracePointContext) -> i32 {
    let _ = try_complete(&ctx);
    0
}

#[inline(always)]
fn try_complete(ctx: &BtfTracePointContext) -> Result<(), i64> {
    if config!(offsets.has_io_uring) == 0 {
        return Ok(());
    }
    // io_uring_complete(ctx, req, cqe): the request carries its own result.
    let req = request(ctx, 1)?;
    let opcode = read::<u8>(req, config!(offsets.io_kiocb_opcode))?;
    let res = read::<i32>(req, config!(offsets.io_kiocb_res))?;
    match opcode {
        io_uring_op::OPENAT | io_uring_op::OPENAT2 => {
            if res < 0 {
                return Ok(());
            }
            // `struct open_how { u64 flags; u64 mode; u64 resolve; }`, the kernel's copy.
            let how = config!(offsets.io_open_how);
            let flags = read::<u64>(req, how)? as u32;
            let mode = read::<u64>(req, how + 8)? as u32;
            if open_kind(flags) == OpenKind::Ignored {
                return Ok(());
            }
            // The new file is in the task's table, or in one of the ring's fixed-file slots
            // (`file_slot`: the slot + 1, or "allocate", when the result is the slot chosen).
            let file = match read::<u32>(req, config!(offsets.io_open_file_slot))? {
                0 => fd_file(current_task(), res as u64)?,
                IORING_FILE_INDEX_ALLOC => fixed_file(req, res as u32)?,
                slot => fixed_file(req, slot - 1)?,
            };
            judge_open(file, flags, mode, 0)
        }
        io_uring_op::RENAMEAT | io_uring_op::UNLINKAT | io_uring_op::LINKAT => {
            report_result_of(req as u64, i64::from(res), Some(pair_tid(req)));
            Ok(())
        }
        // `io_kiocb` starts with the request's file: the socket.
        io_uring_op::CONNECT => {
            crate::net::report_uring_connect(req, read_ptr(req, 0)?, i64::from(res))
        }
        _ => Ok(()),
    }
}
