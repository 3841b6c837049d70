//! The container registry: cgroup id → cgroup path → container, and each container's metadata.
//!
//! Containers are registered when their cgroup is created (`cgroup_mkdir`), before their first
//! process; metadata is fetched off the event path and arrives as a pipeline input.
use std::rc::Rc;

use foldhash::HashMap;

use crate::container::{parse_cgroup_path, CgroupContainer, ContainerMeta};

/// Where a container's name, image and pod stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaState {
    /// Asked for, not answered yet.
    Pending,
    Known(ContainerMeta),
    /// The runtime's state could not be read; the reason is logged once.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEntry {
    pub info: CgroupContainer,
    /// Changed only through [`ContainerRegistry::set_metadata`], which makes a new entry (and so
    /// a new `revision`).
    pub meta: MetaState,
    /// Names this entry among every one the registry ever made (a new one at each metadata
    /// change; never reused), so a consumer can keep what it derived from the entry (the render
    /// layer's container object) and drop it when the revision is retired.
    pub revision: Revision,
}

/// See [`ContainerEntry::revision`].
pub type Revision = u64;

/// What a cgroup id means for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLookup<'a> {
    Host,
    Container(&'a ContainerEntry),
    /// The id has not been seen (created before the start-up scan finished, or missed): the path
    /// must be looked up.
    Unknown,
}

#[derive(Debug, Default)]
pub struct ContainerRegistry {
    /// cgroup id → its container (None: a host cgroup). The entry itself, shared with
    /// `containers`: every event looks its cgroup up, several times, and hashing a u64 is all
    /// that costs (through the container id it hashed 64 bytes and compared them).
    cgroups: HashMap<u64, Option<Rc<ContainerEntry>>>,
    containers: HashMap<String, Rc<ContainerEntry>>,
    /// cgroup id → path as announced, so a capture file can start with a snapshot
    /// ([`ContainerRegistry::snapshot`]).
    paths: HashMap<u64, String>,
    /// The last [`Revision`] handed out.
    last_revision: Revision,
    /// Entries replaced or removed since [`ContainerRegistry::take_retired`] was last called.
    retired: Vec<Revision>,
}

impl ContainerRegistry {
    /// Records a v2 cgroup and its path. Returns the container whose metadata must now be fetched,
    /// if this is the first cgroup seen of a new container.
    pub fn add_cgroup(&mut self, id: u64, path: &str) -> Option<CgroupContainer> {
        self.paths.insert(id, path.to_owned());
        let Some(container) = parse_cgroup_path(path) else {
            self.cgroups.insert(id, None);
            return None;
        };
        if let Some(entry) = self.containers.get(&container.id) {
            self.cgroups.insert(id, Some(entry.clone()));
            return None;
        }
        let entry = Rc::new(ContainerEntry {
            info: container.clone(),
            meta: MetaState::Pending,
            revision: self.next_revision(),
        });
        self.cgroups.insert(id, Some(entry.clone()));
        self.containers.insert(container.id.clone(), entry);
        Some(container)
    }

    /// Forgets a removed cgroup; the container goes with its last cgroup.
    pub fn remove_cgroup(&mut self, id: u64) {
        self.paths.remove(&id);
        if let Some(Some(entry)) = self.cgroups.remove(&id) {
            let still_used = self
                .cgroups
                .values()
                .any(|c| c.as_ref().is_some_and(|c| Rc::ptr_eq(c, &entry)));
            if !still_used {
                self.containers.remove(&entry.info.id);
                self.retired.push(entry.revision);
            }
        }
    }

    /// Marks a cgroup id whose path could not be found as a host cgroup, so events stop waiting.
    pub fn mark_host(&mut self, id: u64) {
        self.cgroups.entry(id).or_insert(None);
    }

    /// A new entry, with a new revision, replaces the old one in every cgroup of the container
    /// (what was derived from the old one is retired with it).
    pub fn set_metadata(&mut self, container_id: &str, meta: Option<ContainerMeta>) {
        let revision = self.last_revision + 1;
        let Some(old) = self.containers.get_mut(container_id) else {
            return;
        };
        self.last_revision = revision;
        let entry = Rc::new(ContainerEntry {
            info: old.info.clone(),
            meta: match meta {
                Some(meta) => MetaState::Known(meta),
                None => MetaState::Unavailable,
            },
            revision,
        });
        let old = std::mem::replace(old, entry.clone());
        self.retired.push(old.revision);
        for slot in self.cgroups.values_mut().flatten() {
            if Rc::ptr_eq(slot, &old) {
                *slot = entry.clone();
            }
        }
    }

