//! `container-exec`, `interactive-session-in-container`, `node-interactive-login`: never log in.
//! Which exec enters a container or the node from outside, and which rule that breaks. The
//! session it opens is state (`state::sessions`); printing it is the pipeline's.
use super::{ContainerFacts, Detector, Verdict};
use crate::{event::ExecRecord, policy::RuleId, state::sessions::SessionType};

const SHELLS: &[&str] = &["sh", "ash", "bash", "dash", "zsh", "ksh", "fish"];

/// What the login rules look at, besides the exec itself.
pub struct LoginFacts<'a> {
    pub exec: &'a ExecRecord,
    pub parent_exe: Option<&'a [u8]>,
    /// The controlling terminal as users name it (`pts/3`).
    pub tty: Option<&'a str>,
    /// The process belongs to a container (by cgroup or by pid namespace).
    pub in_container: bool,
    /// That container, while the registry still knows it.
    pub container: Option<ContainerFacts<'a>>,
    /// The kind of session the process is already in, if any.
    pub session: Option<SessionType>,
}

/// An exec that opens a session of `kind`, and the violation it is.
#[derive(Debug, Clone)]
pub struct Login {
    pub kind: SessionType,
    pub verdict: Verdict,
}

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// An interactive shell: its exe, or (busybox) its argv[0], names a shell.
fn is_shell(exec: &ExecRecord) -> bool {
    let named = |name: &[u8]| SHELLS.iter().any(|s| s.as_bytes() == name);
    named(basename(&exec.exe))
        || exec
            .args
            .first()
            .is_some_and(|arg0| named(basename(arg0).strip_prefix(b"-").unwrap_or(basename(arg0))))
}

/// The session kind an exec opens, the rule it breaks and what it did, or None when it is no
/// login (or continues the session it is already in).
pub fn classify(facts: &LoginFacts<'_>) -> Option<(SessionType, RuleId, &'static str)> {
    let exec = facts.exec;
    let entered =
        exec.parent_pid_ns != 0 && exec.parent_pid_ns != exec.task.pid_ns && exec.vpid != 1;
    let parent = facts.parent_exe.map(basename).unwrap_or_default();
    let exe = basename(&exec.exe);
    let found = if facts.in_container && exec.pid_level > 0 {
        match (entered, facts.tty.is_some()) {
            (true, true) => (
                SessionType::ContainerExec,
                RuleId::InteractiveSessionInContainer,
                "entered the container with a terminal",
            ),
            (true, false) => (
                SessionType::ContainerExec,
                RuleId::ContainerExec,
                "entered the container from outside",
            ),
            (false, true) if is_shell(exec) && facts.session.is_none() => (
                SessionType::ContainerExec,
                RuleId::InteractiveSessionInContainer,
                "a shell attached to a terminal runs in the container",
            ),
            _ => return None,
        }
    } else if exec.pid_level == 0 && !facts.in_container {
        if exec.parent_pid_ns != 0 && exec.parent_pid_ns != exec.task.pid_ns {
            (
                SessionType::Nsenter,
                RuleId::NodeInteractiveLogin,
                "left a container into the host's namespaces",
            )
        } else if (parent == b"sshd" || parent == b"sshd-session")
            && exe != b"sshd"
            && exe != b"sshd-session"
        {
            (
                SessionType::Ssh,
                RuleId::NodeInteractiveLogin,
                "logged in to the node over SSH",
            )
        } else if parent == b"login" && exe != b"login" {
            (
                SessionType::Console,
                RuleId::NodeInteractiveLogin,
                "logged in on the node's console",
            )
        } else {
            return None;
        }
    } else {
        return None;
    };
    // A process already in a session of this kind (the leader exec'ing its command, `ssh
    // host cmd`, a shell's `exec`) stays in it; entering anew (podman exec from an SSH
    // session) opens a nested session of another kind.
    (facts.session != Some(found.0)).then_some(found)
}

impl Detector {
    /// A login (container exec, SSH, console, nsenter): the verdict of its rule unless the
    /// policy disables or excepts it (exec probes are excepted by container, exe and args).
    pub fn on_login(&self, facts: &LoginFacts<'_>) -> Option<Login> {
        let (kind, rule, what) = classify(facts)?;
        let exec = facts.exec;
        // Login rules have always matched exceptions against the lossy text of exe and argv.
        let exe = String::from_utf8_lossy(&exec.exe).into_owned();
        let args: Vec<String> = exec
            .args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let message = format!(
            "{exe} {what} (uid {}{})",
            exec.task.uid,
            facts.tty.map(|t| format!(", tty {t}")).unwrap_or_default()
        );
        let subject = super::subject(&exe, &args, facts.container.as_ref());
        let verdict = self.decide_for(rule, &subject, message)?;
        Some(Login { kind, verdict })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Task;

    /// An exec in pid namespace 2 (depth `pid_level`) whose parent is in `parent_pid_ns`.
    fn exec(exe: &str, pid_level: u32, parent_pid_ns: u32) -> ExecRecord {
        ExecRecord {
            task: Task {
                pid_ns: 2,
                ..Task::default()
            },
            exe: exe.as_bytes().to_vec(),
            args: vec![exe.as_bytes().to_vec()],
            vpid: 7,
            pid_level,
            parent_pid_ns,
            ..ExecRecord::default()
        }
    }

    fn facts<'a>(exec: &'a ExecRecord, parent: &'a str, tty: Option<&'a str>) -> LoginFacts<'a> {
        LoginFacts {
            exec,
            parent_exe: Some(parent.as_bytes()),
            tty,
            in_container: exec.pid_level > 0,
            container: None,
            session: None,
        }
    }

    #[test]
    fn each_way_in_breaks_its_rule() {
        let rule = |facts: &LoginFacts<'_>| classify(facts).map(|(_, rule, _)| rule);
        let entered = exec("/bin/sh", 1, 1);
        assert_eq!(
            rule(&facts(&entered, "/usr/bin/runc", Some("pts/0"))),
            Some(RuleId::InteractiveSessionInContainer)
        );
        assert_eq!(
            rule(&facts(&entered, "/usr/bin/runc", None)),
            Some(RuleId::ContainerExec)
        );
        let workload = exec("/bin/sh", 1, 2);
        assert_eq!(rule(&facts(&workload, "/bin/app", None)), None);
        let ssh = exec("/bin/bash", 0, 2);
        assert_eq!(
            rule(&facts(&ssh, "/usr/sbin/sshd", Some("pts/1"))),
            Some(RuleId::NodeInteractiveLogin)
        );
        let left = exec("/bin/bash", 0, 9);
        assert_eq!(
            classify(&facts(&left, "/usr/bin/nsenter", None)).map(|(kind, ..)| kind),
            Some(SessionType::Nsenter)
        );
    }

    #[test]
    fn a_session_continues_rather_than_opens_anew() {
        let ssh = exec("/bin/bash", 0, 2);
        let within = LoginFacts {
            session: Some(SessionType::Ssh),
            ..facts(&ssh, "/usr/sbin/sshd", None)
        };
        assert!(classify(&within).is_none());
        // Entering a container from an SSH session opens a nested session of another kind.
        let entered = exec("/bin/sh", 1, 1);
        let nested = LoginFacts {
            session: Some(SessionType::Ssh),
            ..facts(&entered, "/usr/bin/runc", None)
        };
        assert_eq!(
            classify(&nested).map(|(kind, ..)| kind),
            Some(SessionType::ContainerExec)
        );
    }
}
