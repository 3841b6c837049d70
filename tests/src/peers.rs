//! Peers for the network tests: a TCP listener that accepts and closes, a UDP listener that
//! records datagrams (and may answer each with fixed bytes), each on a thread of its own, recording
//! what it saw for the test to check. They serve sockets bound elsewhere, typically inside a
//! [`crate::netns::TestNet`] (a socket stays in the namespace it was created in, whichever thread
//! uses it). Every server stops when dropped.
//!
//! Addresses are recorded in canonical form: a dual-stack listener sees an IPv4 client as
//! `::ffff:a.b.c.d`, recorded as `a.b.c.d`.

use std::fmt::Debug;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long a server thread blocks in one step before it looks at its stop flag.
const STEP: Duration = Duration::from_millis(50);

/// A connection a [`TcpServer`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// The address and port the client connected to.
    pub local: SocketAddr,
}

/// A datagram a [`UdpServer`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub peer: SocketAddr,
    pub data: Vec<u8>,
}

/// A server thread and what it recorded.
pub struct Server<T> {
    what: String,
    local: SocketAddr,
    seen: Arc<Mutex<Vec<T>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Accepts connections and closes them at once.
pub type TcpServer = Server<Accepted>;
/// Receives datagrams.
pub type UdpServer = Server<Datagram>;

/// `addr` with an IPv4-mapped IPv6 address given as IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl<T: Clone + Debug + Send + 'static> Server<T> {
    /// Runs `step` on a new thread until the server is dropped. `step` waits at most about
    /// [`STEP`] and returns what it saw, if anything; an error is reported on stderr (the server
    /// keeps going: a test then fails on what was not recorded, with this in its output).
    pub fn spawn(
        what: String,
        local: SocketAddr,
        mut step: impl FnMut() -> io::Result<Option<T>> + Send + 'static,
    ) -> Result<Server<T>> {
        let seen: Arc<Mutex<Vec<T>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop, label) = (Arc::clone(&seen), Arc::clone(&stop), what.clone());
            thread::Builder::new()
                .name(what.chars().take(15).collect())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match step() {
                            Ok(Some(item)) => lock(&seen).push(item),
                            Ok(None) => {}
                            Err(e) => {
                                eprintln!("{label}: {e}");
                                thread::sleep(STEP);
                            }
                        }
                    }
                })
                .with_context(|| format!("starting the thread of {what}"))?
        };
        Ok(Server {
            what,
            local,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the server's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Everything recorded so far, in order.
    pub fn seen(&self) -> Vec<T> {
        lock(&self.seen).clone()
    }

    /// Waits until a recorded item satisfies `matches` and returns it; fails after `timeout`
    /// naming `description` and listing what was recorded.
    pub fn wait_for(
        &self,
        description: &str,
        timeout: Duration,
        matches: impl FnMut(&T) -> bool,
    ) -> Result<T> {
        self.wait_for_after(0, description, timeout, matches)
    }

    /// [`Server::wait_for`] among the items recorded after the first `skip` (e.g. `seen().len()`
    /// taken before the client ran).
    pub fn wait_for_after(
        &self,
        skip: usize,
        description: &str,
        timeout: Duration,
        mut matches: impl FnMut(&T) -> bool,
    ) -> Result<T> {
        let mut found = None;
        crate::cmd::poll_until(timeout, || {
            found = lock(&self.seen)
                .iter()
                .skip(skip)
                .find(|item| matches(item))
                .cloned();
            found.is_some()
        });
        match found {
            Some(item) => Ok(item),
            None => bail!(
                "{} did not see {description} within {timeout:?}; it saw: {:#?}",
                self.what,
                self.seen()
            ),
        }
    }
}

impl<T> Drop for Server<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panicked server thread only loses records; the test checks those.
            let _ = thread.join();
        }
    }
}

impl TcpServer {
    /// Serves `listener` (already bound and listening): accepts every connection, records it and
    /// closes it at once, so a client like `nc` sees end-of-file and exits 0.
    pub fn serve(listener: TcpListener) -> Result<TcpServer> {
        let local = canonical(
            listener
                .local_addr()
                .context("reading the listener's address")?,
        );
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        Server::spawn(
            format!("tcp server {local}"),
            local,
            move || match listener.accept() {
                Ok((stream, peer)) => {
                    let local = stream.local_addr().map_or(local, canonical);
                    Ok(Some(Accepted {
                        peer: canonical(peer),
                        local,
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(10));
                    Ok(None)
                }
                Err(e) => Err(e),
            },
        )
    }
}

impl UdpServer {
    /// Serves `socket` (already bound): records every datagram and, when `reply` is given, sends
    /// it back to the sender (for clients that wait for an answer, e.g. a TFTP error packet).
    pub fn serve(socket: UdpSocket, reply: Option<Vec<u8>>) -> Result<UdpServer> {
        let local = canonical(
            socket
                .local_addr()
                .context("reading the socket's address")?,
        );
        socket
            .set_read_timeout(Some(STEP))
            .context("setting the socket's read timeout")?;
        Server::spawn(format!("udp server {local}"), local, move || {
            let mut buf = [0u8; 2048];
            match socket.recv_from(&mut buf) {
                Ok((len, peer)) => {
                    if let Some(reply) = &reply {
                        if let Err(e) = socket.send_to(reply, peer) {
                            // The datagram is still recorded; the client may just wait longer.
                            eprintln!("udp server {local}: replying to {peer}: {e}");
                        }
                    }
                    Ok(Some(Datagram {
                        peer: canonical(peer),
                        data: buf[..len].to_vec(),
                    }))
                }
                Err(e) if is_timeout(&e) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }
}

/// A read timeout, as `recv` reports it.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means the server thread panicked; the records are still there.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
