//! DNS answers over UDP, for name-based allow entries: a `cgroup_skb/ingress` program on the
//! root of the cgroup v2 tree sees every datagram a socket receives, whatever call reads it
//! (busybox reads answers with `read()`, which no cheap syscall hook could cover). It copies the
//! payload of datagrams from port 53 and never drops a packet. TCP answers come from the
//! `recvfrom`/`recvmsg` hooks in `net`.
use aya_ebpf::{
    helpers::{bpf_ktime_get_boot_ns, generated as gen},
    macros::cgroup_skb,
    programs::SkBuffContext,
};
use sealwatch_abi::{kind, lane, programs, DnsEvent, AF_INET, AF_INET6, DNS_MAX, IPPROTO_UDP};

use crate::emit::{submit, WAKEUP};

/// Let the packet through: this program only looks.
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

#[inline(always)]
fn try_dns_answers(ctx: &SkBuffContext) -> Result<(), i64> {
    // cgroup_skb data starts at the network header.
    let first: u8 = ctx.load(0)?;
    let (family, udp_off) = match first >> 4 {
        4 => {
            let protocol: u8 = ctx.load(9)?;
            if u16::from(protocol) != IPPROTO_UDP {
                return Ok(());
            }
            (AF_INET, usize::from(first & 0x0f) * 4)
        }
        6 => {
            // Extension headers are not followed: resolvers' answers do not carry them.
            let next: u8 = ctx.load(6)?;
            if u16::from(next) != IPPROTO_UDP {
                return Ok(());
            }
            (AF_INET6, IPV6_HEADER)
        }
        _ => return Ok(()),
    };
    let sport: u16 = ctx.load(udp_off)?;
    if u16::from_be(sport) != DNS_PORT {
        return Ok(());
    }
    let payload = udp_off + UDP_HEADER;
    let len = ctx.len().saturating_sub(payload as u32);
    if len == 0 {
        return Ok(());
    }
    // SAFETY: `ctx.skb` is the program's context; the helper only reads it.
    let cgroup_id = unsafe { gen::bpf_skb_cgroup_id(ctx.skb.skb) };
    if !crate::budget::within_budget(cgroup_id, sealwatch_abi::budget::NETWORK) {
        return Ok(());
    }
    submit::<DnsEvent>(lane::CRITICAL, WAKEUP, |record| {
        record.header.kind = kind::DNS;
        // SAFETY: plain helper without arguments.
        record.header.ktime_ns = unsafe { bpf_ktime_get_boot_ns() };
        // Softirq context: no task. The socket's cgroup names the container.
        record.header.cgroup_id = cgroup_id;
        record.len = len;
        record.protocol = IPPROTO_UDP;
        record.family = family;
        // 1..=DNS_MAX in a form the verifier can follow (the helper refuses a length of 0).
        let wanted = len.min(DNS_MAX as u32);
        let n = ((wanted.wrapping_sub(1)) & (DNS_MAX as u32 - 1)) + 1;
        // SAFETY: `n` is at most the size of `data`; the helper bounds-checks the packet.
        let ret = unsafe {
            gen::bpf_skb_load_bytes(
                ctx.skb.skb.cast(),
                payload as u32,
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
