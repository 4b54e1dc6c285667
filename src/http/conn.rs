//! What the server knows of one connection, shared by the connection tracker (`server.rs`,
//! which picks connections to close) and the requests on it (`dispatch.rs`, which marks
//! them in flight and done).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// What the tracker knows of one connection (shared with its task and its requests).
pub(crate) struct ConnState {
    /// Requests in flight: from the head's arrival to the end of the response body.
    pub(super) busy: AtomicU32,
    /// Tracker milliseconds since when the connection has had no request in flight.
    pub(super) idle_since_ms: AtomicU64,
    /// Tracker milliseconds since when the socket has refused writes (0: it has not).
    pub(super) blocked_since_ms: AtomicU64,
    /// A kernel send buffer size a response asked for, applied by the socket wrapper
    /// before its next write (0: none pending); see [`ConnState::cap_send_buffer`].
    pub(super) send_buffer_cap: AtomicU32,
    /// The tracker's clock.
    epoch: Instant,
}

impl ConnState {
    /// A connection just accepted, waiting for its first request head; `epoch` is the
    /// tracker's clock.
    pub(super) fn new(epoch: Instant) -> ConnState {
        let c = ConnState {
            busy: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(0),
            blocked_since_ms: AtomicU64::new(0),
            send_buffer_cap: AtomicU32::new(0),
            epoch,
        };
        c.idle_since_ms.store(c.now_ms(), Relaxed);
        c
    }

    /// Milliseconds on the tracker's clock (never 0, which means "not set").
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// A request head arrived.
    pub(crate) fn request_started(&self) {
        self.busy.fetch_add(1, Relaxed);
    }

    /// Asks for the socket's kernel send buffer (`SO_SNDBUF`) to be `bytes` from the next
    /// write on, for the rest of the connection. A live stream asks for it so that a client
    /// that stops reading is refused writes within seconds instead of the minutes Linux's
    /// send-buffer autotuning (up to `tcp_wmem`'s 4 MiB) would take, which is what lets the
    /// live hub see it fall behind (`docs/design/live.md`).
    pub(crate) fn cap_send_buffer(&self, bytes: u32) {
        self.send_buffer_cap.store(bytes, Relaxed);
    }

    /// Its response was sent (or dropped).
    pub(crate) fn request_done(&self) {
        self.idle_since_ms.store(self.now_ms(), Relaxed);
        self.busy.fetch_sub(1, Relaxed);
    }
}
