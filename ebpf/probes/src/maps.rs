//! Every map the programs share, plus the read-only configuration global.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use sealwatch_abi::{lane, Config, ExecEvent, FileEvent, Settings};

/// Default ring sizes; the daemon resizes them at load time (`--ring-*-bytes`).
const RING_DEFAULT_BYTES: u32 = 4 << 20;

#[map(name = "EVENTS_CRITICAL")]
pub static EVENTS_CRITICAL: RingBuf = RingBuf::with_byte_size(RING_DEFAULT_BYTES, 0);

#[map(name = "EVENTS_BULK")]
pub static EVENTS_BULK: RingBuf = RingBuf::with_byte_size(RING_DEFAULT_BYTES, 0);

/// Records that could not be reserved, per lane, then records over a cgroup's budget, per class
/// (from `budget::DROP_SLOT`). Per-CPU so that counting a drop never contends.
#[map(name = "DROPS")]
pub static DROPS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(lane::COUNT + sealwatch_abi::budget::COUNT, 0);

/// When this CPU last forced a ring wake-up for a paced record (see `emit::paced_wakeup`).
#[map(name = "LAST_WAKEUP")]
pub static LAST_WAKEUP: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Per lane: until when (boot-time ns) the daemon drains that ring on its own timer. Written
/// by the daemon only, through a memory mapping of the map (so a write is a store, not a
/// syscall); see `emit::paced_wakeup`.
#[map(name = "DRAINING_UNTIL")]
pub static DRAINING_UNTIL: Array<u64> =
    Array::with_max_entries(lane::COUNT, sealwatch_abi::BPF_F_MMAPABLE);

/// Exec records are too large for the 512-byte stack: they are built here, then copied into the
/// ring with only their used length.
#[map(name = "SCRATCH")]
pub static SCRATCH: PerCpuArray<ExecEvent> = PerCpuArray::with_max_entries(1, 0);

/// File records are built here (same reason as SCRATCH).
#[map(name = "FILE_SCRATCH")]
pub static FILE_SCRATCH: PerCpuArray<FileEvent> = PerCpuArray::with_max_entries(1, 0);

/// Settings the daemon may change while running (policy reload).
#[map(name = "SETTINGS")]
pub static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// An fd-based file operation recently reported (see `file::fold_repeat`). The dentry stands
/// for the path; inode and device guard against a freed dentry reused for another file.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileRepeatKey {
    pub cgroup: u64,
    pub dentry: u64,
    pub ino: u64,
    pub dev: u32,
    pub op: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct FileRepeat {
    /// When a record for this key was last sent.
    pub sent_ns: u64,
    /// Operations folded since then (added atomically: several CPUs may write the same file;
    /// 64 bits because BPF has atomic adds of 64 bits everywhere).
    pub folded: u64,
}

#[map(name = "FILE_REPEATS")]
pub static FILE_REPEATS: LruHashMap<FileRepeatKey, FileRepeat> =
    LruHashMap::with_max_entries(16384, 0);

/// Threads whose syscall entry produced a record that needs its result.
#[map(name = "NEEDS_RESULT")]
pub static NEEDS_RESULT: LruHashMap<u64, u32> = LruHashMap::with_max_entries(8192, 0);

/// Environment scan state and the variable being looked at (see `env::scan_env`).
#[map(name = "ENV_SCAN")]
pub static ENV_SCAN: PerCpuArray<crate::env::EnvScan> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "ENV_VAR")]
pub static ENV_VAR: PerCpuArray<[u8; crate::env::ENV_CHUNK]> = PerCpuArray::with_max_entries(1, 0);

/// Path-walk state shared with the `bpf_loop` callback (see `kernel::walk_path`).
#[map(name = "WALK")]
pub static WALK: PerCpuArray<crate::kernel::Walk> = PerCpuArray::with_max_entries(1, 0);

/// Written by the loader (`EbpfLoader::set_global`) before the programs are verified, so the
/// verifier sees the offsets as constants.
#[unsafe(no_mangle)]
pub static CONFIG: Config = unsafe { core::mem::zeroed() };

/// Reads one field of [`CONFIG`]. Volatile, so the compiler cannot fold the zero initialiser.
macro_rules! config {
    ($($field:ident).+) => {
        unsafe { core::ptr::read_volatile(&raw const $crate::maps::CONFIG.$($field).+) }
    };
}
pub(crate) use config;

// ---- network -------------------------------------------------------------------------------

/// What a network syscall's entry saw, for its exit (by thread).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NetStash {
    pub op: u32,
    pub fd: u32,
    pub family: u16,
    pub port: u16,
    pub protocol: u16,
    pub _pad: u16,
    pub addr: [u8; 16],
    /// The socket (sends) or the user buffer (DNS receives).
    pub ptr: u64,
}

/// `BPF_F_NO_COMMON_LRU`: per-CPU LRU lists, so the stash every network syscall's exit looks up
/// does not contend on one list lock.
const NO_COMMON_LRU: u32 = 1 << 1;

#[map(name = "NET_STASH")]
pub static NET_STASH: LruHashMap<u64, NetStash> = LruHashMap::with_max_entries(8192, NO_COMMON_LRU);

/// A UDP socket and a peer it already sent to: only the first datagram to a peer is a flow.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UdpPeer {
    pub sk: u64,
    pub addr: [u8; 16],
    pub port: u16,
    pub _pad: [u8; 6],
}

#[map(name = "UDP_PEERS")]
pub static UDP_PEERS: LruHashMap<UdpPeer, u8> = LruHashMap::with_max_entries(16384, 0);

/// The peer an io_uring connect asked for (see `net::note_uring_connect`): a denied connect
/// never sets its socket's peer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UringPeer {
    pub port: u16,
    pub _pad: [u8; 6],
    pub addr: [u8; 16],
}

/// Requested peers of io_uring connects in flight, by request address.
#[map(name = "URING_PEERS")]
pub static URING_PEERS: LruHashMap<u64, UringPeer> = LruHashMap::with_max_entries(4096, 0);

/// Threads whose connect/sendmsg the block programs just denied: the syscall's exit reports it.
#[map(name = "BLOCKED_TASKS")]
pub static BLOCKED_TASKS: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

/// cgroup id → workload key, for containers whose egress is enforced.
#[map(name = "BLOCK_WORKLOAD")]
pub static BLOCK_WORKLOAD: HashMap<u64, u32> = HashMap::with_max_entries(4096, 0);

/// cgroup ids of containers, written by the daemon (see `sealwatch_abi::names::CONTAINER_CGROUPS`).
#[map(name = "CONTAINER_CGROUPS")]
pub static CONTAINER_CGROUPS: HashMap<u64, u8> =
    HashMap::with_max_entries(sealwatch_abi::CONTAINER_CGROUPS_MAX, 0);

/// (workload key, prefix) → allowed port rules.
#[map(name = "BLOCK_ALLOW")]
pub static BLOCK_ALLOW: LpmTrie<sealwatch_abi::AllowKey, sealwatch_abi::AllowRules> =
    LpmTrie::with_max_entries(16384, 0);
