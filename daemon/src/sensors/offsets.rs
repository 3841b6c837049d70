//! Kernel struct member offsets, read from the running kernel's BTF at start-up: the programs
//! never carry a layout from the build machine.
//!
//! vmlinux BTF is parsed twice at start-up: here with btf-rs, and by aya to load the tp_btf
//! programs. aya 0.14 keeps its type and member queries crate-private, so its parse cannot answer
//! these lookups; the cost is start-up time and heap (returned by `malloc_trim` once ready).
use std::path::{Path, PathBuf};

use btf_rs::{Btf, Type};
use sealwatch_abi::{io_fixed_layout, KernelOffsets};
use thiserror::Error;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, Error)]
pub enum OffsetError {
    #[error("kernel BTF is not available at {path} ({reason}): sealwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf { path: PathBuf, reason: String },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
}

struct Resolver {
    btf: Btf,
}

impl Resolver {
    fn strukt(&self, name: &str) -> Result<btf_rs::Struct, OffsetError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|_| OffsetError::NoStruct(name.to_owned()))?;
        types
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| OffsetError::NoStruct(name.to_owned()))
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut ty: Type) -> Type {
        for _ in 0..16 {
            let next = match &ty {
                Type::Typedef(t) => self.btf.resolve_chained_type(t),
                Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => {
                    self.btf.resolve_chained_type(t)
                }
                _ => return ty,
            };
            match next {
                Ok(next) => ty = next,
                Err(_) => return ty,
            }
        }
        ty
    }

    /// Byte offset of `path` (e.g. `"d_name.name"`) inside `s`, looking through anonymous
    /// structs and unions as C does.
    fn find(&self, s: &btf_rs::Struct, path: &[&str]) -> Option<u32> {
        let (first, rest) = path.split_first()?;
        for member in &s.members {
            let name = self.btf.resolve_name(member).unwrap_or_default();
            let member_type = self
                .btf
                .resolve_chained_type(member)
                .ok()
                .map(|t| self.resolve(t));
            let base = member.bit_offset() / 8;
            if name.is_empty() {
                if let Some(Type::Struct(inner) | Type::Union(inner)) = &member_type {
                    if let Some(off) = self.find(inner, path) {
                        return Some(base + off);
                    }
                }
                continue;
            }
            if name != *first {
                continue;
            }
            if rest.is_empty() {
                return Some(base);
            }
            if let Some(Type::Struct(inner) | Type::Union(inner)) = &member_type {
                return self.find(inner, rest).map(|off| base + off);
            }
            return None;
        }
        None
    }

    fn offset(&self, strukt: &str, member: &str) -> Result<u32, OffsetError> {
        let s = self.strukt(strukt)?;
        let path: Vec<&str> = member.split('.').collect();
        self.find(&s, &path).ok_or_else(|| OffsetError::NoMember {
            strukt: strukt.to_owned(),
            member: member.to_owned(),
        })
    }

    fn size(&self, strukt: &str) -> Result<u32, OffsetError> {
        Ok(self.strukt(strukt)?.size() as u32)
    }
}

/// overlayfs's module BTF, where overlay is built as a module.
pub const OVERLAY_MODULE_BTF: &str = "/sys/kernel/btf/overlay";

/// What the kernel cannot decide without overlayfs's layout, and what the daemon does instead:
/// logged at start-up when neither vmlinux nor the overlay module's BTF describes it.
pub const OVERLAY_DEGRADED: &str = "overlayfs's inode layout is in neither vmlinux BTF nor \
    /sys/kernel/btf/overlay (an older kernel, or a module built without BTF): the kernel cannot \
    tell a container's image files from its own. image-file-modified and new-executable on opens \
    fall back to path look-ups in the container's layers (slower; a file renamed since is missed), \
    and drift-exec cannot tell a copied binary from an image one (memfd and deleted binaries and \
    scripts are still caught)";

