//! DNS over UDP, for name-based allow entries, read from the packets by two `cgroup_skb`
//! programs on the root of the cgroup v2 tree; both only look and never drop a packet.
//!
//! - `dns_answers` (ingress) sees every datagram a socket receives, whatever call reads it
//!   (busybox reads answers with `read()`, which no cheap syscall hook could cover), and copies
//!   datagrams from port 53 with their addresses, ports and the interface they came in on.
//! - `dns_queries` (egress) copies what container sockets send to port 53, UDP datagrams and TCP
//!   segments alike, with their addresses and ports: an answer teaches the daemon something only
//!   when it matches one of these queries, so a container cannot forge answers nobody asked for.
//!
//! TCP answers come from the `recvfrom`/`recvmsg` hooks in `net` (a stream needs the socket).
use aya_ebpf::{
    helpers::{bpf_ktime_get_boot_ns, generated as gen},
    macros::cgroup_skb,
    programs::SkBuffContext,
};
use sealwatch_abi::{
    dns_dir, kind, lane, programs, DnsEvent, AF_INET, AF_INET6, DNS_MAX, IPPROTO_TCP, IPPROTO_UDP,
};

use crate::emit::{paced_wakeup, submit, WAKEUP};

/// Let the packet through: these programs only look.
const PASS: i32 = 1;
const DNS_PORT: u16 = 53;
const UDP_HEADER: usize = 8;
const IPV6_HEADER: usize = 40;

abi_name!(dns_answers, programs::dns::DNS_ANSWERS);
#[cgroup_skb(ingress)]
pub fn dns_answers(ctx: SkBuffContext) -> i32 {
    let _ = try_dns_answers(&ctx);
    PASS
}

abi_name!(dns_queries, programs::dns::DNS_QUERIES);
#[cgroup_skb(egress)]
pub fn dns_queries(ctx: SkBuffContext) -> i32 {
    let _ = try_dns_queries(&ctx);
    PASS
}

/// What the IP header says: family, transport protocol and where the transport header starts.
/// Addresses are read later, only for packets to or from port 53: every packet of the node
/// passes through here.
struct Ip {
    family: u16,
    protocol: u16,
    l4: usize,
}

#[inline(always)]
fn ip_header(ctx: &SkBuffContext) -> Result<Ip, i64> {
    // cgroup_skb data starts at the network header.
    let first: u8 = ctx.load(0)?;
    match first >> 4 {
        4 => {
            let protocol: u8 = ctx.load(9)?;
            Ok(Ip {
                family: AF_INET,
                protocol: u16::from(protocol),
                l4: usize::from(first & 0x0f) * 4,
            })
        }
        6 => {
            // Extension headers are not followed: resolvers and stub resolvers do not send them.
            let next: u8 = ctx.load(6)?;
            Ok(Ip {
                family: AF_INET6,
                protocol: u16::from(next),
                l4: IPV6_HEADER,
            })
        }
        _ => Err(0),
    }
}

/// (source, destination) addresses of the packet; IPv4 in the first four bytes.
#[inline(always)]
fn addresses(ctx: &SkBuffContext, ip: &Ip) -> Result<([u8; 16], [u8; 16]), i64> {
    if ip.family == AF_INET6 {
        return Ok((ctx.load(8)?, ctx.load(24)?));
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src[..4].copy_from_slice(&ctx.load::<[u8; 4]>(12)?);
    dst[..4].copy_from_slice(&ctx.load::<[u8; 4]>(16)?);
    Ok((src, dst))
}

#[inline(always)]
fn try_dns_answers(ctx: &SkBuffContext) -> Result<(), i64> {
    let ip = ip_header(ctx)?;
    if ip.protocol != IPPROTO_UDP {
        return Ok(());
    }
    let sport = u16::from_be(ctx.load::<u16>(ip.l4)?);
    if sport != DNS_PORT {
        return Ok(());
    }
    let dport = u16::from_be(ctx.load::<u16>(ip.l4 + 2)?);
    let (src, dst) = addresses(ctx, &ip)?;
    // SAFETY: `ctx.skb.skb` is the program's context, readable for cgroup_skb programs.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let packet = Packet {
        payload: ip.l4 + UDP_HEADER,
        local: (dst, dport),
        peer: (src, sport),
        ifindex,
        direction: dns_dir::ANSWER,
    };
    // An answer enables a connection right after it: wake the daemon now.
    emit(ctx, &ip, &packet, WAKEUP)
}

