//! Network: connects, accepts, listeners and the first datagram to each UDP peer of container
//! tasks, plus DNS answers they receive over TCP (UDP answers: see `dns`).
//!
//! Syscall tracepoints, because kprobes and fentry are not available everywhere (PLATFORM.md):
//! the entry stashes the user's socket address, the exit reads the socket (local address,
//! protocol) and reports the result. Host tasks return after the container check.
use aya_ebpf::{
    helpers::{bpf_probe_read_user, generated as gen},
    macros::tracepoint,
    programs::TracePointContext,
};
use sealwatch_abi::{
    dns_dir, kind, lane, net_flags, net_op, programs, DnsEvent, NetEvent, AF_INET, AF_INET6,
    DNS_MAX, IPPROTO_TCP, IPPROTO_UDP,
};

use crate::{
    emit::{paced_wakeup, submit, WAKEUP},
    kernel::{
        fd_file, fill_header, in_container_cgroup, is_self, read, read_ptr, task_in_container, Ptr,
    },
    maps::{
        config, NetStash, UdpPeer, UringPeer, BLOCKED_TASKS, NET_STASH, UDP_PEERS, URING_PEERS,
    },
    syscall::{ctx_arg, ctx_ret, current_task, tid},
};

/// A receive that may carry a DNS answer (internal stash op, never sent).
const OP_DNS_RECV: u32 = 100;
const DNS_PORT: u16 = 53;
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const EPERM: i64 = 1;

/// The socket's `struct sock *` behind `fd`, if `fd` is a socket.
#[inline(always)]
fn sock_of(task: Ptr, fd: u64) -> Result<Ptr, i64> {
    let file = fd_file(task, fd)?;
    let inode = read_ptr(file, config!(offsets.file_f_inode))?;
    if read::<u16>(inode, config!(offsets.inode_i_mode))? & S_IFMT != S_IFSOCK {
        return Err(-1);
    }
    let socket = read_ptr(file, config!(offsets.file_private_data))?;
    read_ptr(socket, config!(offsets.socket_sk))
}

#[inline(always)]
fn sock_protocol(sk: Ptr) -> u16 {
    read::<u16>(sk, config!(offsets.sock_protocol)).unwrap_or(0)
}

/// Family, port (host order) and address of a user `sockaddr_in`/`sockaddr_in6`.
#[inline(always)]
fn read_sockaddr(ptr: u64) -> Result<(u16, u16, [u8; 16]), i64> {
    // SAFETY: user memory through the checked helper.
    let family = unsafe { bpf_probe_read_user(ptr as *const u16) }.map_err(i64::from)?;
    let mut addr = [0u8; 16];
    match family {
        AF_INET => {
            // sockaddr_in: family, port, 4-byte address.
            let sin = unsafe { bpf_probe_read_user(ptr as *const [u8; 8]) }.map_err(i64::from)?;
            addr[..4].copy_from_slice(&sin[4..8]);
            Ok((family, u16::from_be_bytes([sin[2], sin[3]]), addr))
        }
        AF_INET6 => {
            // sockaddr_in6: family, port, flowinfo, 16-byte address.
            let sin6 = unsafe { bpf_probe_read_user(ptr as *const [u8; 24]) }.map_err(i64::from)?;
            addr.copy_from_slice(&sin6[8..24]);
            Ok((family, u16::from_be_bytes([sin6[2], sin6[3]]), addr))
        }
        _ => Err(-1),
    }
}

/// Reads the socket's own end into the record (and its peer, when `peer_from_sock`).
#[inline(always)]
fn fill_from_sock(record: &mut NetEvent, sk: Ptr, peer_from_sock: bool) -> Result<(), i64> {
    let family = read::<u16>(sk, config!(offsets.skc_family))?;
    record.protocol = sock_protocol(sk);
    record.local_port = read::<u16>(sk, config!(offsets.skc_num))?;
    if family == AF_INET {
        record.local_addr[..4]
            .copy_from_slice(&read::<[u8; 4]>(sk, config!(offsets.skc_rcv_saddr))?);
    } else {
        record.local_addr = read::<[u8; 16]>(sk, config!(offsets.skc_v6_rcv_saddr))?;
    }
    if peer_from_sock {
        record.family = family;
        record.peer_port = u16::from_be(read::<u16>(sk, config!(offsets.skc_dport))?);
        if family == AF_INET {
            record.peer_addr[..4]
                .copy_from_slice(&read::<[u8; 4]>(sk, config!(offsets.skc_daddr))?);
        } else {
            record.peer_addr = read::<[u8; 16]>(sk, config!(offsets.skc_v6_daddr))?;
        }
    }
    Ok(())
}

