//! Login sessions: opening one when `detect::logins` says an exec is a login, and printing its
//! start and end lines. The sessions themselves are state (`state::sessions`).
use super::{objects::image_view, render, Pipeline};
use crate::{
    detect::{
        logins::{Login, LoginFacts},
        ContainerFacts, Verdict,
    },
    event::{ExecRecord, Task},
    output::{LineSink, ProcessJson, SessionJson, Shared, TextFields},
    state::sessions::{session_id, Session, SessionType},
};

/// A session that an exec opens, with the violation it is.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub session: Session,
    pub verdict: Verdict,
}

impl Pipeline {
    /// Decides at arrival (so that children forked right after inherit it) whether this exec
    /// opens a login session; opens it.
    pub(super) fn open_session(
        &mut self,
        exec: &ExecRecord,
        parent_exe: Option<&[u8]>,
    ) -> Option<SessionStart> {
        let tty = exec
            .tty
            .as_deref()
            .map(|t| String::from_utf8_lossy(&render::tty_name(t)).into_owned());
        let container_cgroup = self.state.container_cgroup(exec);
        let Login { kind, verdict } = self.detector.on_login(&LoginFacts {
            exec,
            parent_exe,
            tty: tty.as_deref(),
            in_container: container_cgroup.is_some(),
            container: container_cgroup
                .and_then(|cgroup| self.state.container(cgroup))
                .map(ContainerFacts::of),
            session: self.state.sessions.of(exec.task.pid).map(|s| s.kind),
        })?;
        let text = |value: &[u8]| String::from_utf8_lossy(value).into_owned();
        let remote = exec.login_var("SSH_CONNECTION").and_then(|conn| {
            let text = text(conn);
            let mut parts = text.split(' ');
            Some(format!("{}:{}", parts.next()?, parts.next()?))
        });
        let session = Session {
            id: session_id(exec.task.ktime_ns, exec.task.pid),
            kind,
            leader: exec.task.pid,
            started_ns: exec.task.ktime_ns,
            commands: 0,
            user: exec.task.uid.to_string(),
            tty,
            remote,
            k8s_audit_id: exec
                .login_var("KUBERNETES_EXEC_AUDIT_ID")
                .or_else(|| exec.login_var("SPO_EXEC_REQUEST_UID"))
                .map(text),
            cgroup_id: container_cgroup.unwrap_or(exec.task.cgroup_id),
        };
        Some(SessionStart {
            session: self.state.sessions.start(session),
            verdict,
        })
    }

    /// Prints a session's start or end line.
    pub(super) fn emit_session(
        &mut self,
        session: &Session,
        ended_ns: Option<u64>,
        process: Shared<ProcessJson>,
        escaped: Vec<String>,
        sink: &mut dyn LineSink,
    ) {
        let kind = match session.kind {
            SessionType::ContainerExec => "container-exec",
            SessionType::Ssh => "ssh",
            SessionType::Console => "console",
            SessionType::Nsenter => "nsenter",
        };
        let line = crate::output::EventLine {
            process: Some(process),
            container: self.container_json(session.cgroup_id),
            session: Some(SessionJson {
                id: session.id.clone(),
                kind: Some(kind),
                user: Some(session.user.clone()),
                tty: Some(session.tty.clone()),
                remote: Some(session.remote.clone()),
                state: Some(if ended_ns.is_some() { "end" } else { "start" }),
                k8s_audit_id: session.k8s_audit_id.clone(),
                duration_seconds: ended_ns
                    .map(|end| end.saturating_sub(session.started_ns) as f64 / 1e9),
                commands: ended_ns.map(|_| session.commands),
            }),
            escaped,
            ..self.line(ended_ns.unwrap_or(session.started_ns), "session")
        };
        self.write(&line, sink);
    }

    /// A process exited: if it led a session, the session ends.
    pub(super) fn session_exit(&mut self, pid: u32, ktime_ns: u64, sink: &mut dyn LineSink) {
        let Some(session) = self.state.sessions.exit(pid) else {
            return;
        };
        let entry = self.state.procs.get(pid);
        let mut texts = TextFields::default();
        let task = Task {
            ktime_ns,
            pid,
            tid: pid,
            uid: session.user.parse().unwrap_or(0),
            gid: 0,
            cgroup_id: session.cgroup_id,
            mnt_ns: 0,
            pid_ns: 0,
            comm: entry.map(|e| e.comm.clone()).unwrap_or_default(),
        };
        let image = entry.map(image_view);
        let process = render::process_from_table(&task, image.as_ref(), None, &mut texts);
        self.emit_session(
            &session,
            Some(ktime_ns),
            process,
            texts.into_escaped(),
            sink,
        );
    }
}