#[inline(always)]
fn try_dns_queries(ctx: &SkBuffContext) -> Result<(), i64> {
    let ip = ip_header(ctx)?;
    if ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_TCP {
        return Ok(());
    }
    // UDP and TCP headers both start with the source and destination ports.
    let dport = u16::from_be(ctx.load::<u16>(ip.l4 + 2)?);
    if dport != DNS_PORT {
        return Ok(());
    }
    let payload = if ip.protocol == IPPROTO_UDP {
        ip.l4 + UDP_HEADER
    } else {
        // Data offset: the high nibble of byte 12, in 32-bit words.
        let offset: u8 = ctx.load(ip.l4 + 12)?;
        ip.l4 + usize::from(offset >> 4) * 4
    };
    let sport = u16::from_be(ctx.load::<u16>(ip.l4)?);
    let (src, dst) = addresses(ctx, &ip)?;
    let packet = Packet {
        payload,
        local: (src, sport),
        peer: (dst, dport),
        ifindex: 0,
        direction: dns_dir::QUERY,
    };
    // The answer that follows wakes the daemon; the query is ahead of it in the same ring.
    emit(ctx, &ip, &packet, paced_wakeup(lane::CRITICAL))
}

/// Where a message sits in the packet and which way it went.
struct Packet {
    payload: usize,
    local: ([u8; 16], u16),
    peer: ([u8; 16], u16),
    ifindex: u32,
    direction: u32,
}

#[inline(always)]
fn emit(ctx: &SkBuffContext, ip: &Ip, packet: &Packet, wakeup: u64) -> Result<(), i64> {
    let len = ctx.len().saturating_sub(packet.payload as u32);
    if len == 0 {
        // A bare TCP segment (handshake, acknowledgement): nothing to read.
        return Ok(());
    }
    // SAFETY: `ctx.skb` is the program's context; the helper only reads it.
    let cgroup_id = unsafe { gen::bpf_skb_cgroup_id(ctx.skb.skb) };
    if !crate::budget::within_budget(cgroup_id, sealwatch_abi::budget::NETWORK) {
        return Ok(());
    }
    submit::<DnsEvent>(lane::CRITICAL, wakeup, |record| {
        record.header.kind = kind::DNS;
        // SAFETY: plain helper without arguments.
        record.header.ktime_ns = unsafe { bpf_ktime_get_boot_ns() };
        // Softirq or another task's context: the socket's cgroup names the container.
        record.header.cgroup_id = cgroup_id;
        record.len = len;
        record.protocol = ip.protocol;
        record.family = ip.family;
        record.direction = packet.direction;
        record.ifindex = packet.ifindex;
        (record.local_addr, record.local_port) = packet.local;
        (record.peer_addr, record.peer_port) = packet.peer;
        // 1..=DNS_MAX in a form the verifier can follow (the helper refuses a length of 0).
        let wanted = len.min(DNS_MAX as u32);
        let n = ((wanted.wrapping_sub(1)) & (DNS_MAX as u32 - 1)) + 1;
        // SAFETY: `n` is at most the size of `data`; the helper bounds-checks the packet.
        let ret = unsafe {
            gen::bpf_skb_load_bytes(
                ctx.skb.skb.cast(),
                packet.payload as u32,
                record.data.as_mut_ptr().cast(),
                n,
            )
        };
        if ret != 0 {
            return Err(ret);
        }
        record.captured = n;
        Ok(())
    });
    Ok(())
}