    fn next_revision(&mut self) -> Revision {
        self.last_revision += 1;
        self.last_revision
    }

    /// Revisions of entries replaced or removed since the last call: what was derived from them
    /// can go.
    pub fn take_retired(&mut self) -> Vec<Revision> {
        std::mem::take(&mut self.retired)
    }

    pub fn lookup(&self, cgroup_id: u64) -> CgroupLookup<'_> {
        match self.cgroups.get(&cgroup_id) {
            None => CgroupLookup::Unknown,
            Some(None) => CgroupLookup::Host,
            Some(Some(entry)) => CgroupLookup::Container(entry),
        }
    }

    /// Every cgroup that belongs to a container, with its path, sorted by id.
    pub fn container_cgroups(&self) -> Vec<(u64, String)> {
        let mut cgroups: Vec<(u64, String)> = self
            .cgroups
            .iter()
            .filter(|(_, container)| container.is_some())
            .filter_map(|(id, _)| Some((*id, self.paths.get(id)?.clone())))
            .collect();
        cgroups.sort_unstable();
        cgroups
    }

    pub fn has_container(&self, container_id: &str) -> bool {
        self.containers.contains_key(container_id)
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    /// What rebuilds this registry in a fresh one (capture files start with it), sorted:
    /// cgroups with their paths, cgroup ids known as host without a path, and the answered
    /// metadata (None: unavailable) of each container. Pending metadata is left out: its answer
    /// is still to come as an input.
    pub fn snapshot(&self) -> RegistrySnapshot {
        let mut snapshot = RegistrySnapshot::default();
        for (id, container) in &self.cgroups {
            match (self.paths.get(id), container) {
                (Some(path), _) => snapshot.cgroups.push((*id, path.clone())),
                (None, None) => snapshot.host_without_path.push(*id),
                (None, Some(_)) => {}
            }
        }
        for (id, entry) in &self.containers {
            match &entry.meta {
                MetaState::Known(meta) => snapshot.metadata.push((id.clone(), Some(meta.clone()))),
                MetaState::Unavailable => snapshot.metadata.push((id.clone(), None)),
                MetaState::Pending => {}
            }
        }
        snapshot.cgroups.sort();
        snapshot.host_without_path.sort_unstable();
        snapshot.metadata.sort_by(|a, b| a.0.cmp(&b.0));
        snapshot
    }
}

/// See [`ContainerRegistry::snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySnapshot {
    pub cgroups: Vec<(u64, String)>,
    pub host_without_path: Vec<u64>,
    pub metadata: Vec<(String, Option<ContainerMeta>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn container_lifecycle() {
        let mut registry = ContainerRegistry::default();
        assert_eq!(registry.lookup(5), CgroupLookup::Unknown);
        assert!(registry
            .add_cgroup(4, "/system.slice/ssh.service")
            .is_none());
        assert_eq!(registry.lookup(4), CgroupLookup::Host);

        let path = format!("/libpod_parent/libpod-{ID}");
        let request = registry.add_cgroup(5, &path);
        assert_eq!(request.map(|c| c.id), Some(ID.to_owned()));
        assert!(registry.add_cgroup(5, &path).is_none(), "asked once");
        // A second cgroup of the same container (a sub-cgroup) shares its entry.
        assert!(registry.add_cgroup(6, &format!("{path}/init")).is_none());
        let CgroupLookup::Container(entry) = registry.lookup(5) else {
            panic!("not a container");
        };
        assert_eq!(entry.meta, MetaState::Pending);

        registry.set_metadata(ID, Some(ContainerMeta::default()));
        for cgroup in [5, 6] {
            assert!(
                matches!(
                    registry.lookup(cgroup),
                    CgroupLookup::Container(ContainerEntry {
                        meta: MetaState::Known(_),
                        ..
                    })
                ),
                "cgroup {cgroup} sees the metadata"
            );
        }
        registry.remove_cgroup(5);
        assert_eq!(registry.lookup(5), CgroupLookup::Unknown);
        assert_eq!(registry.container_count(), 1, "cgroup 6 still holds it");
        registry.remove_cgroup(6);
        assert_eq!(registry.container_count(), 0);
    }
}