/// A TCP answer's two ends, from its socket: the container's (local) and the server's (peer).
#[inline(always)]
fn fill_dns_ends(record: &mut DnsEvent, sk: Ptr) -> Result<(), i64> {
    record.local_port = read::<u16>(sk, config!(offsets.skc_num))?;
    record.peer_port = u16::from_be(read::<u16>(sk, config!(offsets.skc_dport))?);
    if record.family == AF_INET {
        record.local_addr[..4]
            .copy_from_slice(&read::<[u8; 4]>(sk, config!(offsets.skc_rcv_saddr))?);
        record.peer_addr[..4].copy_from_slice(&read::<[u8; 4]>(sk, config!(offsets.skc_daddr))?);
    } else {
        record.local_addr = read::<[u8; 16]>(sk, config!(offsets.skc_v6_rcv_saddr))?;
        record.peer_addr = read::<[u8; 16]>(sk, config!(offsets.skc_v6_daddr))?;
    }
    Ok(())
}

/// The calling thread, when it is a container task other than the daemon: its root is on
/// overlayfs, or it is in a container's cgroup (a `chroot` does not leave the container).
#[inline(always)]
fn container_task() -> Option<(u64, Ptr)> {
    let (pid_tgid, task) = other_task()?;
    (task_in_container(task) || in_container_cgroup()).then_some((pid_tgid, task))
}

/// The calling thread, when its root is on overlayfs, without the cgroup look-up of
/// [`container_task`]: receives ask this. They are the host's most frequent network syscalls,
/// and a chrooted process's DNS answer left unseen teaches nothing, so it widens no allowlist.
#[inline(always)]
fn overlay_root_task() -> Option<(u64, Ptr)> {
    let (pid_tgid, task) = other_task()?;
    task_in_container(task).then_some((pid_tgid, task))
}

/// The calling thread and its task, unless it is the daemon.
#[inline(always)]
fn other_task() -> Option<(u64, Ptr)> {
    let pid_tgid = tid();
    if is_self((pid_tgid >> 32) as u32) {
        return None;
    }
    Some((pid_tgid, current_task()))
}

/// Whether the block programs denied this thread's last connect/send (and forgets it).
#[inline(always)]
fn take_blocked(pid_tgid: u64, ret: i64) -> bool {
    // SAFETY: only presence is checked.
    if unsafe { BLOCKED_TASKS.get(pid_tgid) }.is_none() {
        return false;
    }
    let _ = BLOCKED_TASKS.remove(pid_tgid);
    ret == -EPERM
}

#[inline(always)]
fn take_stash(pid_tgid: u64) -> Option<NetStash> {
    // SAFETY: the value is copied out before the entry is removed.
    let stash = unsafe { NET_STASH.get(pid_tgid) }.copied()?;
    let _ = NET_STASH.remove(pid_tgid);
    Some(stash)
}

// ---- connect -------------------------------------------------------------------------------

abi_name!(sys_enter_connect, programs::net::SYS_ENTER_CONNECT);
#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let _ = enter_with_addr(&ctx, net_op::CONNECT);
    0
}

abi_name!(sys_exit_connect, programs::net::SYS_EXIT_CONNECT);
#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    let _ = exit_with_addr(&ctx);
    0
}

abi_name!(sys_enter_bind, programs::net::SYS_ENTER_BIND);
#[tracepoint(category = "syscalls", name = "sys_enter_bind")]
pub fn sys_enter_bind(ctx: TracePointContext) -> u32 {
    let _ = enter_with_addr(&ctx, net_op::BIND);
    0
}

abi_name!(sys_exit_bind, programs::net::SYS_EXIT_BIND);
#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    let _ = exit_with_addr(&ctx);
    0
}

/// connect(fd, addr, len) and bind(fd, addr, len): stash the address for the exit.
#[inline(always)]
fn enter_with_addr(ctx: &TracePointContext, op: u32) -> Result<(), i64> {
    let Some((pid_tgid, _)) = container_task() else {
        return Ok(());
    };
    let fd = ctx_arg::<u64>(ctx, 0)?;
    let (family, port, addr) = read_sockaddr(ctx_arg::<u64>(ctx, 1)?)?;
    // Binding port 0 (an ephemeral port) is no listener.
    if op == net_op::BIND && port == 0 {
        return Ok(());
    }
    let stash = NetStash {
        op,
        fd: fd as u32,
        family,
        port,
        protocol: 0,
        _pad: 0,
        addr,
        ptr: 0,
    };
    let _ = NET_STASH.insert(pid_tgid, stash, 0);
    Ok(())
}

