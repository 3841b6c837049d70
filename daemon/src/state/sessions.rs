//! Login sessions: who entered a container or the node, and everything they ran.
//!
//! A session opens at the first process that entered from outside (a `runc exec`/`nsenter` child,
//! an sshd child, a `login` child, a process leaving a container into the host's namespaces).
//! Processes it starts inherit its id (fork), so one filter on `session.id` gives a responder the
//! whole session. It ends when its first process exits, with its duration and command count.
use foldhash::HashMap;

use serde::Serialize;

/// How the session was entered (the JSON `session.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionType {
    ContainerExec,
    Ssh,
    Console,
    Nsenter,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub kind: SessionType,
    pub leader: u32,
    pub started_ns: u64,
    pub commands: u64,
    pub user: String,
    pub tty: Option<String>,
    pub remote: Option<String>,
    pub k8s_audit_id: Option<String>,
    pub cgroup_id: u64,
}

#[derive(Debug, Default)]
pub struct SessionTracker {
    by_pid: HashMap<u32, String>,
    sessions: HashMap<String, Session>,
}

impl SessionTracker {
    /// The session `pid` belongs to.
    pub fn of(&self, pid: u32) -> Option<&Session> {
        self.by_pid.get(&pid).and_then(|id| self.sessions.get(id))
    }

    /// A forked child belongs to its parent's session.
    pub fn fork(&mut self, parent: u32, child: u32) {
        if let Some(id) = self.by_pid.get(&parent).cloned() {
            self.by_pid.insert(child, id);
        }
    }

    /// Counts an exec inside a session; returns its id.
    pub fn exec(&mut self, pid: u32) -> Option<String> {
        let id = self.by_pid.get(&pid)?.clone();
        if let Some(session) = self.sessions.get_mut(&id) {
            session.commands += 1;
        }
        Some(id)
    }

    /// Opens a session led by `session.leader` (its first command counts).
    pub fn start(&mut self, mut session: Session) -> Session {
        session.commands = 1;
        self.by_pid.insert(session.leader, session.id.clone());
        self.sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// A process exited; returns the session it ended, if it was the leader.
    pub fn exit(&mut self, pid: u32) -> Option<Session> {
        let id = self.by_pid.remove(&pid)?;
        match self.sessions.get(&id) {
            Some(session) if session.leader == pid => self.sessions.remove(&id),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// A session id that is the same live and in replay: node-local, from the leader's exec.
pub fn session_id(ktime_ns: u64, pid: u32) -> String {
    format!("{ktime_ns:x}-{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(leader: u32) -> Session {
        Session {
            id: session_id(10, leader),
            kind: SessionType::Ssh,
            leader,
            started_ns: 10,
            commands: 0,
            user: "0".into(),
            tty: None,
            remote: None,
            k8s_audit_id: None,
            cgroup_id: 1,
        }
    }

    #[test]
    fn children_inherit_and_leader_exit_ends() {
        let mut tracker = SessionTracker::default();
        let started = tracker.start(session(100));
        tracker.fork(100, 101);
        assert_eq!(tracker.exec(101), Some(started.id.clone()));
        assert_eq!(tracker.exec(555), None);
        assert!(
            tracker.exit(101).is_none(),
            "a member's exit does not end it"
        );
        let ended = tracker.exit(100).map(|s| s.commands);
        assert_eq!(ended, Some(2));
        assert!(tracker.is_empty());
    }
}
