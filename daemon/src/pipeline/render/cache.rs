//! The process and container objects that repeat across lines, rendered once and reused.
//!
//! A connect or write loop repeats the same process and container in every line; rendering them
//! again for each (string escaping, one allocation per field) was most of the daemon's CPU per
//! line. So a process image is rendered at its first non-exec line, and a container once per
//! metadata state. Entries are keyed by the ids state gives its process images and container
//! entries (never reused, so a hit is never stale) and dropped when state retires those ids.
use foldhash::HashMap;

use super::{ImageView, TextFields};
use crate::{
    event::Task,
    output::{ContainerJson, ProcessJson, Shared},
};

/// What a process object depends on besides its image: fields of the event's task, which can
/// change without an exec (setuid, prctl), and the parent's executable.
#[derive(Debug, PartialEq, Eq)]
struct ProcessInputs {
    uid: u32,
    gid: u32,
    comm: Vec<u8>,
    parent_exe: Option<Vec<u8>>,
}

impl ProcessInputs {
    fn matches(&self, task: &Task, parent_exe: Option<&[u8]>) -> bool {
        self.uid == task.uid
            && self.gid == task.gid
            && self.comm == task.comm
            && self.parent_exe.as_deref() == parent_exe
    }
}

#[derive(Default)]
pub struct RenderCache {
    /// The last process object made for each image, with the inputs it was made from: a lookup
    /// with other inputs misses, and the new object replaces it.
    processes: HashMap<u64, (ProcessInputs, Shared<ProcessJson>)>,
    /// The container object of each container entry revision.
    containers: HashMap<u64, Shared<ContainerJson>>,
}

impl RenderCache {
    /// The process behind a non-exec event; its escaped fields are added to `texts`. `image`:
    /// its id and view in the process table, None when the table does not know the process.
    pub fn process(
        &mut self,
        task: &Task,
        image: Option<(u64, ImageView<'_>)>,
        parent_exe: Option<&[u8]>,
        texts: &mut TextFields,
    ) -> Shared<ProcessJson> {
        let Some((id, view)) = image else {
            return super::process_from_table(task, None, parent_exe, texts);
        };
        if let Some((known, fragment)) = self.processes.get(&id) {
            if known.matches(task, parent_exe) {
                texts.extend(fragment.escaped());
                return fragment.clone();
            }
        }
        let fragment = super::process_from_table(task, Some(&view), parent_exe, texts);
        let inputs = ProcessInputs {
            uid: task.uid,
            gid: task.gid,
            comm: task.comm.clone(),
            parent_exe: parent_exe.map(<[u8]>::to_vec),
        };
        self.processes.insert(id, (inputs, fragment.clone()));
        fragment
    }

    /// The container object of entry `revision`, made by `make` the first time.
    pub fn container(
        &mut self,
        revision: u64,
        make: impl FnOnce() -> ContainerJson,
    ) -> Shared<ContainerJson> {
        self.containers
            .entry(revision)
            .or_insert_with(|| super::Rendered::new(make(), Vec::new()))
            .clone()
    }

    /// Drops what was made for images and container revisions that state retired.
    pub fn forget(&mut self, images: &[u64], revisions: &[u64]) {
        for id in images {
            self.processes.remove(id);
        }
        for revision in revisions {
            self.containers.remove(revision);
        }
    }

    /// Objects kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.processes.len() + self.containers.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