#[inline(always)]
fn exit_with_addr(ctx: &TracePointContext) -> Result<(), i64> {
    let pid_tgid = tid();
    let Some(stash) = take_stash(pid_tgid) else {
        return Ok(());
    };
    let ret = ctx_ret(ctx);
    let blocked = take_blocked(pid_tgid, ret);
    // A failed bind is no listener; a failed connect is still an attempt worth reporting.
    if stash.op == net_op::BIND && ret != 0 {
        return Ok(());
    }
    let task = current_task();
    let sk = sock_of(task, u64::from(stash.fd))?;
    let protocol = sock_protocol(sk);
    if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
        return Ok(());
    }
    // A TCP bind is followed by listen(), which is what gets reported.
    if stash.op == net_op::BIND && protocol != IPPROTO_UDP {
        return Ok(());
    }
    // A UDP socket's connect() to a peer it already sent to (or its sends after connecting) is
    // the same flow: one line per socket and peer.
    if stash.op == net_op::CONNECT && protocol == IPPROTO_UDP && !blocked {
        let peer = UdpPeer {
            sk: sk as u64,
            addr: stash.addr,
            port: stash.port,
            _pad: [0; 6],
        };
        // SAFETY: only presence is checked.
        if unsafe { UDP_PEERS.get(peer) }.is_some() {
            return Ok(());
        }
        let _ = UDP_PEERS.insert(peer, 1, 0);
    }
    report(task, &stash, ret, blocked, sk);
    Ok(())
}

/// Whether the current cgroup may send one more network record (see `budget`).
#[inline(always)]
fn within_network_budget() -> bool {
    // SAFETY: helper without arguments.
    let cgroup_id = unsafe { aya_ebpf::helpers::bpf_get_current_cgroup_id() };
    crate::budget::within_budget(cgroup_id, sealwatch_abi::budget::NETWORK)
}

/// An io_uring connect on the socket behind `file` completed with `ret`: reported like the
/// syscall's exit, both ends read from the socket (the request's address copy is not kept).
/// The block programs ran in this thread's context (the submitter's, or the io-wq worker that
/// issued it): their mark is taken here, so that it says `blocked` on this record and not on
/// the thread's next connect syscall.
#[inline(always)]
pub fn report_uring_connect(req: Ptr, file: Ptr, ret: i64) -> Result<(), i64> {
    // SAFETY: the value is copied out before the entry is removed.
    let requested = unsafe { URING_PEERS.get(req as u64) }.copied();
    let _ = URING_PEERS.remove(req as u64);
    let Some((pid_tgid, task)) = container_task() else {
        return Ok(());
    };
    let blocked = take_blocked(pid_tgid, ret);
    let inode = read_ptr(file, config!(offsets.file_f_inode))?;
    if read::<u16>(inode, config!(offsets.inode_i_mode))? & S_IFMT != S_IFSOCK {
        return Ok(());
    }
    let sk = read_ptr(
        read_ptr(file, config!(offsets.file_private_data))?,
        config!(offsets.socket_sk),
    )?;
    let family = read::<u16>(sk, config!(offsets.skc_family))?;
    if family != AF_INET && family != AF_INET6 || !within_network_budget() {
        return Ok(());
    }
    submit::<NetEvent>(lane::CRITICAL, paced_wakeup(lane::CRITICAL), |record| {
        fill_header(&mut record.header, kind::NET, task);
        record.header.flags = if blocked { net_flags::BLOCKED } else { 0 };
        record.op = net_op::CONNECT;
        record.ret = ret as i32;
        fill_from_sock(record, sk, true)?;
        // A connect that was denied (or failed before it began) never set the socket's peer:
        // it is the address the request asked for, kept at submission.
        if record.peer_port == 0 {
            if let Some(peer) = requested {
                record.peer_port = peer.port;
                record.peer_addr = peer.addr;
            }
        }
        Ok(())
    });
    Ok(())
}

