//! The JSON event line. Field names and meanings are a public contract documented in the README
//! and in `schema/sealwatch.event.v1.json`.
use std::{net::IpAddr, sync::Arc};

use serde::Serialize;

use super::{fragment::Shared, json_out::ObjectWriter};
use crate::event::text::{pointer_token, render};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventLine {
    pub schema: &'static str,
    pub time: crate::clock::WallTime,
    pub node: Arc<str>,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Shared<ProcessJson>>,
    /// Null for host processes; always present on process events.
    pub container: Option<Shared<ContainerJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileJson>,
    /// The connection, accept or listener a network event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkJson>,
    /// The login session the event belongs to (exec events in a session carry only `id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<ViolationJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossJson>,
    /// JSON Pointers of the string fields written in escaped form (see `event::text`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub escaped: Vec<String>,
}

impl EventLine {
    /// Serialises to one line (no trailing newline). serde_json escapes control characters, so a
    /// newline in a file name can never split the line.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the line (no trailing newline) to `out`: the same bytes serde_json writes for
    /// it, written by hand where that is cheaper (`json_out`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Serialising these plain structs cannot fail (no maps with non-string keys, and a Vec
        // takes every write).
        if let Err(err) = self.write_fields(out) {
            out.truncate(start);
            out.extend_from_slice(
                format!(
                    r#"{{"schema":"{}","kind":"error","error":"{err}"}}"#,
                    super::SCHEMA
                )
                .as_bytes(),
            );
        }
    }

    fn write_fields(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut line = ObjectWriter::open(out);
        line.str("schema", self.schema);
        line.time("time", self.time);
        line.str("node", &self.node);
        line.str("kind", self.kind);
        if let Some(process) = &self.process {
            line.raw("process", process.json());
        }
        line.opt_raw("container", self.container.as_ref().map(|c| c.json()));
        if let Some(file) = &self.file {
            line.value("file", file)?;
        }
        if let Some(network) = &self.network {
            network.write(line.object("network"));
        }
        if let Some(session) = &self.session {
            line.value("session", session)?;
        }
        if let Some(violation) = &self.violation {
            line.value("violation", violation)?;
        }
        if let Some(loss) = &self.loss {
            line.value("loss", loss)?;
        }
        if !self.escaped.is_empty() {
            line.value("escaped", &self.escaped)?;
        }
        line.close();
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProcessJson {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub exe: String,
    pub args: Vec<String>,
    pub args_truncated: bool,
    pub cwd: String,
    /// `pts/3`, `tty1`, or null without a controlling terminal.
    pub tty: Option<String>,
    /// Login uid (audit), null when unset.
    pub loginuid: Option<u32>,
    /// Audit session id, null when unset.
    pub sessionid: Option<u32>,
    /// Executable of the parent process when known.
    pub parent_exe: Option<String>,
    /// Where the executable came from (exec events): lower, upper, memfd, deleted or host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_layer: Option<&'static str>,
}

/// A login session (see `pipeline::sessions`).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct SessionJson {
    pub id: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// uid of the session's first process, as the host sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<Option<String>>,
    /// `address:port` of the SSH client when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Option<String>>,
    /// `start` or `end`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// `KUBERNETES_EXEC_AUDIT_ID` / `SPO_EXEC_REQUEST_UID` of the entering process: the join key
    /// to the API server's audit log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_audit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commands: Option<u64>,
}

