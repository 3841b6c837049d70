//! `root-in-container`: a container process runs as uid 0. No container should run as root unless
//! the policy documents an exception. Reported once per container, not once per process.
use std::collections::HashSet;

use super::ExecFacts;

#[derive(Debug, Default)]
pub struct RootInContainer {
    reported: HashSet<String>,
}

impl RootInContainer {
    /// Returns the message when this exec is the container's first one as root.
    pub fn check(&mut self, facts: &ExecFacts<'_>) -> Option<String> {
        let container = facts.actor.container.as_ref()?;
        if facts.uid != 0 || !self.reported.insert(container.id.to_owned()) {
            return None;
        }
        let name = container.name.unwrap_or(container.id);
        let image = container.image.unwrap_or("unknown image");
        Some(format!(
            "container {name} ({image}) runs {} as root (uid 0); run it as a non-root user or document an exception in the policy",
            super::shown(facts.actor.exe)
        ))
    }

    /// Forgets a removed container, so the set stays bounded by live containers.
    pub fn forget(&mut self, container_id: &str) {
        self.reported.remove(container_id);
    }
}
