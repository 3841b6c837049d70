//! Reading kernel structs through offsets resolved from the running kernel's BTF (see
//! `sealwatch::sensors::offsets`): portable across kernels without CO-RE support in Rust.
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel, generated as gen,
};
use sealwatch_abi::{
    layer, Header, DATA_MASK, NAME_MAX, OVERLAYFS_SUPER_MAGIC, PATH_DEPTH_MAX, PATH_MAX,
};

use crate::maps::{config, CONTAINER_CGROUPS, FILE_SCRATCH, SCRATCH, WALK};

pub type Ptr = *const u8;

/// Reads a `T` at `base + off` from kernel memory.
#[inline(always)]
pub fn read<T>(base: Ptr, off: u32) -> Result<T, i64> {
    if base.is_null() {
        return Err(-1);
    }
    // SAFETY: bpf_probe_read_kernel checks the address; a bad pointer is an error, not a fault.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize) as *const T) }.map_err(i64::from)
}

#[inline(always)]
pub fn read_ptr(base: Ptr, off: u32) -> Result<Ptr, i64> {
    read::<Ptr>(base, off)
}

/// True when the current task is the daemon itself: it never reports its own activity.
#[inline(always)]
pub fn is_self(tgid: u32) -> bool {
    tgid == config!(self_tgid)
}

/// Mount namespace inode of `task`.
#[inline(always)]
pub fn mnt_ns(task: Ptr) -> u32 {
    let inum = || -> Result<u32, i64> {
        let nsproxy = read_ptr(task, config!(offsets.task_nsproxy))?;
        let mnt_ns = read_ptr(nsproxy, config!(offsets.nsproxy_mnt_ns))?;
        read::<u32>(mnt_ns, config!(offsets.mnt_ns_inum))
    };
    inum().unwrap_or(0)
}

/// Pid namespace inode of `task`: the namespace its pid was allocated in
/// (`task->thread_pid->numbers[level].ns`), which is what `/proc/PID/ns/pid` shows.
#[inline(always)]
pub fn pid_ns(task: Ptr) -> u32 {
    let inum = || -> Result<u32, i64> {
        let pid = read_ptr(task, config!(offsets.task_thread_pid))?;
        let level = read::<u32>(pid, config!(offsets.pid_level))? & 31;
        let upid = config!(offsets.pid_numbers) + level * config!(offsets.upid_size);
        let ns = read_ptr(pid, upid + config!(offsets.upid_ns))?;
        read::<u32>(ns, config!(offsets.pid_ns_inum))
    };
    inum().unwrap_or(0)
}

/// Pid of `task` in its own pid namespace, and that namespace's level (0 = the host's).
#[inline(always)]
pub fn vpid_and_level(task: Ptr) -> (u32, u32) {
    let read_both = || -> Result<(u32, u32), i64> {
        let pid = read_ptr(task, config!(offsets.task_thread_pid))?;
        let level = read::<u32>(pid, config!(offsets.pid_level))? & 31;
        let upid = config!(offsets.pid_numbers) + level * config!(offsets.upid_size);
        // struct upid { int nr; struct pid_namespace *ns; }: nr first.
        Ok((read::<u32>(pid, upid)?, level))
    };
    read_both().unwrap_or((0, 0))
}

/// Fills the common header for the current task.
#[inline(always)]
pub fn fill_header(header: &mut Header, kind: u32, task: Ptr) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    header.kind = kind;
    // SAFETY: plain helpers without pointer arguments.
    header.ktime_ns = unsafe { bpf_ktime_get_boot_ns() };
    header.pid = (pid_tgid >> 32) as u32;
    header.tid = pid_tgid as u32;
    header.uid = uid_gid as u32;
    header.gid = (uid_gid >> 32) as u32;
    // SAFETY: as above.
    header.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    header.comm = bpf_get_current_comm().unwrap_or_default();
    header.mnt_ns = mnt_ns(task);
    header.pid_ns = pid_ns(task);
}

/// Copies a NUL-terminated kernel string into `dst` (at most `max` bytes including the NUL).
/// Returns the bytes written including the NUL, or 0.
#[inline(always)]
pub fn read_kernel_str(dst: *mut u8, max: u32, src: Ptr) -> usize {
    // SAFETY: callers pass a destination with at least `max` bytes of room.
    let n = unsafe { gen::bpf_probe_read_kernel_str(dst as *mut _, max, src as *const _) };
    if n > 0 {
        n as usize
    } else {
        0
    }
}

/// Result of [`walk_path`]: bytes written at the start offset, and whether the walk was cut.
pub struct PathWalk {
    pub len: usize,
    pub truncated: bool,
}