/// `ovl_inode` and `ovl_entry` member offsets, when `r`'s BTF has them.
fn overlay_offsets(r: &Resolver) -> Option<(u32, u32, u32, u32)> {
    Some((
        r.offset("ovl_inode", "vfs_inode").ok()?,
        r.offset("ovl_inode", "__upperdentry").ok()?,
        r.offset("ovl_inode", "oe").ok()?,
        r.offset("ovl_entry", "__numlower").ok()?,
    ))
}

/// The io_uring members the io_uring programs read (see `KernelOffsets::io_kiocb_opcode`).
#[derive(Clone, Copy)]
struct UringOffsets {
    kiocb_opcode: u32,
    kiocb_res: u32,
    open_how: u32,
    open_file_slot: u32,
    /// `old_dfd`, `oldpath`, `newpath`, `new_dfd`.
    rename: [u32; 4],
    /// `dfd`, `filename`.
    unlink: [u32; 2],
    link: [u32; 4],
    filename_name: u32,
    kiocb_ctx: u32,
    fixed: FixedFiles,
    /// `io_connect.addr` (0 when unknown).
    connect_addr: u32,
}

/// Where a ring keeps its fixed files (see `KernelOffsets::io_fixed_files`).
#[derive(Clone, Copy, Default)]
struct FixedFiles {
    files: u32,
    nr: u32,
    node_file_ptr: u32,
    layout: u32,
}

/// What an unknown fixed-file layout costs, logged at start-up.
pub const IO_FIXED_FILES_DEGRADED: &str = "io_uring's fixed-file table has a layout this build \
    does not know: opens submitted through io_uring into a fixed-file slot are not judged";

fn fixed_files(r: &Resolver) -> FixedFiles {
    let nodes = || -> Option<FixedFiles> {
        Some(FixedFiles {
            files: r.offset("io_ring_ctx", "file_table.data.nodes").ok()?,
            nr: r.offset("io_ring_ctx", "file_table.data.nr").ok()?,
            node_file_ptr: r.offset("io_rsrc_node", "file_ptr").ok()?,
            layout: io_fixed_layout::NODES,
        })
    };
    let flat = || -> Option<FixedFiles> {
        Some(FixedFiles {
            files: r.offset("io_ring_ctx", "file_table.files").ok()?,
            nr: r.offset("io_ring_ctx", "nr_user_files").ok()?,
            node_file_ptr: 0,
            layout: io_fixed_layout::FLAT,
        })
    };
    nodes().or_else(flat).unwrap_or_default()
}

/// What io_uring costs to see without them, logged at start-up.
pub const IO_URING_DEGRADED: &str = "io_uring's request layout is not in vmlinux BTF (a kernel \
    without io_uring, or older than the layout sealwatch reads): opens, renames, unlinks, links \
    and connects submitted through io_uring are not judged";

fn uring_offsets(r: &Resolver) -> Option<UringOffsets> {
    let two_names = |s: &str| -> Option<[u32; 4]> {
        Some([
            r.offset(s, "old_dfd").ok()?,
            r.offset(s, "oldpath").ok()?,
            r.offset(s, "newpath").ok()?,
            r.offset(s, "new_dfd").ok()?,
        ])
    };
    Some(UringOffsets {
        kiocb_opcode: r.offset("io_kiocb", "opcode").ok()?,
        kiocb_res: r.offset("io_kiocb", "cqe.res").ok()?,
        open_how: r.offset("io_open", "how").ok()?,
        open_file_slot: r.offset("io_open", "file_slot").ok()?,
        rename: two_names("io_rename")?,
        unlink: [
            r.offset("io_unlink", "dfd").ok()?,
            r.offset("io_unlink", "filename").ok()?,
        ],
        link: two_names("io_link")?,
        filename_name: r.offset("filename", "name").ok()?,
        kiocb_ctx: r.offset("io_kiocb", "ctx").ok()?,
        fixed: fixed_files(r),
        connect_addr: r.offset("io_connect", "addr").unwrap_or(0),
    })
}