/// At submission of a connect request `req`: keeps the address it asks for. Read in the
/// submitting task (its memory is the caller's) right after the kernel copied the same bytes
/// while preparing the request; a denied connect never puts it on the socket.
#[inline(always)]
pub fn note_uring_connect(req: Ptr) -> Result<(), i64> {
    let at = config!(offsets.io_connect_addr);
    if at == 0 {
        return Ok(());
    }
    let addr = read::<u64>(req, at)?;
    // `struct sockaddr_in6` covers `sockaddr_in`: family, port (network order), then the
    // IPv4 address, or the IPv6 one after 4 bytes of flow information.
    // SAFETY: user pointer read through the checked helper.
    let sockaddr = unsafe { bpf_probe_read_user(addr as *const [u8; 24]) }?;
    let family = u16::from_ne_bytes([sockaddr[0], sockaddr[1]]);
    let mut peer = UringPeer {
        port: u16::from_be_bytes([sockaddr[2], sockaddr[3]]),
        _pad: [0; 6],
        addr: [0; 16],
    };
    if family == AF_INET {
        peer.addr[..4].copy_from_slice(&sockaddr[4..8]);
    } else if family == AF_INET6 {
        peer.addr.copy_from_slice(&sockaddr[8..24]);
    } else {
        return Ok(());
    }
    let _ = URING_PEERS.insert(req as u64, peer, 0);
    Ok(())
}

/// Sends a record for a stashed operation: peer from the stash, own end from the socket.
#[inline(always)]
fn report(task: Ptr, stash: &NetStash, ret: i64, blocked: bool, sk: Ptr) {
    if !within_network_budget() {
        return;
    }
    submit::<NetEvent>(lane::CRITICAL, paced_wakeup(lane::CRITICAL), |record| {
        fill_header(&mut record.header, kind::NET, task);
        record.header.flags = if blocked { net_flags::BLOCKED } else { 0 };
        record.op = stash.op;
        record.ret = ret as i32;
        record.family = stash.family;
        if fill_from_sock(record, sk, false).is_err() {
            record.header.flags |= net_flags::NO_SOCKET;
        }
        if stash.op != net_op::BIND {
            record.peer_port = stash.port;
            record.peer_addr = stash.addr;
        }
        Ok(())
    });
}

// ---- accept, listen ------------------------------------------------------------------------

abi_name!(sys_exit_accept, programs::net::SYS_EXIT_ACCEPT);
#[tracepoint(category = "syscalls", name = "sys_exit_accept")]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let _ = exit_accept(&ctx);
    0
}

abi_name!(sys_exit_accept4, programs::net::SYS_EXIT_ACCEPT4);
#[tracepoint(category = "syscalls", name = "sys_exit_accept4")]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    let _ = exit_accept(&ctx);
    0
}

/// The new descriptor's socket holds both ends of the accepted connection.
#[inline(always)]
fn exit_accept(ctx: &TracePointContext) -> Result<(), i64> {
    let fd = ctx_ret(ctx);
    if fd < 0 {
        return Ok(());
    }
    let Some((_, task)) = container_task() else {
        return Ok(());
    };
    let sk = sock_of(task, fd as u64)?;
    let family = read::<u16>(sk, config!(offsets.skc_family))?;
    if family != AF_INET && family != AF_INET6 {
        return Ok(());
    }
    if !within_network_budget() {
        return Ok(());
    }
    submit::<NetEvent>(lane::CRITICAL, paced_wakeup(lane::CRITICAL), |record| {
        fill_header(&mut record.header, kind::NET, task);
        record.op = net_op::ACCEPT;
        record.ret = fd as i32;
        fill_from_sock(record, sk, true)
    });
    Ok(())
}

abi_name!(sys_enter_listen, programs::net::SYS_ENTER_LISTEN);
#[tracepoint(category = "syscalls", name = "sys_enter_listen")]
pub fn sys_enter_listen(ctx: TracePointContext) -> u32 {
    if let (Some((pid_tgid, _)), Ok(fd)) = (container_task(), ctx_arg::<u64>(&ctx, 0)) {
        let stash = NetStash {
            op: net_op::LISTEN,
            fd: fd as u32,
            family: 0,
            port: 0,
            protocol: 0,
            _pad: 0,
            addr: [0; 16],
            ptr: 0,
        };
        let _ = NET_STASH.insert(pid_tgid, stash, 0);
    }
    0
}

abi_name!(sys_exit_listen, programs::net::SYS_EXIT_LISTEN);
#[tracepoint(category = "syscalls", name = "sys_exit_listen")]
pub fn sys_exit_listen(ctx: TracePointContext) -> u32 {
    let _ = exit_listen(&ctx);
    0
}

