//! Connections: accepting them within the cap, serving each with hyper (HTTP/1.1), and
//! closing those that hold resources without using them (see [`super::limits`]).
//!
//! Everything runs on one current-thread tokio runtime on the thread `http`, apart from
//! the recorder's runtime (`rtsp`) and threads, so a busy API can never delay ingest;
//! blocking work goes to the runtime's small blocking pool ([`super::Pool`]).
//!
//! Each connection is tracked: whether a request is in flight, since when it has been
//! waiting for a request head, and since when a write has been refused by the socket.
//! - At the cap, a new connection closes the tracked one that has waited longest for a
//!   request head; if every connection has a request in flight, the new one is closed.
//! - hyper's header-read timer runs from the moment a connection starts waiting for a head
//!   (accepted, or its previous response sent) to the head's end, so it bounds slow heads
//!   and idle keep-alive connections alike.
//! - A sweep every [`SWEEP`] closes connections whose writes made no progress for
//!   [`super::limits::Limits::write_stall`].

use super::conn::ConnState;
use super::limits::{Limits, MAX_BUF, MAX_HEADERS, MAX_HEAD_BYTES};
use super::App;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// How often stalled writes are looked for.
pub const SWEEP: Duration = Duration::from_secs(1);

struct Tracked {
    id: u64,
    state: Arc<ConnState>,
    close: Arc<Notify>,
}

/// The live connections.
pub(crate) struct Tracker {
    /// A std mutex: held for a scan of at most `max_connections` entries.
    conns: Mutex<Vec<Tracked>>,
    next_id: AtomicU64,
    /// The clock of every [`ConnState`].
    epoch: Instant,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker { conns: Mutex::default(), next_id: AtomicU64::new(0), epoch: Instant::now() }
    }

    fn add(&self) -> (u64, Arc<ConnState>, Arc<Notify>) {
        let state = Arc::new(ConnState::new(self.epoch));
        let id = self.next_id.fetch_add(1, Relaxed);
        let close = Arc::new(Notify::new());
        self.lock().push(Tracked { id, state: state.clone(), close: close.clone() });
        (id, state, close)
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|t| t.id != id);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Tracked>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the connection that has waited longest for a request head; false if every
    /// connection has a request in flight.
    fn evict_idlest(&self) -> bool {
        let conns = self.lock();
        let idlest = conns
            .iter()
            // Waiting for a head: no request in flight, no response bytes still queued.
            .filter(|t| t.state.busy.load(Relaxed) == 0 && t.state.blocked_since_ms.load(Relaxed) == 0)
            .min_by_key(|t| t.state.idle_since_ms.load(Relaxed));
        match idlest {
            Some(t) => {
                t.close.notify_one();
                // Counted as gone now: its task closes the socket at its next poll.
                let id = t.id;
                drop(conns);
                self.remove(id);
                true
            }
            None => false,
        }
    }

    /// Closes connections whose writes have been refused for longer than `stall`.
    fn close_stalled(&self, stall: Duration) -> usize {
        let conns = self.lock();
        let mut n = 0;
        for t in conns.iter() {
            let since = t.state.blocked_since_ms.load(Relaxed);
            if since != 0 && t.state.now_ms().saturating_sub(since) > stall.as_millis() as u64 {
                t.close.notify_one();
                n += 1;
            }
        }
        n
    }

    fn close_all(&self) {
        for t in self.lock().iter() {
            t.close.notify_one();
        }
    }
}

/// A TCP stream that tells its [`ConnState`] when writes stall and resume.
struct Io {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl Io {
    /// Applies a send buffer size a response asked for ([`ConnState::cap_send_buffer`]).
    fn apply_send_buffer_cap(&self) {
        if self.state.send_buffer_cap.load(Relaxed) == 0 {
            return;
        }
        let bytes = self.state.send_buffer_cap.swap(0, Relaxed);
        if let Err(e) = socket2::SockRef::from(&self.inner).set_send_buffer_size(bytes as usize) {
            log::debug!("http: setting SO_SNDBUF to {bytes} failed: {e}");
        }
    }

    fn note<T>(&self, r: &Poll<std::io::Result<T>>) {
        match r {
            Poll::Pending => {
                let _ = self.state.blocked_since_ms.compare_exchange(0, self.state.now_ms(), Relaxed, Relaxed);
            }
            Poll::Ready(_) => self.state.blocked_since_ms.store(0, Relaxed),
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.apply_send_buffer_cap();
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.apply_send_buffer_cap();
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's settings: HTTP/1.1 only, the head limits, the header-read timer.
fn builder(limits: &Limits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_BUF)
        .keep_alive(true);
    b
}

/// Accepts and serves connections until `stop` turns true, then closes them all.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let tracker = Arc::new(Tracker::new());
    let builder = Arc::new(builder(&app.limits));
    let sweeper = tokio::spawn(sweep(tracker.clone(), app.limits.write_stall));
    let mut refused = 0u64;
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors (or another passing error): say so now and then, and
                // let the cap and the timeouts free some.
                if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    log::warn!("http: accepting a connection failed: {e}");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tracker.len() >= app.limits.max_connections && !tracker.evict_idlest() {
            refused += 1;
            if refused.is_power_of_two() {
                log::warn!(
                    "http: {refused} connection(s) refused: all {} have a request in flight",
                    app.limits.max_connections
                );
            }
            continue; // dropping the stream closes it
        }
        let _ = stream.set_nodelay(true);
        let (id, state, close) = tracker.add();
        let (app, builder, tracker) = (app.clone(), builder.clone(), tracker.clone());
        tokio::spawn(async move {
            let io = TokioIo::new(Io { inner: stream, state: state.clone() });
            let svc = hyper::service::service_fn(move |req| super::dispatch::handle(app.clone(), state.clone(), req));
            let conn = builder.serve_connection(io, svc);
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        log::debug!("http: connection ended: {e}");
                    }
                }
                _ = close.notified() => log::debug!("http: connection closed by the server"),
            }
            tracker.remove(id);
        });
        // Let the connections just accepted read their heads before the next accept, so a
        // flood of new connections cannot evict a client that is about to send its request.
        tokio::task::yield_now().await;
    }
    sweeper.abort();
    tracker.close_all();
}

async fn sweep(tracker: Arc<Tracker>, stall: Duration) {
    let mut tick = tokio::time::interval(SWEEP);
    loop {
        tick.tick().await;
        let n = tracker.close_stalled(stall);
        if n > 0 {
            log::debug!("http: closed {n} connection(s) whose client stopped reading");
        }
    }
}
