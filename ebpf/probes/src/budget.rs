//! Per-container budgets (see `sealwatch_abi::budget`): one container flooding a ring with
//! records (failing path syscalls, connects, datagrams from port 53) is cut at its own budget,
//! so the rings keep room for every other container. Counted per cgroup and per class.
use aya_ebpf::{helpers::bpf_ktime_get_boot_ns, macros::map, maps::LruHashMap};
use sealwatch_abi::{budget, BudgetKey, BudgetUse};

use crate::maps::{config, DROPS};

/// An LRU map: a new cgroup always gets an entry; the one evicted is the longest quiet.
#[map(name = "BUDGETS")]
static BUDGETS: LruHashMap<BudgetKey, BudgetUse> = LruHashMap::with_max_entries(8192, 0);

/// Whether `cgroup_id` may send one more record of `class` now; if not, the record is counted
/// as dropped for that cgroup and class.
#[inline(always)]
pub fn within_budget(cgroup_id: u64, class: u32) -> bool {
    let [file, network] = config!(budgets);
    let limit = if class == budget::BULK { file } else { network };
    if limit == 0 {
        return true;
    }
    // SAFETY: helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let key = BudgetKey {
        cgroup_id,
        class,
        _pad: 0,
    };
    let Some(entry) = BUDGETS.get_ptr_mut(key) else {
        let fresh = BudgetUse {
            window_start_ns: now,
            used: 1,
            dropped: 0,
        };
        let _ = BUDGETS.insert(key, fresh, 0);
        return true;
    };
    // SAFETY: a map value stays valid while the program runs. Other CPUs may update it at the
    // same time: a budget is approximate by a few records, and `dropped` is only ever raised
    // (a lost increment undercounts the cgroup's line; the per-class total below is exact).
    unsafe {
        if now.wrapping_sub((*entry).window_start_ns) >= budget::WINDOW_NS {
            (*entry).window_start_ns = now;
            (*entry).used = 0;
        }
        (*entry).used += 1;
        if (*entry).used <= u64::from(limit) {
            return true;
        }
        (*entry).dropped += 1;
    }
    if let Some(counter) = DROPS.get_ptr_mut(budget::DROP_SLOT + class) {
        // SAFETY: per-CPU slot, programs do not preempt each other on one CPU.
        unsafe { *counter += 1 };
    }
    false
}
