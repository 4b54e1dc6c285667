//! Every resource an HTTP client can make the service hold, with its cap and the reason for
//! it (`docs/design/http.md` has the same table). A client that reaches a cap gets a clear
//! status (or its connection closed), never more memory, threads or descriptors.
//!
//! | what | cap | when exceeded |
//! |---|---|---|
//! | request head (line + headers) | [`MAX_HEAD_BYTES`] | 431, connection closed |
//! | header fields | [`MAX_HEADERS`] | 431, connection closed |
//! | request target | [`MAX_TARGET`] | 414 |
//! | GET/HEAD body | never read | discarded unread (hyper reads what is already buffered, then closes the connection) |
//! | JSON body (POST/PUT) | [`MAX_JSON_BODY`], read within [`Limits::body_timeout`] | 413 / 408 |
//! | time to send a head (and idle keep-alive) | [`Limits::head_timeout`] | connection closed |
//! | response write without progress | [`Limits::write_stall`] | connection closed |
//! | connections | [`connection_cap`] (at most [`MAX_CONNECTIONS`]) | the one idle longest waiting for a head is closed; if none is idle, the new one is |
//! | threads | 1 (`http`) + [`BLOCKING_THREADS`] (`http-blocking`) | work waits for a permit |
//! | per-connection buffers | [`MAX_BUF`] read + [`MAX_BUF`] write, [`STREAM_CHUNK`] x [`STREAM_QUEUE`] in flight | back-pressure |
//! | kernel send buffer of a live stream | [`LIVE_SEND_BUFFER`] (the kernel counts twice that) | writes refused: the live hub skips or drops the viewer |
//! | sessions | [`MAX_SESSIONS`] | the least recently used is dropped |

use std::time::Duration;

/// Request line plus headers. Browsers send 1-2 KiB (cookies included); 16 KiB leaves room
/// for long query strings while a client streaming a header without end gets a 431 after
/// 16 KiB instead of growing memory.
pub const MAX_HEAD_BYTES: usize = 16 << 10;

/// Header fields per request. Browsers send about 15; hyper parses them into a table of
/// this many entries.
pub const MAX_HEADERS: usize = 64;

/// Request target (path and query). The longest we serve is an export URL with two RFC 3339
/// times and a token, well under 1 KiB.
pub const MAX_TARGET: usize = 4096;

/// Largest JSON request body (login today; camera changes later). Config-sized documents
/// are a few KiB.
pub const MAX_JSON_BODY: usize = 64 << 10;

/// hyper's per-connection read buffer cap (and write buffer cap). Bounds what a pipelining
/// or body-streaming client can make one connection buffer.
pub const MAX_BUF: usize = 64 << 10;

/// Bytes per piece of a streamed response body (file, export, list). Each piece is read on
/// the blocking pool and handed to the socket as soon as it is read.
pub const STREAM_CHUNK: usize = 32 << 10;

/// Pieces of a streamed body waiting for the socket: with [`STREAM_CHUNK`] this bounds a
/// slow reader's cost to 128 KiB plus hyper's write buffer, and lets a fast one get several
/// pieces per hand-off from the blocking pool.
pub const STREAM_QUEUE: usize = 4;

/// `SO_SNDBUF` of a connection once it carries a live stream (`live.mp4`). Linux counts
/// twice the value set (for its bookkeeping), so a viewer holds at most 512 KiB of kernel
/// memory, instead of the up to 4 MiB (`tcp_wmem`'s maximum) autotuning grows to. A client
/// that stops reading is then refused writes once about that much is queued: 14 s of a
/// 300 kbit/s camera, 1 s of a 4 Mbit/s one, instead of minutes; only then can the live
/// hub see it fall behind and skip or drop it (`docs/design/live.md`). It still carries
/// 256 KiB per round trip: hundreds of MiB/s on a LAN, 2.5 MiB/s at 100 ms, above any
/// camera's rate.
/// Other responses (exports, files) keep autotuning, for throughput over long paths.
pub const LIVE_SEND_BUFFER: u32 = 256 << 10;

