//! cgroup creation and removal: a container's cgroup exists before its first process, so the
//! daemon can register the container (and fetch its metadata) before anything runs in it.
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use sealwatch_abi::{kind, lane, programs, CgroupEvent, CGROUP_PATH_MAX};

use crate::{
    emit::{submit, WAKEUP},
    kernel::{fill_header, read, read_kernel_str, read_ptr, Ptr},
    maps::config,
};

abi_name!(cgroup_mkdir, programs::container::CGROUP_MKDIR);
#[btf_tracepoint(function = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: BtfTracePointContext) -> i32 {
    emit_cgroup(&ctx, kind::CGROUP_MKDIR);
    0
}

abi_name!(cgroup_rmdir, programs::container::CGROUP_RMDIR);
#[btf_tracepoint(function = "cgroup_rmdir")]
pub fn cgroup_rmdir(ctx: BtfTracePointContext) -> i32 {
    emit_cgroup(&ctx, kind::CGROUP_RMDIR);
    0
}

#[inline(always)]
fn emit_cgroup(ctx: &BtfTracePointContext, record_kind: u32) {
    let cgroup: Ptr = ctx.arg(0);
    let path: Ptr = ctx.arg(1);
    // SAFETY: tracing programs may read the current task pointer.
    let task = unsafe { aya_ebpf::helpers::generated::bpf_get_current_task() } as Ptr;
    submit::<CgroupEvent>(lane::CRITICAL, WAKEUP, |event| {
        fill_header(&mut event.header, record_kind, task);
        let kn = read_ptr(cgroup, config!(offsets.cgroup_kn))?;
        event.id = read::<u64>(kn, config!(offsets.kernfs_node_id))?;
        let root = read_ptr(cgroup, config!(offsets.cgroup_root))?;
        event.hierarchy_id = read::<u32>(root, config!(offsets.cgroup_root_hierarchy_id))?;
        event.level = read::<u32>(cgroup, config!(offsets.cgroup_level))?;
        read_kernel_str(event.path.as_mut_ptr(), CGROUP_PATH_MAX as u32, path);
        Ok(())
    });
}
