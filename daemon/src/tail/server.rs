//! The tail socket: created safely (directory 0700, socket 0600, root peers only), one task per
//! client that reads its filter and then writes its queue to it.
use std::{
    os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter},
    net::{UnixListener, UnixStream},
    sync::mpsc,
    task::JoinHandle,
};

use super::{
    control,
    hub::{Subscriber, TailHub},
    TailError,
};
use crate::filter::{Filter, FilterArgs};

/// How long a client may take to send its filter line.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest filter line accepted.
const HELLO_MAX: u64 = 64 * 1024;
/// Clients served at once; more are refused with an error line.
const MAX_CLIENTS: usize = 64;

/// The listening socket; removed when dropped.
pub struct TailServer {
    path: PathBuf,
    accept: JoinHandle<()>,
}

impl Drop for TailServer {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` and starts accepting clients; returns the hub for the daemon's sink.
pub fn start(path: &Path, queue: usize) -> Result<(TailServer, TailHub), TailError> {
    prepare(path)?;
    let at = |source| TailError::Socket {
        path: path.to_owned(),
        source,
    };
    let listener = UnixListener::bind(path).map_err(at)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(at)?;
    let (hub, joins) = TailHub::new();
    let clients = Arc::new(AtomicUsize::new(0));
    let accept = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (joins, clients) = (joins.clone(), clients.clone());
                    tokio::spawn(serve(stream, joins, clients, queue.max(1)));
                }
                Err(err) => {
                    tracing::warn!(%err, "tail socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tracing::info!(socket = %path.display(), "live tail: listening");
    Ok((
        TailServer {
            path: path.to_owned(),
            accept,
        },
        hub,
    ))
}

/// Creates the directory (0700) when missing; removes a stale socket, refuses a live one or a
/// file that is not a socket.
fn prepare(path: &Path) -> Result<(), TailError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| TailError::Socket {
                    path: dir.to_owned(),
                    source,
                })?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(TailError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(|source| TailError::Socket {
                path: path.to_owned(),
                source,
            })
        }
        Ok(_) => Err(TailError::NotASocket(path.to_owned())),
    }
}

/// Decrements the client count when a client task ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve(
    stream: UnixStream,
    joins: mpsc::UnboundedSender<Subscriber>,
    clients: Arc<AtomicUsize>,
    queue: usize,
) {
    let _slot = Slot(clients.clone());
    let count = clients.fetch_add(1, Ordering::Relaxed) + 1;
    // Root only: the mode bits already say so; this also covers the instant between bind and
    // chmod and sockets placed in directories others can enter.
    let peer_ok = stream
        .peer_cred()
        .is_ok_and(|cred| cred.uid() == 0 || cred.uid() == nix::unistd::geteuid().as_raw());
    let (read, write) = stream.into_split();
    let mut out = BufWriter::new(write);
    let refuse = |message: &str| format!("{}\n", control::error(message));
    if !peer_ok {
        let _ = out.write_all(refuse("only root may tail").as_bytes()).await;
        let _ = out.flush().await;
        return;
    }
    if count > MAX_CLIENTS {
        let text = refuse(&format!("too many tail clients (at most {MAX_CLIENTS})"));
        let _ = out.write_all(text.as_bytes()).await;
        let _ = out.flush().await;
        return;
    }
    let filter = match read_filter(read).await {
        Ok(filter) => filter,
        Err(message) => {
            let _ = out.write_all(refuse(&message).as_bytes()).await;
            let _ = out.flush().await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Arc<str>>(queue);
    let hello = format!("{}\n", control::subscribed(filter.args()));
    if joins
        .send(Subscriber {
            filter,
            queue: tx,
            skipped: 0,
        })
        .is_err()
    {
        return;
    }
    if out.write_all(hello.as_bytes()).await.is_err() || out.flush().await.is_err() {
        return;
    }
    tracing::debug!("tail client connected");
    while let Some(line) = rx.recv().await {
        if write_line(&mut out, &line).await.is_err() {
            break;
        }
        // Drain what is queued, then flush: batches under load, prompt when quiet.
        while let Ok(more) = rx.try_recv() {
            if write_line(&mut out, &more).await.is_err() {
                return;
            }
        }
        if out.flush().await.is_err() {
            break;
        }
    }
    tracing::debug!("tail client gone");
}

async fn write_line(
    out: &mut BufWriter<tokio::net::unix::OwnedWriteHalf>,
    line: &str,
) -> std::io::Result<()> {
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await
}

/// Reads and compiles the client's filter line (empty line or `{}`: everything).
async fn read_filter(read: tokio::net::unix::OwnedReadHalf) -> Result<Filter, String> {
    let mut reader = BufReader::new(read.take(HELLO_MAX));
    let mut first = String::new();
    match tokio::time::timeout(HELLO_TIMEOUT, reader.read_line(&mut first)).await {
        Err(_) => return Err("no filter line within 10 s".into()),
        Ok(Err(err)) => return Err(format!("reading the filter line: {err}")),
        Ok(Ok(_)) => {}
    }
    let args: FilterArgs = if first.trim().is_empty() {
        FilterArgs::default()
    } else {
        serde_json::from_str(first.trim()).map_err(|err| format!("bad filter line: {err}"))?
    };
    Filter::compile(&args).map_err(|err| err.to_string())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use tokio::io::AsyncBufReadExt;

    use super::*;
    use crate::output::EventLine;

    fn exec_line() -> EventLine {
        super::super::test_line("exec")
    }

    async fn connect(path: &Path, hello: &str) -> BufReader<UnixStream> {
        let mut stream = UnixStream::connect(path).await.unwrap();
        stream.write_all(hello.as_bytes()).await.unwrap();
        BufReader::new(stream)
    }

    async fn next_line(reader: &mut BufReader<UnixStream>) -> String {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        line
    }

    #[tokio::test]
    async fn socket_is_private_filters_are_checked_and_lines_flow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/sealwatch/tail.sock");
        let (server, mut hub) = start(&path, 8).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(matches!(start(&path, 8), Err(TailError::InUse(_))));

        let mut bad = connect(&path, "{\"rule\":[\"no-such-rule\"]}\n").await;
        assert!(next_line(&mut bad)
            .await
            .starts_with("{\"kind\":\"tail-error\""));

        let mut good = connect(&path, "{\"kind\":[\"exec\"]}\n").await;
        assert!(next_line(&mut good).await.contains("tail-subscribed"));
        let line = exec_line();
        hub.publish(&line, &line.to_json());
        assert_eq!(next_line(&mut good).await.trim_end(), line.to_json());

        drop(server);
        assert!(!path.exists(), "the socket is removed with the server");
    }
}