pub const TARGET_EXEC: u64 = 0;
pub const TARGET_FILE: u64 = 1;

const WALK_RUNNING: u64 = 0;
const WALK_DONE: u64 = 1;
const WALK_TRUNCATED: u64 = 2;

/// State of one path walk, kept in a per-CPU map rather than on the stack: the verifier does not
/// track values in map memory, so every callback iteration looks the same to it and the loop is
/// verified once (on the stack, the growing offset kept it from converging).
#[repr(C)]
pub struct Walk {
    /// Which scratch record receives the path: [`TARGET_EXEC`] or [`TARGET_FILE`].
    target: u64,
    dentry: u64,
    vfsmount: u64,
    mount: u64,
    off: u64,
    budget_end: u64,
    state: u64,
}

/// Writes the path of (`dentry`, `vfsmount`) into the scratch exec record's data area at
/// `start`, leaf first, each component NUL-terminated, crossing mount points up to the root of
/// the task's mount namespace. Paths therefore read as the task sees them: inside a container,
/// relative to the container's root.
///
/// The walk runs under `bpf_loop` (Linux 5.17+): the verifier checks one step once instead of
/// unrolling 64 of them, which kept a two-walk program far below its instruction budget.
#[inline(always)]
pub fn walk_path(target: u64, start: usize, dentry: Ptr, vfsmount: Ptr) -> PathWalk {
    let Some(walk) = WALK.get_ptr_mut(0) else {
        return PathWalk {
            len: 0,
            truncated: true,
        };
    };
    // SAFETY: per-CPU slot, ours until the program returns.
    let walk = unsafe { &mut *walk };
    walk.target = target;
    walk.dentry = dentry as u64;
    walk.vfsmount = vfsmount as u64;
    walk.mount = (vfsmount as u64).wrapping_sub(u64::from(config!(offsets.mount_mnt)));
    walk.off = start as u64;
    walk.budget_end = (start + PATH_MAX - NAME_MAX) as u64;
    walk.state = WALK_RUNNING;
    // SAFETY: `walk_step` matches the callback signature and takes its state from WALK.
    unsafe {
        gen::bpf_loop(
            PATH_DEPTH_MAX,
            walk_step as *mut core::ffi::c_void,
            core::ptr::null_mut(),
            0,
        );
    }
    PathWalk {
        len: (walk.off as usize).wrapping_sub(start) & (PATH_MAX * 2 - 1),
        truncated: walk.state != WALK_DONE,
    }
}

extern "C" fn walk_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let Some(walk) = WALK.get_ptr_mut(0) else {
        return 1;
    };
    // SAFETY: per-CPU slot, ours until the program returns.
    let walk = unsafe { &mut *walk };
    match step(walk) {
        Ok(()) if walk.state == WALK_RUNNING => 0,
        Ok(()) => 1,
        Err(_) => {
            walk.state = WALK_TRUNCATED;
            1
        }
    }
}

fn step(walk: &mut Walk) -> Result<(), i64> {
    let dentry = walk.dentry as Ptr;
    let vfsmount = walk.vfsmount as Ptr;
    let mount = walk.mount as Ptr;
    let mnt_root = read_ptr(vfsmount, config!(offsets.vfsmount_mnt_root))?;
    let parent = read_ptr(dentry, config!(offsets.dentry_d_parent))?;
    if dentry == mnt_root {
        // Top of this mount: continue in the parent mount, or stop at the namespace root.
        let mount_parent = read_ptr(mount, config!(offsets.mount_mnt_parent))?;
        if mount_parent == mount {
            walk.state = WALK_DONE;
            return Ok(());
        }
        walk.dentry = read_ptr(mount, config!(offsets.mount_mnt_mountpoint))? as u64;
        walk.mount = mount_parent as u64;
        walk.vfsmount = (mount_parent as u64).wrapping_add(u64::from(config!(offsets.mount_mnt)));
        return Ok(());
    }
    if walk.off > walk.budget_end {
        walk.state = WALK_TRUNCATED;
        return Ok(());
    }
    let name = read_ptr(dentry, config!(offsets.dentry_d_name_name))?;
    let data = scratch_data(walk.target).ok_or(-1i64)?;
    let written = read_kernel_str(
        data.wrapping_add(walk.off as usize & DATA_MASK),
        NAME_MAX as u32,
        name,
    );
    if written == 0 {
        return Err(-1);
    }
    walk.off += written as u64;
    if dentry == parent {
        // The root of a filesystem that is not mounted in this namespace (pipe, memfd,
        // deleted mount): its own name is the whole story.
        walk.state = WALK_DONE;
        return Ok(());
    }
    walk.dentry = parent as u64;
    Ok(())
}

