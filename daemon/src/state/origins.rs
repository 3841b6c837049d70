//! Where container paths come from (image, writable layer, volume), as the resolver answered,
//! and which questions are in flight, so none is asked twice at once.
//!
//! An answer is a fact about one moment: "absent" or "in the upper layer" stops being true as soon
//! as the container writes the file (which the kernel need not report: a new file without exec
//! bits). So answers are kept only while an event waits for them ([`PathOrigins::settle`]); the
//! next event about the same path asks again.
use foldhash::{HashMap, HashSet};

use crate::container::image_path::PathOrigin;

/// More known paths than this in one container start its cache afresh.
const PATHS_PER_CONTAINER_MAX: usize = 16_384;

/// Paths of one container with their origins.
pub type Origins = Vec<(Vec<u8>, PathOrigin)>;
/// Asked paths of one container with the file each names, where the text differs.
pub type Canonical = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Default)]
pub struct PathOrigins {
    /// Answers, per container id.
    known: HashMap<String, HashMap<Vec<u8>, PathOrigin>>,
    /// (container, path) lookups already asked for; the empty path stands for "its layers".
    asked: HashSet<(String, Vec<u8>)>,
    /// The file an asked path names inside the container, where its text differs.
    canonical: HashMap<(String, Vec<u8>), Vec<u8>>,
}

impl PathOrigins {
    /// Takes in an answer of the resolver.
    pub fn learn(&mut self, container_id: String, origins: Origins, canonical: Canonical) {
        for (path, file) in canonical {
            self.canonical.insert((container_id.clone(), path), file);
        }
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

    /// The paths of the container with an answer.
    pub fn known_paths(&self, container_id: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.known
            .get(container_id)
            .into_iter()
            .flat_map(|known| known.keys().cloned())
    }

    /// The file `path` names in the container, when the answer said it differs from the text.
    pub fn canonical(&self, container_id: &str, path: &[u8]) -> Option<&[u8]> {
        self.canonical
            .get(&(container_id.to_owned(), path.to_vec()))
            .map(Vec::as_slice)
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

    /// Drops the container's answers that no waiting event needs any more (`needed`), and their
    /// "asked" marks, so the next event about such a path asks again. The container itself stays
    /// known (its layers are read).
    pub fn settle(&mut self, container_id: &str, needed: impl Fn(&[u8]) -> bool) {
        let Some(known) = self.known.get_mut(container_id) else {
            return;
        };
        let mut dropped = Vec::new();
        known.retain(|path, _| {
            let keep = needed(path);
            if !keep {
                dropped.push(path.clone());
            }
            keep
        });
        for path in dropped {
            let key = (container_id.to_owned(), path);
            self.canonical.remove(&key);
            self.asked.remove(&key);
        }
    }

    /// Forgets a container that is gone.
    pub fn forget_container(&mut self, container_id: &str) {
        self.known.remove(container_id);
        self.asked.retain(|(c, _)| c != container_id);
        self.canonical.retain(|(c, _), _| c != container_id);
    }

    /// Every answer, sorted by container and path (for snapshots).
    pub fn sorted(&self) -> Vec<(String, Origins, Canonical)> {
        let mut all: Vec<_> = self
            .known
            .iter()
            .map(|(container_id, known)| {
                let mut origins: Vec<_> = known.iter().map(|(p, o)| (p.clone(), *o)).collect();
                origins.sort();
                let mut canonical: Canonical = origins
                    .iter()
                    .filter_map(|(path, _)| {
                        let file = self.canonical(container_id, path)?;
                        Some((path.clone(), file.to_vec()))
                    })
                    .collect();
                canonical.sort();
                (container_id.clone(), origins, canonical)
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