/// The file a `file` event is about.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileJson {
    /// As seen inside the container (or on the host for host processes).
    pub path: String,
    /// open_write, truncate, rename, unlink, chmod, chown or create.
    pub op: &'static str,
    /// lower (from the image), upper (the container's writable layer) or none.
    pub layer: &'static str,
    /// File mode bits given by the operation (create, chmod), when any.
    pub mode: Option<u32>,
    /// The path was longer than the kernel's record keeps: `path` is its beginning.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub path_truncated: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContainerJson {
    pub id: String,
    pub runtime: &'static str,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: Option<PodJson>,
    /// `complete`, `pending` (the runtime had not told yet when the event had to go out) or
    /// `unavailable` (it could not be read).
    pub metadata: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PodJson {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ViolationJson {
    pub rule: &'static str,
    pub severity: &'static str,
    pub message: String,
    /// Identical violations held back since this one was last printed (file rules, 10 s window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u64>,
    /// What sealwatch did about it (network rules): `alert` (reported only) or `blocked`
    /// (denied in the kernel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
}

/// The network side of a `connect`, `accept` or `listen` event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NetworkJson {
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// `ipv4` or `ipv6` (the socket's family; a dual-stack socket's IPv4 peer shows as IPv4).
    pub family: &'static str,
    /// `egress` (connect) or `ingress` (accept); null for listeners.
    pub direction: Option<&'static str>,
    /// Initiator's end: local for connect and listen, the remote peer for accept (serde writes
    /// an address as its text).
    pub src: IpAddr,
    pub sport: u16,
    /// The other end; null for listeners.
    pub dst: Option<IpAddr>,
    pub dport: Option<u16>,
    /// success, in-progress, blocked, refused, unreachable, timed-out or failed.
    pub result: &'static str,
    /// Positive errno when the operation failed.
    pub errno: Option<u32>,
    /// DNS name the container resolved the peer from, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The network policy workload that judged the event.
    pub workload: String,
}

impl NetworkJson {
    fn write(&self, mut object: ObjectWriter<'_>) {
        object.str("protocol", self.protocol);
        object.str("family", self.family);
        object.opt_str("direction", self.direction);
        object.addr("src", self.src);
        object.uint("sport", u64::from(self.sport));
        object.opt_addr("dst", self.dst);
        object.opt_uint("dport", self.dport.map(u64::from));
        object.str("result", self.result);
        object.opt_uint("errno", self.errno.map(u64::from));
        if let Some(name) = &self.name {
            object.str("name", name);
        }
        object.str("workload", &self.workload);
        object.close();
    }
}

/// Events lost since the previous loss line, per place they were lost.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct LossJson {
    /// Kernel ring buffer full, per lane.
    pub kernel_critical: u64,
    pub kernel_bulk: u64,
    /// Records that could not be decoded.
    pub decode: u64,
    /// Lines the outputs dropped, all sinks together (split in `output_by_sink`).
    pub output: u64,
    /// The same, per output that dropped any (stdout: slow reader; file, otlp: queue full or
    /// refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_by_sink: Option<OutputBySink>,
    /// Inputs the capture (`--capture`) could not record: its queue full, its disk full.
    #[serde(skip_serializing_if = "is_zero")]
    pub capture: u64,
    /// Records of the line's container the kernel dropped over its budget, per class (file
    /// records; connects, accepts, listens, sends and DNS answers). Only on a container's line.
    #[serde(skip_serializing_if = "is_zero")]
    pub budget_file: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub budget_network: u64,
}

/// `loss.output_by_sink`: only the outputs that dropped lines.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct OutputBySink {
    #[serde(skip_serializing_if = "is_zero")]
    pub stdout: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub file: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub otlp: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LossJson {
    pub fn total(&self) -> u64 {
        self.kernel_critical
            + self.kernel_bulk
            + self.decode
            + self.output
            + self.capture
            + self.budget_file
            + self.budget_network
    }
}

/// Renders kernel byte strings into a line, remembering which ones needed the escaped form.
#[derive(Debug, Default)]
pub struct TextFields {
    escaped: Vec<String>,
}

impl TextFields {
    /// Renders `bytes` found at JSON Pointer `pointer`.
    pub fn text(&mut self, pointer: &str, bytes: &[u8]) -> String {
        let (text, escaped) = render(bytes);
        if escaped {
            self.escaped.push(pointer.to_owned());
        }
        text.into_owned()
    }

    /// Renders a list whose items live at `pointer/<index>`. (The pointer is only written out
    /// for an escaped item: building it for every argument was a hot spot.)
    pub fn texts(&mut self, pointer: &str, items: &[Vec<u8>]) -> Vec<String> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let (text, escaped) = render(item);
                if escaped {
                    self.escaped
                        .push(format!("{pointer}/{}", pointer_token(&i.to_string())));
                }
                text.into_owned()
            })
            .collect()
    }

    /// Lists the escaped fields of a fragment the line carries.
    pub fn extend(&mut self, pointers: &[String]) {
        self.escaped.extend_from_slice(pointers);
    }

    pub fn into_escaped(self) -> Vec<String> {
        self.escaped
    }
}
