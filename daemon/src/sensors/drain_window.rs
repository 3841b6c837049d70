//! The kernel's copy of each lane's draining window (`DRAINING_UNTIL`): until when the reader of
//! that ring drains it on its own timer, so paced records need not wake it.
use std::sync::{Arc, Mutex, PoisonError};

use aya::maps::{Array, MapData, MapError};

/// Shared by the readers of both lanes (one map, one slot per lane).
#[derive(Clone)]
pub struct DrainWindows(Arc<Mutex<Array<MapData, u64>>>);

impl std::fmt::Debug for DrainWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DrainWindows")
    }
}

impl DrainWindows {
    pub fn new(map: Array<MapData, u64>) -> Self {
        DrainWindows(Arc::new(Mutex::new(map)))
    }

    /// The reader of `lane` drains its ring at least until `until_ns` (boot time).
    pub fn publish(&self, lane: u32, until_ns: u64) -> Result<(), MapError> {
        // A poisoned lock still guards a valid map handle: the write is one syscall.
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.set(lane, until_ns, 0)
    }
}