/// Resolves every offset the programs use from the BTF file at `path`. One long list on purpose:
/// it is `KernelOffsets` field by field, each next to the struct member it comes from.
pub fn resolve(path: &Path) -> Result<KernelOffsets, OffsetError> {
    let btf = Btf::from_file(path).map_err(|err| OffsetError::NoBtf {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    let r = Resolver { btf };
    // CONFIG_AUDIT kernels track login uids; without it the field is absent and exec events say
    // so instead of carrying a wrong value.
    let loginuid = r.offset("task_struct", "loginuid").ok();
    // The socket fields are read from a `struct sock *` (`sk->__sk_common.skc_*`).
    let skc = r.offset("sock", "__sk_common")?;
    let sessionid = r.offset("task_struct", "sessionid").ok();
    // overlayfs with the 6.5+ layout (`oe` in `ovl_inode`): the kernel decides a file's layer
    // itself. Built in, its types are in vmlinux BTF; built as a module, in the module's split
    // BTF on top of it. Otherwise the daemon says what degrades (`overlay_degraded`).
    let ovl = overlay_offsets(&r).or_else(|| {
        let module = Btf::from_split_file(OVERLAY_MODULE_BTF, &r.btf).ok()?;
        overlay_offsets(&Resolver { btf: module })
    });
    let [regs_arg0, regs_arg1, regs_arg2, regs_arg3] = syscall_arg_registers(&r)?;
    let uring = uring_offsets(&r);
    Ok(KernelOffsets {
        task_real_parent: r.offset("task_struct", "real_parent")?,
        task_tgid: r.offset("task_struct", "tgid")?,
        task_pid: r.offset("task_struct", "pid")?,
        task_loginuid: loginuid.unwrap_or(0),
        task_sessionid: sessionid.unwrap_or(0),
        task_signal: r.offset("task_struct", "signal")?,
        task_fs: r.offset("task_struct", "fs")?,
        task_mm: r.offset("task_struct", "mm")?,
        task_nsproxy: r.offset("task_struct", "nsproxy")?,
        task_thread_pid: r.offset("task_struct", "thread_pid")?,
        task_exit_code: r.offset("task_struct", "exit_code")?,
        signal_tty: r.offset("signal_struct", "tty")?,
        tty_name: r.offset("tty_struct", "name")?,
        fs_pwd: r.offset("fs_struct", "pwd")?,
        path_mnt: r.offset("path", "mnt")?,
        path_dentry: r.offset("path", "dentry")?,
        mm_arg_start: r.offset("mm_struct", "arg_start")?,
        mm_arg_end: r.offset("mm_struct", "arg_end")?,
        mm_env_start: r.offset("mm_struct", "env_start")?,
        mm_env_end: r.offset("mm_struct", "env_end")?,
        task_comm: r.offset("task_struct", "comm")?,
        binprm_file: r.offset("linux_binprm", "file")?,
        binprm_filename: r.offset("linux_binprm", "filename")?,
        binprm_interp: r.offset("linux_binprm", "interp")?,
        file_f_path: r.offset("file", "f_path")?,
        file_f_inode: r.offset("file", "f_inode")?,
        inode_i_ino: r.offset("inode", "i_ino")?,
        inode_i_sb: r.offset("inode", "i_sb")?,
        sb_s_dev: r.offset("super_block", "s_dev")?,
        dentry_d_parent: r.offset("dentry", "d_parent")?,
        dentry_d_name_name: r.offset("dentry", "d_name.name")?,
        vfsmount_mnt_root: r.offset("vfsmount", "mnt_root")?,
        mount_mnt: r.offset("mount", "mnt")?,
        mount_mnt_parent: r.offset("mount", "mnt_parent")?,
        mount_mnt_mountpoint: r.offset("mount", "mnt_mountpoint")?,
        nsproxy_mnt_ns: r.offset("nsproxy", "mnt_ns")?,
        mnt_ns_inum: r.offset("mnt_namespace", "ns.inum")?,
        pid_level: r.offset("pid", "level")?,
        pid_numbers: r.offset("pid", "numbers")?,
        upid_size: r.size("upid")?,
        upid_ns: r.offset("upid", "ns")?,
        pid_ns_inum: r.offset("pid_namespace", "ns.inum")?,
        cgroup_kn: r.offset("cgroup", "kn")?,
        cgroup_root: r.offset("cgroup", "root")?,
        cgroup_level: r.offset("cgroup", "level")?,
        kernfs_node_id: r.offset("kernfs_node", "id")?,
        cgroup_root_hierarchy_id: r.offset("cgroup_root", "hierarchy_id")?,
        has_loginuid: u32::from(loginuid.is_some() && sessionid.is_some()),
        task_files: r.offset("task_struct", "files")?,
        files_fdt: r.offset("files_struct", "fdt")?,
        fdtable_fd: r.offset("fdtable", "fd")?,
        fdtable_max_fds: r.offset("fdtable", "max_fds")?,
        fs_root: r.offset("fs_struct", "root")?,
        vfsmount_mnt_sb: r.offset("vfsmount", "mnt_sb")?,
        sb_s_magic: r.offset("super_block", "s_magic")?,
        inode_i_nlink: r.offset("inode", "i_nlink")?,
        inode_i_mode: r.offset("inode", "i_mode")?,
        ovl_inode_vfs_inode: ovl.map_or(0, |o| o.0),
        ovl_inode_upperdentry: ovl.map_or(0, |o| o.1),
        ovl_inode_oe: ovl.map_or(0, |o| o.2),
        ovl_entry_numlower: ovl.map_or(0, |o| o.3),
        has_ovl: u32::from(ovl.is_some()),
        file_private_data: r.offset("file", "private_data")?,
        socket_sk: r.offset("socket", "sk")?,
        sock_protocol: r.offset("sock", "sk_protocol")?,
        skc_family: skc + r.offset("sock_common", "skc_family")?,
        skc_num: skc + r.offset("sock_common", "skc_num")?,
        skc_dport: skc + r.offset("sock_common", "skc_dport")?,
        skc_daddr: skc + r.offset("sock_common", "skc_daddr")?,
        skc_rcv_saddr: skc + r.offset("sock_common", "skc_rcv_saddr")?,
        skc_v6_daddr: skc + r.offset("sock_common", "skc_v6_daddr")?,
        skc_v6_rcv_saddr: skc + r.offset("sock_common", "skc_v6_rcv_saddr")?,
        regs_arg0,
        regs_arg1,
        regs_arg2,
        regs_arg3,
        file_f_mode: r.offset("file", "f_mode")?,
        io_kiocb_opcode: uring.map_or(0, |u| u.kiocb_opcode),
        io_kiocb_res: uring.map_or(0, |u| u.kiocb_res),
        io_open_how: uring.map_or(0, |u| u.open_how),
        io_open_file_slot: uring.map_or(0, |u| u.open_file_slot),
        io_rename_old_dfd: uring.map_or(0, |u| u.rename[0]),
        io_rename_oldpath: uring.map_or(0, |u| u.rename[1]),
        io_rename_newpath: uring.map_or(0, |u| u.rename[2]),
        io_rename_new_dfd: uring.map_or(0, |u| u.rename[3]),
        io_unlink_dfd: uring.map_or(0, |u| u.unlink[0]),
        io_unlink_filename: uring.map_or(0, |u| u.unlink[1]),
        io_link_old_dfd: uring.map_or(0, |u| u.link[0]),
        io_link_oldpath: uring.map_or(0, |u| u.link[1]),
        io_link_newpath: uring.map_or(0, |u| u.link[2]),
        io_link_new_dfd: uring.map_or(0, |u| u.link[3]),
        filename_name: uring.map_or(0, |u| u.filename_name),
        has_io_uring: u32::from(uring.is_some()),
        io_kiocb_ctx: uring.map_or(0, |u| u.kiocb_ctx),
        io_fixed_files: uring.map_or(0, |u| u.fixed.files),
        io_fixed_files_nr: uring.map_or(0, |u| u.fixed.nr),
        io_rsrc_node_file_ptr: uring.map_or(0, |u| u.fixed.node_file_ptr),
        io_fixed_layout: uring.map_or(io_fixed_layout::NONE, |u| u.fixed.layout),
        io_connect_addr: uring.map_or(0, |u| u.connect_addr),
        _pad: 0,
    })
}

/// Where `struct pt_regs` keeps the second to fourth syscall arguments (the calling convention).
#[cfg(target_arch = "x86_64")]
fn syscall_arg_registers(r: &Resolver) -> Result<[u32; 4], OffsetError> {
    // x86-64: di, si, dx, r10, r8, r9.
    Ok([
        r.offset("pt_regs", "di")?,
        r.offset("pt_regs", "si")?,
        r.offset("pt_regs", "dx")?,
        r.offset("pt_regs", "r10")?,
    ])
}

#[cfg(target_arch = "aarch64")]
fn syscall_arg_registers(r: &Resolver) -> Result<[u32; 4], OffsetError> {
    // arm64: x0-x5 in `regs[]`; x0 takes the return value, so the first argument is kept in
    // `orig_x0`.
    let regs = r.offset("pt_regs", "regs")?;
    Ok([
        r.offset("pt_regs", "orig_x0")?,
        regs + 8,
        regs + 16,
        regs + 24,
    ])
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// Runs against this machine's kernel: every offset must resolve, and a few well-known
    /// relations must hold (these are facts of any Linux layout, not of one build).
    #[test]
    fn resolves_running_kernel() {
        if !Path::new(VMLINUX_BTF).exists() {
            panic!("{VMLINUX_BTF} missing: the build machine must have kernel BTF");
        }
        let off = resolve(Path::new(VMLINUX_BTF)).unwrap();
        assert!(off.task_tgid > 0 && off.task_pid > 0 && off.task_tgid != off.task_pid);
        assert_eq!(off.path_mnt, 0, "struct path starts with mnt");
        assert_eq!(off.path_dentry, 8);
        assert_eq!(off.upid_size, 16);
        assert!(
            off.mount_mnt > 0,
            "struct mount embeds vfsmount after its hash links"
        );
        assert!(off.dentry_d_name_name > 0);
        assert_eq!(
            off.has_ovl, 1,
            "this machine's overlayfs is built in (PLATFORM.md)"
        );
        assert!(off.ovl_inode_upperdentry > off.ovl_inode_vfs_inode);
        assert_eq!(off.has_io_uring, 1, "this machine's kernel has io_uring");
        assert!(off.io_kiocb_opcode > 0 && off.io_kiocb_res > off.io_kiocb_opcode);
        assert_eq!(
            off.io_fixed_layout,
            io_fixed_layout::NODES,
            "this machine's kernel (6.18) keeps fixed files as resource nodes"
        );
        assert!(off.io_fixed_files > 0 && off.io_kiocb_ctx > 0);
        assert_eq!(off.io_connect_addr, 8, "io_connect: file, then addr");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            (off.regs_arg0, off.regs_arg1, off.regs_arg2, off.regs_arg3),
            (112, 104, 96, 56),
            "x86-64 pt_regs: di, si, dx, r10"
        );
    }

    #[test]
    fn missing_btf_is_a_clear_error() {
        let err = resolve(Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert!(err.to_string().contains("CONFIG_DEBUG_INFO_BTF"));
    }
}
