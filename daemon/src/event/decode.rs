//! Bytes from a ring buffer → [`KernelEvent`]. Never panics: a short or unknown record is an
//! error the reader counts and reports.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sealwatch_abi::{
    dns_dir, exec_flags, file_flags, file_op, kind, layer, net_flags, net_op, Blob, CgroupEvent,
    DnsEvent, ExecFixed, ExitEvent, FileFixed, ForkEvent, Header, NetEvent, SyscallResult,
    AF_INET6, DNS_MAX, EXEC_FIXED_SIZE, FILE_FIXED_SIZE, IPPROTO_TCP, IPPROTO_UDP,
};
use thiserror::Error;

use super::model::{
    DnsEnds, DnsRecord, ExeOrigin, ExecRecord, FileOp, FileRecord, KernelEvent, Layer, NetOp,
    NetRecord, Task, LOGIN_ENV_VARS,
};
use crate::net::Protocol;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {kind} layout ({need} bytes)")]
    Short {
        kind: &'static str,
        len: usize,
        need: usize,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("unknown file operation {0}")]
    UnknownFileOp(u32),
    #[error("unknown network operation {0}")]
    UnknownNetOp(u32),
    #[error("unknown DNS record direction {0}")]
    UnknownDnsDirection(u32),
}

/// Reads a `T` from the start of `bytes` if it is long enough.
fn read<T: Copy>(bytes: &[u8], kind: &'static str) -> Result<T, DecodeError> {
    let need = std::mem::size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            kind,
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: length checked above; the ABI types are plain integers (any bit pattern is valid);
    // `read_unaligned` because ring-buffer records are only 8-byte aligned.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

pub fn decode(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let header: Header = read(bytes, "header")?;
    match header.kind {
        kind::EXEC => decode_exec(bytes),
        kind::FORK => {
            let fork: ForkEvent = read(bytes, "fork")?;
            Ok(KernelEvent::Fork {
                task: task(&fork.header),
                child_pid: fork.child_pid,
            })
        }
        kind::EXIT => {
            let exit: ExitEvent = read(bytes, "exit")?;
            Ok(KernelEvent::Exit {
                task: task(&exit.header),
                exit_code: exit.exit_code,
            })
        }
        kind::CGROUP_MKDIR | kind::CGROUP_RMDIR => {
            let cgroup: CgroupEvent = read(bytes, "cgroup")?;
            let task = task(&cgroup.header);
            let path = until_nul(&cgroup.path).to_vec();
            let (id, hierarchy_id) = (cgroup.id, cgroup.hierarchy_id);
            Ok(if header.kind == kind::CGROUP_MKDIR {
                KernelEvent::CgroupMkdir {
                    task,
                    id,
                    hierarchy_id,
                    path,
                }
            } else {
                KernelEvent::CgroupRmdir {
                    task,
                    id,
                    hierarchy_id,
                    path,
                }
            })
        }
        kind::FILE => decode_file(bytes),
        kind::SYSCALL_RESULT => {
            let result: SyscallResult = read(bytes, "syscall result")?;
            Ok(KernelEvent::SyscallResult {
                task: task(&result.header),
                ret: result.ret,
            })
        }
        kind::NET => decode_net(bytes),
        kind::DNS => decode_dns(bytes),
        other => Err(DecodeError::UnknownKind(other)),
    }
}

fn decode_dns(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let dns: DnsEvent = read(bytes, "dns")?;
    let captured = (dns.captured as usize).min(DNS_MAX);
    let query = match dns.direction {
        dns_dir::QUERY => true,
        dns_dir::ANSWER => false,
        other => return Err(DecodeError::UnknownDnsDirection(other)),
    };
    let ipv6 = dns.family == AF_INET6;
    Ok(KernelEvent::Dns(DnsRecord {
        task: task(&dns.header),
        tcp: dns.protocol == IPPROTO_TCP,
        len: dns.len,
        data: dns.data[..captured].to_vec(),
        query,
        ends: Some(DnsEnds {
            local: ip_addr(ipv6, dns.local_addr),
            local_port: dns.local_port,
            peer: ip_addr(ipv6, dns.peer_addr),
            peer_port: dns.peer_port,
        }),
        ifindex: dns.ifindex,
    }))
}

/// An address as the kernel wrote it (IPv4 in the first four bytes), canonical.
fn ip_addr(ipv6: bool, bytes: [u8; 16]) -> IpAddr {
    if ipv6 {
        IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

fn decode_net(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let net: NetEvent = read(bytes, "net")?;
    let op = match net.op {
        net_op::CONNECT => NetOp::Connect,
        net_op::ACCEPT => NetOp::Accept,
        net_op::LISTEN => NetOp::Listen,
        net_op::BIND => NetOp::Bind,
        net_op::SEND => NetOp::Send,
        other => return Err(DecodeError::UnknownNetOp(other)),
    };
    let ipv6 = net.family == AF_INET6;
    let addr = |bytes: [u8; 16]| ip_addr(ipv6, bytes);
    let protocol = match (net.protocol, net.header.flags & net_flags::NO_SOCKET) {
        (_, flag) if flag != 0 => None,
        (IPPROTO_TCP, _) => Some(Protocol::Tcp),
        (IPPROTO_UDP, _) => Some(Protocol::Udp),
        _ => None,
    };
    Ok(KernelEvent::Net(NetRecord {
        task: task(&net.header),
        op,
        ret: net.ret,
        ipv6,
        protocol,
        local: addr(net.local_addr),
        local_port: net.local_port,
        peer: addr(net.peer_addr),
        peer_port: net.peer_port,
        blocked: net.header.flags & net_flags::BLOCKED != 0,
    }))
}

fn decode_exec(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let fixed: ExecFixed = read(bytes, "exec")?;
    let data = &bytes[EXEC_FIXED_SIZE..];
    let flags = fixed.header.flags;
    let has = |flag: u32| flags & flag != 0;
    let known = |value: u32| (!has(exec_flags::NO_LOGINUID) && value != u32::MAX).then_some(value);
    Ok(KernelEvent::Exec(ExecRecord {
        task: task(&fixed.header),
        ppid: fixed.ppid,
        loginuid: known(fixed.loginuid),
        sessionid: known(fixed.sessionid),
        tty: has(exec_flags::HAS_TTY).then(|| until_nul(&fixed.tty_name).to_vec()),
        exe: join_path(blob(data, fixed.exe)),
        exe_truncated: has(exec_flags::EXE_TRUNCATED),
        exe_ino: fixed.exe_ino,
        exe_dev: fixed.exe_dev,
        cwd: join_path(blob(data, fixed.cwd)),
        cwd_truncated: has(exec_flags::CWD_TRUNCATED),
        filename: until_nul(blob(data, fixed.filename)).to_vec(),
        interp: until_nul(blob(data, fixed.interp)).to_vec(),
        args: split_args(blob(data, fixed.args)),
        args_truncated: has(exec_flags::ARGS_TRUNCATED),
        exe_origin: ExeOrigin {
            overlay: has(exec_flags::EXE_OVERLAY),
            lower: has(exec_flags::EXE_LOWER),
            upper: has(exec_flags::EXE_UPPER),
            deleted: has(exec_flags::EXE_DELETED),
        },
        host_root: has(exec_flags::HOST_ROOT),
        vpid: fixed.vpid,
        pid_level: fixed.pid_level,
        parent_pid_ns: fixed.parent_pid_ns,
        login_env: blob(data, fixed.env)
            .split(|b| *b == 0)
            .filter(|pair| {
                LOGIN_ENV_VARS.iter().any(|name| {
                    pair.strip_prefix(name.as_bytes())
                        .is_some_and(|rest| rest.starts_with(b"="))
                })
            })
            .map(<[u8]>::to_vec)
            .collect(),
    }))
}

fn decode_file(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let fixed: FileFixed = read(bytes, "file")?;
    let data = &bytes[FILE_FIXED_SIZE..];
    let flags = fixed.header.flags;
    let has = |flag: u32| flags & flag != 0;
    let op = match fixed.op {
        file_op::OPEN_WRITE => FileOp::OpenWrite,
        file_op::TRUNCATE => FileOp::Truncate,
        file_op::RENAME => FileOp::Rename,
        file_op::UNLINK => FileOp::Unlink,
        file_op::CHMOD => FileOp::Chmod,
        file_op::CHOWN => FileOp::Chown,
        file_op::CREATE => FileOp::Create,
        file_op::LINK => FileOp::Link,
        file_op::SCRIPT_READ => FileOp::ScriptRead,
        file_op::MAP_EXEC => FileOp::MapExec,
        other => return Err(DecodeError::UnknownFileOp(other)),
    };
    let file_layer = match fixed.layer {
        layer::NONE => Layer::None,
        layer::LOWER => Layer::Lower,
        layer::UPPER => Layer::Upper,
        _ => Layer::Unknown,
    };
    let path = blob(data, fixed.path);
    let base = blob(data, fixed.base);
    Ok(KernelEvent::File(FileRecord {
        task: task(&fixed.header),
        op,
        layer: file_layer,
        open_flags: fixed.open_flags,
        mode: fixed.mode,
        ino: fixed.ino,
        dev: fixed.dev,
        path: (!path.is_empty()).then(|| join_path(path)),
        base: (fixed.base.len > 0 || has(file_flags::NEEDS_RESULT)).then(|| join_path(base)),
        name: until_nul(blob(data, fixed.name)).to_vec(),
        name2: until_nul(blob(data, fixed.name2)).to_vec(),
        base2: (fixed.base2.len > 0).then(|| join_path(blob(data, fixed.base2))),
        root: (fixed.root.len > 0).then(|| join_path(blob(data, fixed.root))),
        needs_result: has(file_flags::NEEDS_RESULT),
        path_truncated: has(file_flags::PATH_TRUNCATED),
        host_task: has(file_flags::HOST_TASK),
        deleted: has(file_flags::DELETED),
        repeats: fixed.repeats,
    }))
}

fn task(header: &Header) -> Task {
    Task {
        ktime_ns: header.ktime_ns,
        pid: header.pid,
        tid: header.tid,
        uid: header.uid,
        gid: header.gid,
        cgroup_id: header.cgroup_id,
        mnt_ns: header.mnt_ns,
        pid_ns: header.pid_ns,
        comm: until_nul(&header.comm).to_vec(),
    }
}

/// The bytes a blob names, clipped to what was actually received.
fn blob(data: &[u8], blob: Blob) -> &[u8] {
    let start = usize::from(blob.off).min(data.len());
    let end = (start + usize::from(blob.len)).min(data.len());
    &data[start..end]
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

/// `"busybox\0bin\0"` (leaf first) → `/bin/busybox`. No components means the root itself.
pub fn join_path(components: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = components
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .collect();
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut path = Vec::with_capacity(components.len() + 1);
    for part in parts.iter().rev() {
        // A component named "/" is the root of a filesystem that is not mounted in the task's
        // namespace (pipe:, memfd:); it adds nothing to the path.
        if *part != b"/" {
            path.push(b'/');
            path.extend_from_slice(part);
        }
    }
    if path.is_empty() {
        path.push(b'/');
    }
    path
}

/// The argv area is NUL-separated with a trailing NUL; a cut area ends mid-argument.
fn split_args(area: &[u8]) -> Vec<Vec<u8>> {
    let area = area.strip_suffix(&[0]).unwrap_or(area);
    if area.is_empty() {
        return Vec::new();
    }
    area.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn exec_bytes(data: &[u8], exe: Blob, args: Blob, flags: u32) -> Vec<u8> {
        let mut fixed = ExecFixed::default();
        fixed.header.kind = kind::EXEC;
        fixed.header.flags = flags;
        fixed.header.pid = 42;
        fixed.header.comm[..2].copy_from_slice(b"sh");
        fixed.ppid = 7;
        fixed.loginuid = u32::MAX;
        fixed.exe = exe;
        fixed.args = args;
        fixed.tty_name[..4].copy_from_slice(b"pts3");
        // SAFETY: ExecFixed is plain old data.
        let head = unsafe {
            std::slice::from_raw_parts((&fixed as *const ExecFixed).cast::<u8>(), EXEC_FIXED_SIZE)
        };
        [head, data].concat()
    }

    #[test]
    fn exec_with_path_args_and_tty() {
        let data = b"busybox\0bin\0sh\0-c\0echo \xff\n\0";
        let bytes = exec_bytes(
            data,
            Blob { off: 0, len: 12 },
            Blob { off: 12, len: 16 },
            exec_flags::HAS_TTY,
        );
        let KernelEvent::Exec(exec) = decode(&bytes).unwrap() else {
            panic!("not an exec");
        };
        assert_eq!(exec.exe, b"/bin/busybox");
        assert_eq!(
            exec.args,
            vec![b"sh".to_vec(), b"-c".to_vec(), b"echo \xff\n".to_vec()]
        );
        assert_eq!(exec.tty.as_deref(), Some(&b"pts3"[..]));
        assert_eq!(exec.loginuid, None);
        assert_eq!(exec.cwd, b"/");
        assert_eq!(exec.task.comm, b"sh");
        assert!(!exec.args_truncated);
    }

    #[test]
    fn blobs_past_the_end_are_clipped_not_panicking() {
        let bytes = exec_bytes(
            b"ab",
            Blob { off: 1, len: 500 },
            Blob { off: 900, len: 9 },
            0,
        );
        let KernelEvent::Exec(exec) = decode(&bytes).unwrap() else {
            panic!("not an exec");
        };
        assert_eq!(exec.exe, b"/b");
        assert!(exec.args.is_empty());
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        assert!(matches!(decode(&[1, 0, 0]), Err(DecodeError::Short { .. })));
        let mut header = Header {
            kind: 999,
            ..Header::default()
        };
        // SAFETY: Header is plain old data.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (&mut header as *mut Header).cast::<u8>(),
                std::mem::size_of::<Header>(),
            )
        };
        assert_eq!(decode(bytes), Err(DecodeError::UnknownKind(999)));
        let short_exec = exec_bytes(b"", Blob::default(), Blob::default(), 0);
        assert!(decode(&short_exec[..EXEC_FIXED_SIZE - 1]).is_err());
    }

    #[test]
    fn join_path_handles_root_and_pseudo_roots() {
        assert_eq!(join_path(b""), b"/");
        assert_eq!(join_path(b"tmp\0"), b"/tmp");
        assert_eq!(join_path(b"memfd:x (deleted)\0/\0"), b"/memfd:x (deleted)");
    }
}
