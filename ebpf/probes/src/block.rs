//! In-kernel egress enforcement: `cgroup/connect4|6` and `cgroup/sendmsg4|6`, attached by the
//! daemon to the cgroup of each container whose workload says `action: block`. A destination
//! outside the workload's allowlist is denied (the process sees EPERM) and the thread is marked,
//! so the syscall's exit reports the connection as blocked: no block is silent.
use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, generated as gen},
    macros::cgroup_sock_addr,
    maps::lpm_trie::Key,
    programs::SockAddrContext,
};
use sealwatch_abi::{
    programs, AllowKey, IPPROTO_TCP, PORT_RULES_MAX, PORT_RULE_TCP, PORT_RULE_UDP,
};

use crate::maps::{BLOCKED_TASKS, BLOCK_ALLOW, BLOCK_WORKLOAD};

const ALLOW: i32 = 1;
const DENY: i32 = 0;
/// Prefix length of a full key: the 32-bit workload key plus a 128-bit address.
const FULL_PREFIX: u32 = 32 + 128;

abi_name!(block_connect4, programs::enforce::BLOCK_CONNECT4);
#[cgroup_sock_addr(connect4)]
pub fn block_connect4(ctx: SockAddrContext) -> i32 {
    decide(&ctx, false)
}

abi_name!(block_connect6, programs::enforce::BLOCK_CONNECT6);
#[cgroup_sock_addr(connect6)]
pub fn block_connect6(ctx: SockAddrContext) -> i32 {
    decide(&ctx, true)
}

abi_name!(block_sendmsg4, programs::enforce::BLOCK_SENDMSG4);
#[cgroup_sock_addr(sendmsg4)]
pub fn block_sendmsg4(ctx: SockAddrContext) -> i32 {
    decide(&ctx, false)
}

abi_name!(block_sendmsg6, programs::enforce::BLOCK_SENDMSG6);
#[cgroup_sock_addr(sendmsg6)]
pub fn block_sendmsg6(ctx: SockAddrContext) -> i32 {
    decide(&ctx, true)
}

/// cgroup levels searched above the current one for an enforced container cgroup.
const ANCESTOR_LEVELS: i32 = 16;

/// The workload of the nearest enforced ancestor cgroup of the current task.
#[inline(always)]
fn enforced_ancestor() -> Option<u32> {
    for level in 1..ANCESTOR_LEVELS {
        // SAFETY: plain helper; 0 means there is no ancestor at that level.
        let id = unsafe { gen::bpf_get_current_ancestor_cgroup_id(level) };
        if id == 0 {
            break;
        }
        // SAFETY: the value is copied out at once.
        if let Some(&workload) = unsafe { BLOCK_WORKLOAD.get(id) } {
            return Some(workload);
        }
    }
    None
}

#[inline(always)]
fn decide(ctx: &SockAddrContext, v6: bool) -> i32 {
    // SAFETY: plain helper without arguments.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    // SAFETY: the value is copied out at once.
    let workload = match unsafe { BLOCK_WORKLOAD.get(cgroup) } {
        Some(&workload) => workload,
        // A cgroup below the container's (a container that makes its own sub-cgroups): the
        // hooks run there too, so the enforced ancestor decides.
        None => match enforced_ancestor() {
            Some(workload) => workload,
            // A cgroup just being torn down.
            None => return ALLOW,
        },
    };
    let sa = ctx.sock_addr;
    let mut addr = [0u8; 16];
    // SAFETY: direct context loads of 4-byte fields, as the verifier requires for this type.
    let (port, protocol) = unsafe {
        if v6 {
            for (i, word) in [
                (*sa).user_ip6[0],
                (*sa).user_ip6[1],
                (*sa).user_ip6[2],
                (*sa).user_ip6[3],
            ]
            .into_iter()
            .enumerate()
            {
                addr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
        } else {
            // IPv4 is keyed as IPv4-mapped IPv6, like a dual-stack socket's v4 peers.
            addr[10] = 0xff;
            addr[11] = 0xff;
            addr[12..16].copy_from_slice(&(*sa).user_ip4.to_ne_bytes());
        }
        // user_port holds the port in network byte order in its first two bytes.
        (u16::from_be((*sa).user_port as u16), (*sa).protocol)
    };
    let key = Key::new(
        FULL_PREFIX,
        AllowKey {
            workload: workload.to_be_bytes(),
            addr,
        },
    );
    let wanted = if protocol == u32::from(IPPROTO_TCP) {
        PORT_RULE_TCP
    } else {
        PORT_RULE_UDP
    };
    if let Some(allowed) = BLOCK_ALLOW.get(&key) {
        let count = allowed.count as usize;
        for i in 0..PORT_RULES_MAX {
            if i >= count {
                break;
            }
            let rule = &allowed.rules[i];
            if rule.protocols & wanted != 0 && rule.lo <= port && port <= rule.hi {
                return ALLOW;
            }
        }
    }
    let _ = BLOCKED_TASKS.insert(bpf_get_current_pid_tgid(), 1, 0);
    DENY
}