#[inline(always)]
fn exit_listen(ctx: &TracePointContext) -> Result<(), i64> {
    let Some(stash) = take_stash(tid()) else {
        return Ok(());
    };
    if ctx_ret(ctx) != 0 {
        return Ok(());
    }
    let task = current_task();
    let sk = sock_of(task, u64::from(stash.fd))?;
    let family = read::<u16>(sk, config!(offsets.skc_family))?;
    if family != AF_INET && family != AF_INET6 {
        return Ok(());
    }
    if !within_network_budget() {
        return Ok(());
    }
    submit::<NetEvent>(lane::CRITICAL, paced_wakeup(lane::CRITICAL), |record| {
        fill_header(&mut record.header, kind::NET, task);
        record.op = net_op::LISTEN;
        record.family = family;
        fill_from_sock(record, sk, false)
    });
    Ok(())
}

// ---- UDP: the first datagram to each peer ----------------------------------------------------

abi_name!(sys_enter_sendto, programs::net::SYS_ENTER_SENDTO);
#[tracepoint(category = "syscalls", name = "sys_enter_sendto")]
pub fn sys_enter_sendto(ctx: TracePointContext) -> u32 {
    // sendto(fd, buf, len, flags, addr, addrlen): without an address it is a connected send.
    if let (Ok(fd), Ok(addr)) = (ctx_arg::<u64>(&ctx, 0), ctx_arg::<u64>(&ctx, 4)) {
        if addr != 0 {
            let _ = enter_send(fd, addr);
        }
    }
    0
}

abi_name!(sys_enter_sendmsg, programs::net::SYS_ENTER_SENDMSG);
#[tracepoint(category = "syscalls", name = "sys_enter_sendmsg")]
pub fn sys_enter_sendmsg(ctx: TracePointContext) -> u32 {
    // sendmsg(fd, msg, flags); struct msghdr starts with msg_name.
    if let (Ok(fd), Ok(msg)) = (ctx_arg::<u64>(&ctx, 0), ctx_arg::<u64>(&ctx, 1)) {
        // SAFETY: user memory through the checked helper.
        if let Ok(name) = unsafe { bpf_probe_read_user(msg as *const u64) } {
            if name != 0 {
                let _ = enter_send(fd, name);
            }
        }
    }
    0
}

abi_name!(sys_exit_sendto, programs::net::SYS_EXIT_SENDTO);
#[tracepoint(category = "syscalls", name = "sys_exit_sendto")]
pub fn sys_exit_sendto(ctx: TracePointContext) -> u32 {
    exit_send(&ctx);
    0
}

abi_name!(sys_exit_sendmsg, programs::net::SYS_EXIT_SENDMSG);
#[tracepoint(category = "syscalls", name = "sys_exit_sendmsg")]
pub fn sys_exit_sendmsg(ctx: TracePointContext) -> u32 {
    exit_send(&ctx);
    0
}

#[inline(always)]
fn enter_send(fd: u64, addr_ptr: u64) -> Result<(), i64> {
    let Some((pid_tgid, task)) = container_task() else {
        return Ok(());
    };
    let sk = sock_of(task, fd)?;
    if sock_protocol(sk) != IPPROTO_UDP {
        return Ok(());
    }
    let (family, port, addr) = read_sockaddr(addr_ptr)?;
    let peer = UdpPeer {
        sk: sk as u64,
        addr,
        port,
        _pad: [0; 6],
    };
    // SAFETY: only presence is checked.
    if unsafe { UDP_PEERS.get(peer) }.is_some() {
        return Ok(());
    }
    let stash = NetStash {
        op: net_op::SEND,
        fd: fd as u32,
        family,
        port,
        protocol: IPPROTO_UDP,
        _pad: 0,
        addr,
        ptr: sk as u64,
    };
    let _ = NET_STASH.insert(pid_tgid, stash, 0);
    Ok(())
}

#[inline(always)]
fn exit_send(ctx: &TracePointContext) {
    let pid_tgid = tid();
    let Some(stash) = take_stash(pid_tgid) else {
        return;
    };
    let ret = ctx_ret(ctx);
    let blocked = take_blocked(pid_tgid, ret);
    // Every blocked datagram is reported; otherwise only the first one to this peer.
    if !blocked {
        let peer = UdpPeer {
            sk: stash.ptr,
            addr: stash.addr,
            port: stash.port,
            _pad: [0; 6],
        };
        let _ = UDP_PEERS.insert(peer, 1, 0);
    }
    report(current_task(), &stash, ret, blocked, stash.ptr as Ptr);
}

// ---- DNS answers -----------------------------------------------------------------------------