/// Data area of the scratch record a walk writes into.
#[inline(always)]
pub fn scratch_data(target: u64) -> Option<*mut u8> {
    // SAFETY: per-CPU records; masked offsets plus NAME_MAX stay inside their data areas, which
    // have the same size.
    if target == TARGET_FILE {
        FILE_SCRATCH
            .get_ptr_mut(0)
            .map(|record| unsafe { (*record).data.as_mut_ptr() })
    } else {
        SCRATCH
            .get_ptr_mut(0)
            .map(|record| unsafe { (*record).data.as_mut_ptr() })
    }
}

/// `struct file *` of descriptor `fd` of `task`.
#[inline(always)]
pub fn fd_file(task: Ptr, fd: u64) -> Result<Ptr, i64> {
    let files = read_ptr(task, config!(offsets.task_files))?;
    let fdt = read_ptr(files, config!(offsets.files_fdt))?;
    let max_fds = read::<u32>(fdt, config!(offsets.fdtable_max_fds))?;
    if fd >= u64::from(max_fds) {
        return Err(-1);
    }
    let array = read_ptr(fdt, config!(offsets.fdtable_fd))?;
    read_ptr(array, (fd as u32).wrapping_mul(8))
}

#[inline(always)]
fn is_overlay_sb(sb: Ptr) -> bool {
    read::<u64>(sb, config!(offsets.sb_s_magic)).is_ok_and(|magic| magic == OVERLAYFS_SUPER_MAGIC)
}

/// True when the task's root directory is on overlayfs: it runs in a container.
#[inline(always)]
pub fn task_in_container(task: Ptr) -> bool {
    let check = || -> Result<bool, i64> {
        let fs = read_ptr(task, config!(offsets.task_fs))?;
        let root = config!(offsets.fs_root);
        let mnt = read_ptr(fs, root + config!(offsets.path_mnt))?;
        let sb = read_ptr(mnt, config!(offsets.vfsmount_mnt_sb))?;
        Ok(is_overlay_sb(sb))
    };
    check().unwrap_or(false)
}

/// True when the current task is in a container's cgroup, wherever its root is: a process
/// that `chroot`ed out of the overlay (to `/proc`, a tmpfs, a volume) is still the container's.
/// Asked only of tasks whose root is not on overlayfs.
#[inline(always)]
pub fn in_container_cgroup() -> bool {
    // SAFETY: helper without arguments; only presence is checked.
    unsafe { CONTAINER_CGROUPS.get(bpf_get_current_cgroup_id()) }.is_some()
}

/// Whether `inode` has no links left (a deleted file, still open or running).
#[inline(always)]
pub fn inode_deleted(inode: Ptr) -> bool {
    read::<u32>(inode, config!(offsets.inode_i_nlink)).is_ok_and(|n| n == 0)
}

/// An inode's place: its layer (see `sealwatch_abi::layer`) and its super block.
pub struct Placement {
    pub layer: u32,
    /// Null when unreadable (layer `UNKNOWN`).
    pub sb: Ptr,
}

impl Placement {
    /// The device number of the inode's file system (0 when unreadable).
    #[inline(always)]
    pub fn dev(&self) -> u32 {
        read::<u32>(self.sb, config!(offsets.sb_s_dev)).unwrap_or(0)
    }
}

/// Where `inode` lives: the overlay layer it comes from, and its super block.
#[inline(always)]
pub fn inode_layer(inode: Ptr) -> Placement {
    let Ok(sb) = read_ptr(inode, config!(offsets.inode_i_sb)) else {
        return Placement {
            layer: layer::UNKNOWN,
            sb: core::ptr::null(),
        };
    };
    let layer = if !is_overlay_sb(sb) {
        layer::NONE
    } else if config!(offsets.has_ovl) == 0 {
        layer::UNKNOWN
    } else {
        overlay_layer(inode)
    };
    Placement { layer, sb }
}

/// The layer of an overlayfs inode: lower when it has a lower stack, upper when it has only an
/// upper dentry.
#[inline(always)]
fn overlay_layer(inode: Ptr) -> u32 {
    let ovl_inode = inode.wrapping_sub(config!(offsets.ovl_inode_vfs_inode) as usize);
    let numlower = read_ptr(ovl_inode, config!(offsets.ovl_inode_oe))
        .and_then(|oe| read::<u32>(oe, config!(offsets.ovl_entry_numlower)))
        .unwrap_or(0);
    if numlower > 0 {
        return layer::LOWER;
    }
    match read_ptr(ovl_inode, config!(offsets.ovl_inode_upperdentry)) {
        Ok(upper) if !upper.is_null() => layer::UPPER,
        _ => layer::UNKNOWN,
    }
}
