//! The HTTP endpoint: `/metrics` (OpenMetrics text), `/healthz` (the process serves requests) and
//! `/readyz` (every program attached, every reader running). HTTP/1.1 only, GET and HEAD only,
//! a bounded number of connections and a header timeout: it is a scrape target, not a web server.
//!
//! It listens on the pod network, where any pod can connect. Connections are bounded per peer
//! address as well as in all: a pod that opens and holds connections (idle, or sending its
//! headers slowly) takes at most [`MAX_PER_PEER`] of them, so the kubelet's probes and
//! Prometheus, which come from other addresses, are still answered.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    body::{Bytes, Incoming},
    header::{ALLOW, CONTENT_TYPE},
    server::conn::http1,
    service::service_fn,
    Method, Request, Response, StatusCode,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use thiserror::Error;
use tokio::{net::TcpListener, sync::Semaphore};

use super::Metrics;

/// The content type of the OpenMetrics text format, which Prometheus 2.5+ negotiates and parses.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
/// Concurrent connections in all; Prometheus keeps one per scrape target, probes and humans add
/// a few.
const MAX_CONNECTIONS: usize = 64;
/// Concurrent connections from one address (one pod, or the node for the kubelet's probes).
pub const MAX_PER_PEER: usize = 4;
/// A client that has not sent its request headers by then is disconnected (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum HttpError {
    #[error(
        "cannot listen for metrics on {addr}: {source} (choose another --metrics-addr, or `none`)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the listener now, so a taken port fails start-up instead of going unnoticed.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Connections held per peer address; a [`PeerSlot`] gives its place back when dropped.
#[derive(Clone, Default)]
pub struct PeerSlots {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

pub struct PeerSlot {
    slots: PeerSlots,
    peer: IpAddr,
}

impl PeerSlots {
    /// A place for one more connection from `peer`, unless it holds [`MAX_PER_PEER`] already.
    pub fn take(&self, peer: IpAddr) -> Option<PeerSlot> {
        let mut held = self.held.lock().ok()?;
        let count = held.entry(peer).or_default();
        if *count >= MAX_PER_PEER {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            slots: self.clone(),
            peer,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.slots.held.lock() {
            if let Some(count) = held.get_mut(&self.peer) {
                *count -= 1;
                if *count == 0 {
                    held.remove(&self.peer);
                }
            }
        }
    }
}

/// Serves requests on `listener` until the task is dropped (the runtime shuts down).
pub fn spawn(listener: TcpListener, metrics: Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let peers = PeerSlots::default();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(%err, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(peer_slot) = peers.take(peer.ip()) else {
                tracing::debug!(%peer, "metrics endpoint: too many connections from one address, closing a new one");
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!("metrics endpoint: too many connections, closing a new one");
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let response = respond(&metrics, request.method(), request.uri().path());
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(err) = connection.await {
                    tracing::debug!(%err, "metrics endpoint: connection ended with an error");
                }
                drop((slot, peer_slot));
            });
        }
    })
}

/// The answer to `method path`: a pure function of the metrics, so it is tested without sockets.
pub fn respond(metrics: &Metrics, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => match metrics.encode() {
            Ok(text) => reply(StatusCode::OK, OPENMETRICS, text),
            Err(_) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                TEXT,
                "encoding the metrics failed\n",
            ),
        },
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" if metrics.is_ready() => reply(StatusCode::OK, TEXT, "ready\n"),
        "/readyz" => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "not ready: kernel programs are being loaded and attached\n",
        ),
        "/" => reply(
            StatusCode::OK,
            TEXT,
            "sealwatch: /metrics (OpenMetrics), /healthz, /readyz\n",
        ),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
