//! Where container paths come from (image, writable layer, volume), as the resolver answered,
//! and which questions were already asked, so each is asked once.
use foldhash::{HashMap, HashSet};

use crate::container::image_path::PathOrigin;

/// More known paths than this in one container start its cache afresh.
const PATHS_PER_CONTAINER_MAX: usize = 16_384;

/// Paths of one container with their origins.
pub type Origins = Vec<(Vec<u8>, PathOrigin)>;

#[derive(Debug, Default)]
pub struct PathOrigins {
    /// Answers, per container id.
    known: HashMap<String, HashMap<Vec<u8>, PathOrigin>>,
    /// (container, path) lookups already asked for; the empty path stands for "its layers".
    asked: HashSet<(String, Vec<u8>)>,
}

impl PathOrigins {
    /// Takes in an answer of the resolver.
    pub fn learn(&mut self, container_id: String, origins: Origins) {
        let known = self.known.entry(container_id).or_default();
        // Bounded: a container that touches very many paths starts a fresh cache.
        if known.len() > PATHS_PER_CONTAINER_MAX {
            known.clear();
        }
        known.extend(origins);
    }

    /// Whether any answer came for the container (its layers are known).
    pub fn has_container(&self, container_id: &str) -> bool {
        self.known.contains_key(container_id)
    }

    /// Whether the origin of `path` in the container is known.
    pub fn knows(&self, container_id: &str, path: &[u8]) -> bool {
        self.known
            .get(container_id)
            .is_some_and(|known| known.contains_key(path))
    }

    /// The origin of `path` in the container; `Unknown` when no answer says.
    pub fn get(&self, container_id: &str, path: &[u8]) -> PathOrigin {
        self.known
            .get(container_id)
            .and_then(|known| known.get(path))
            .copied()
            .unwrap_or(PathOrigin::Unknown)
    }

    /// True the first time `(container, path)` is asked for.
    pub fn ask(&mut self, container_id: &str, path: &[u8]) -> bool {
        self.asked.insert((container_id.to_owned(), path.to_vec()))
    }

    /// Forgets a container that is gone.
    pub fn forget_container(&mut self, container_id: &str) {
        self.known.remove(container_id);
        self.asked.retain(|(c, _)| c != container_id);
    }

    /// Every answer, sorted by container and path (for snapshots).
    pub fn sorted(&self) -> Vec<(String, Origins)> {
        let mut all: Vec<_> = self
            .known
            .iter()
            .map(|(container_id, known)| {
                let mut origins: Vec<_> = known.iter().map(|(p, o)| (p.clone(), *o)).collect();
                origins.sort();
                (container_id.clone(), origins)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
