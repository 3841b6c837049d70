//! Live tail: `sealwatch tail [filters]` shows the running daemon's lines as they happen.
//!
//! The daemon listens on a Unix socket (directory 0700, socket 0600, peers must be root). A client
//! sends its filter as one JSON line ([`crate::filter::FilterArgs`]); the daemon answers
//! `{"kind":"tail-subscribed",...}` and then every matching line. Each client has its own bounded
//! queue: when it is full the client's lines are skipped, never waited for, and once there is
//! room again the client gets `{"kind":"tail-skipped","count":N}` where the gap is. These control
//! lines are part of the tail protocol, not of the event schema; `sealwatch tail` reports them on
//! stderr.
//!
//! - [`server`]: the socket and one task per client; [`hub`]: the event path's side (filter,
//!   `try_send`, skip counts; a tap of the daemon's `output::Fanout`); [`client`]: the
//!   `tail` command.
pub mod client;
pub mod hub;
pub mod server;

use std::path::PathBuf;

use clap::Args;

use crate::filter::{FilterArgs, FilterError};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/sealwatch/tail.sock";

/// `sealwatch run` flags of the tail socket.
#[derive(Debug, Clone, Args)]
pub struct TailServerArgs {
    /// Unix socket where `sealwatch tail` clients connect (its directory is created with mode
    /// 0700, the socket gets 0600, and only root peers are served), or `none`.
    #[arg(long, value_name = "PATH|none", env = "SEALWATCH_TAIL_SOCKET", default_value = DEFAULT_SOCKET)]
    pub tail_socket: String,
    /// Lines that may queue for one tail client; when it is full the client's lines are skipped
    /// (the daemon never waits for a client) and it is told how many.
    #[arg(long, value_name = "LINES", default_value_t = 4096)]
    pub tail_queue: usize,
}

impl TailServerArgs {
    pub fn socket(&self) -> Option<PathBuf> {
        (self.tail_socket != "none" && !self.tail_socket.is_empty())
            .then(|| PathBuf::from(&self.tail_socket))
    }
}

/// `sealwatch tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The daemon's tail socket.
    #[arg(long, value_name = "PATH", env = "SEALWATCH_TAIL_SOCKET", default_value = DEFAULT_SOCKET)]
    pub tail_socket: PathBuf,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("tail socket {path}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tail socket {0} is in use by a running sealwatch")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("cannot connect to the sealwatch daemon at {path} (is `sealwatch run` running with this --tail-socket, and are you root?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon refused the tail: {0}")]
    Refused(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("tail connection: {0}")]
    Io(#[from] std::io::Error),
}

impl TailError {
    pub fn exit_code(&self) -> u8 {
        match self {
            TailError::Filter(_) => 64,
            TailError::Connect { .. } => 69,
            _ => 1,
        }
    }
}

/// Control lines of the protocol. Written by hand so `kind` comes first (clients tell control
/// lines from event lines by their start; `serde_json::json!` would sort the keys).
pub mod control {
    /// Every control line starts so; event lines start with `{"schema":`.
    pub const PREFIX: &str = "{\"kind\":\"tail-";

    fn quoted(text: &str) -> String {
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
    }

    pub fn subscribed(filter: &crate::filter::FilterArgs) -> String {
        let filter = serde_json::to_string(filter).unwrap_or_else(|_| "{}".to_owned());
        format!("{PREFIX}subscribed\",\"filter\":{filter}}}")
    }

    pub fn skipped(count: u64) -> String {
        format!("{PREFIX}skipped\",\"count\":{count}}}")
    }

    pub fn error(message: &str) -> String {
        format!("{PREFIX}error\",\"error\":{}}}", quoted(message))
    }

    #[cfg(test)]
    #[test]
    fn control_lines_start_with_the_prefix_and_parse() {
        for line in [
            skipped(3),
            error("bad \"x\""),
            subscribed(&Default::default()),
        ] {
            assert!(line.starts_with(PREFIX), "{line}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&line).is_ok(),
                "{line}"
            );
        }
        assert_eq!(skipped(3), r#"{"kind":"tail-skipped","count":3}"#);
    }
}

/// A line of any `kind` for tests, made by a real pipeline (a loss line) so it keeps up with
/// fields added to the event schema.
#[cfg(test)]
pub(crate) fn test_line(kind: &'static str) -> crate::output::EventLine {
    use crate::pipeline::{DropCounts, Input, Pipeline, PipelineConfig};
    let config = PipelineConfig {
        node: "n".into(),
        clock: crate::clock::BootClock { boot_to_unix_ns: 0 },
        hold_ns: 0,
        host_mnt_ns: 0,
        net_env: crate::policy::NetEnvironment::default(),
    };
    let mut pipeline = Pipeline::new(
        config,
        std::sync::Arc::new(crate::policy::Policy::embedded_default()),
    );
    let mut lines: Vec<crate::output::EventLine> = Vec::new();
    let drops = DropCounts {
        decode: 1,
        ..DropCounts::default()
    };
    pipeline.handle(Input::Tick { ktime_ns: 1, drops }, &mut lines);
    let mut line = lines.remove(0);
    line.kind = kind;
    line
}