/// Threads of the blocking pool that does files and SQLite for the API. The API's reads are
/// short (one page of rows, one piece of a file), so a few threads keep a Pi's cores for
/// recording. One of them is kept for health checks ([`HEALTH_PERMITS`]).
pub const BLOCKING_THREADS: usize = 4;

/// Blocking-pool threads health checks may use. The other requests share the rest, so a
/// busy API never makes `/api/v1/health` wait for a thread.
pub const HEALTH_PERMITS: usize = 1;

/// Most connections at once, whatever the descriptor limit: a handful of browsers (six
/// connections each) and players. Each costs one descriptor and up to ~200 KiB of buffers.
pub const MAX_CONNECTIONS: usize = 64;

/// Fewest connections the server runs with, even under a tiny descriptor limit.
pub const MIN_CONNECTIONS: usize = 8;

/// Descriptors the service needs besides cameras and the API: stdio, the index (database,
/// WAL, shared memory, per connection), logging, the listener, tokio's epoll and wakers,
/// the signal thread, systemd's notify socket, and room to spare.
pub const FD_RESERVE_BASE: u64 = 48;

/// Descriptors one camera may hold: its open chunk and directory, its RTSP socket (and the
/// RTP/RTCP pair with UDP transport), a V4L2 device and its encoder, a chunk being read by
/// recovery or the reaper.
pub const FD_RESERVE_PER_CAMERA: u64 = 8;

/// Descriptors one API connection may hold: its socket and the chunk file it is reading.
pub const FD_PER_CONNECTION: u64 = 2;

/// Sessions created by `POST /api/v1/login` kept at once; beyond it the least recently
/// used is dropped (its holder logs in again). Each costs about 150 bytes.
pub const MAX_SESSIONS: usize = 32;

/// A session unused for this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(24 * 3600);

/// A session older than this is dropped however much it is used.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The timeouts of a server; tests shorten them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From the moment a connection waits for a request head (accepted, or its previous
    /// response sent) to the head's last byte: bounds slow heads and idle keep-alive alike.
    pub head_timeout: Duration,
    /// A JSON body must arrive whole within this long after its head: a client trickling
    /// a body holds only its own connection, and only this long.
    pub body_timeout: Duration,
    /// A response write that makes no progress this long ends its connection: a client
    /// that stops reading holds its connection only this long.
    pub write_stall: Duration,
    /// Connections at once.
    pub max_connections: usize,
}

impl Limits {
    /// The service's limits for `cameras` cameras under the process's descriptor limit.
    pub fn for_service(cameras: usize) -> Limits {
        Limits {
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_stall: Duration::from_secs(30),
            max_connections: connection_cap(nofile_limit(), cameras),
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process (1024 if it cannot be read).
pub fn nofile_limit() -> u64 {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return 1024;
    }
    l.rlim_cur
}

/// Connections the API may hold under a descriptor limit of `nofile` with `cameras`
/// cameras: what is left after the recorder's reserve, [`FD_PER_CONNECTION`] each, within
/// [`MIN_CONNECTIONS`]..=[`MAX_CONNECTIONS`].
pub fn connection_cap(nofile: u64, cameras: usize) -> usize {
    let reserve = FD_RESERVE_BASE + FD_RESERVE_PER_CAMERA * cameras as u64;
    let spare = nofile.saturating_sub(reserve) / FD_PER_CONNECTION;
    (spare.min(MAX_CONNECTIONS as u64) as usize).max(MIN_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_recorder_its_descriptors() {
        // The unit's LimitNOFILE=1024 with the most cameras a config may have.
        let cams = crate::config::MAX_CAMERAS;
        let cap = connection_cap(1024, cams);
        assert_eq!(cap, MAX_CONNECTIONS);
        let used = FD_RESERVE_BASE + FD_RESERVE_PER_CAMERA * cams as u64 + FD_PER_CONNECTION * cap as u64;
        assert!(used <= 1024, "{used} descriptors at the cap");
        // A tight limit shrinks the cap; a tiny one keeps a few connections.
        assert_eq!(connection_cap(48 + 8 + 20, 1), 10);
        assert_eq!(connection_cap(10, 4), MIN_CONNECTIONS);
        assert_eq!(connection_cap(1 << 20, 0), MAX_CONNECTIONS);
    }
}