abi_name!(sys_enter_recvfrom, programs::net::SYS_ENTER_RECVFROM);
#[tracepoint(category = "syscalls", name = "sys_enter_recvfrom")]
pub fn sys_enter_recvfrom(ctx: TracePointContext) -> u32 {
    // recvfrom(fd, buf, size, flags, addr, addrlen)
    if let (Ok(fd), Ok(buf)) = (ctx_arg::<u64>(&ctx, 0), ctx_arg::<u64>(&ctx, 1)) {
        let _ = enter_recv(fd, buf);
    }
    0
}

abi_name!(sys_enter_recvmsg, programs::net::SYS_ENTER_RECVMSG);
#[tracepoint(category = "syscalls", name = "sys_enter_recvmsg")]
pub fn sys_enter_recvmsg(ctx: TracePointContext) -> u32 {
    // recvmsg(fd, msg, flags): the answer lands in msg->msg_iov[0].
    if let (Ok(fd), Ok(msg)) = (ctx_arg::<u64>(&ctx, 0), ctx_arg::<u64>(&ctx, 1)) {
        // struct msghdr { void *name; int namelen; struct iovec *iov; ... }
        // SAFETY: user memory through the checked helper.
        let iov = unsafe { bpf_probe_read_user((msg + 16) as *const u64) };
        if let Ok(iov) = iov {
            // SAFETY: as above; struct iovec starts with iov_base.
            if let Ok(buf) = unsafe { bpf_probe_read_user(iov as *const u64) } {
                let _ = enter_recv(fd, buf);
            }
        }
    }
    0
}

abi_name!(sys_exit_recvfrom, programs::net::SYS_EXIT_RECVFROM);
#[tracepoint(category = "syscalls", name = "sys_exit_recvfrom")]
pub fn sys_exit_recvfrom(ctx: TracePointContext) -> u32 {
    exit_recv(&ctx);
    0
}

abi_name!(sys_exit_recvmsg, programs::net::SYS_EXIT_RECVMSG);
#[tracepoint(category = "syscalls", name = "sys_exit_recvmsg")]
pub fn sys_exit_recvmsg(ctx: TracePointContext) -> u32 {
    exit_recv(&ctx);
    0
}

/// Stashes the buffer of a receive on a socket that talks to port 53.
#[inline(always)]
fn enter_recv(fd: u64, buf: u64) -> Result<(), i64> {
    let Some((pid_tgid, task)) = overlay_root_task() else {
        return Ok(());
    };
    let sk = sock_of(task, fd)?;
    // UDP answers are taken from the packets (see `dns`), whatever call reads them.
    let protocol = sock_protocol(sk);
    if protocol != IPPROTO_TCP {
        return Ok(());
    }
    let dport = u16::from_be(read::<u16>(sk, config!(offsets.skc_dport))?);
    if dport != DNS_PORT {
        return Ok(());
    }
    let family = read::<u16>(sk, config!(offsets.skc_family)).unwrap_or(0);
    let stash = NetStash {
        op: OP_DNS_RECV,
        fd: fd as u32,
        family,
        port: dport,
        protocol,
        _pad: 0,
        addr: [0; 16],
        ptr: buf,
    };
    let _ = NET_STASH.insert(pid_tgid, stash, 0);
    Ok(())
}

#[inline(always)]
fn exit_recv(ctx: &TracePointContext) {
    let Some(stash) = take_stash(tid()) else {
        return;
    };
    let ret = ctx_ret(ctx);
    if stash.op != OP_DNS_RECV || ret <= 0 {
        return;
    }
    let task = current_task();
    if !within_network_budget() {
        return;
    }
    // The socket again, for the addresses and ports the daemon matches against the query.
    let Ok(sk) = sock_of(task, u64::from(stash.fd)) else {
        return;
    };
    submit::<DnsEvent>(lane::CRITICAL, WAKEUP, |record| {
        fill_header(&mut record.header, kind::DNS, task);
        record.len = ret as u32;
        record.protocol = stash.protocol;
        record.family = stash.family;
        record.direction = dns_dir::ANSWER;
        fill_dns_ends(record, sk)?;
        let mut n = ret as u32;
        if n > DNS_MAX as u32 {
            n = DNS_MAX as u32;
        }
        // SAFETY: `n` is at most the size of `data`; the helper checks the user address.
        let copied = unsafe {
            gen::bpf_probe_read_user(record.data.as_mut_ptr().cast(), n, stash.ptr as *const _)
        };
        if copied != 0 {
            return Err(copied);
        }
        record.captured = n;
        Ok(())
    });
}
