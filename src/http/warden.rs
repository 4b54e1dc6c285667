//! Keeps the HTTP server's connections bounded.
//!
//! tiny_http 0.12 serves each connection on its own thread and has neither an idle timeout
//! nor a connection limit (tiny-http/tiny-http#15 was about exactly this), so a client that
//! opens connections and sends nothing, or reads a download at a trickle, would pin threads
//! for ever. Setting `SO_RCVTIMEO` on the listener is no fix: Linux applies it to `accept()`
//! too, and tiny_http's accept loop ends on the resulting error.
//!
//! The warden looks at this process's own sockets every [`SCAN_INTERVAL`]: each connection
//! to our listening port that has neither sent nor received data for [`IDLE_LIMIT`] is shut
//! down, as are the most idle ones beyond [`MAX_CONNECTIONS`]. A shut-down socket makes its
//! tiny_http thread (or the handler writing to it) fail at once and end.

use crate::shutdown::Shutdown;
use std::os::fd::RawFd;
use std::time::Duration;

/// How often the warden looks.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(1);
/// A connection with no traffic either way for this long is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(20);
/// Most connections kept open at once.
pub const MAX_CONNECTIONS: usize = 64;

/// The local port of `fd` if it is a connected (not listening) TCP socket.
fn connection_port(fd: RawFd) -> Option<u16> {
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: addr/len describe a writable sockaddr_storage.
    if unsafe { libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) } != 0 {
        return None;
    }
    let port = match addr.ss_family as i32 {
        libc::AF_INET => u16::from_be(unsafe { (*(&addr as *const _ as *const libc::sockaddr_in)).sin_port }),
        libc::AF_INET6 => u16::from_be(unsafe { (*(&addr as *const _ as *const libc::sockaddr_in6)).sin6_port }),
        _ => return None,
    };
    let mut listening: libc::c_int = 0;
    let mut l = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `listening` is a writable c_int of the given length.
    let ok = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN, &mut listening as *mut _ as *mut _, &mut l)
    };
    (ok == 0 && listening == 0).then_some(port)
}

/// Milliseconds since the socket last sent or received data.
fn idle_ms(fd: RawFd) -> Option<u32> {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable tcp_info of the given length.
    let ok =
        unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info as *mut _ as *mut _, &mut len) };
    (ok == 0).then(|| info.tcpi_last_data_recv.min(info.tcpi_last_data_sent).min(info.tcpi_last_ack_recv))
}

/// One scan: returns how many connections it closed.
pub fn scan(port: u16) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return 0 };
    let mut conns: Vec<(RawFd, u32)> = Vec::new();
    for e in dir.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()) else { continue };
        if connection_port(fd) == Some(port) {
            if let Some(idle) = idle_ms(fd) {
                conns.push((fd, idle));
            }
        }
    }
    conns.sort_by_key(|c| std::cmp::Reverse(c.1));
    let excess = conns.len().saturating_sub(MAX_CONNECTIONS);
    let mut closed = 0;
    for (i, (fd, idle)) in conns.iter().enumerate() {
        if i < excess || *idle as u128 >= IDLE_LIMIT.as_millis() {
            // Re-check right before acting: the fd may have been closed and reused.
            if connection_port(*fd) == Some(port) {
                // SAFETY: shutting down a socket fd we own; it stays open until its owner
                // closes it, so no other fd is affected.
                unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
                closed += 1;
            }
        }
    }
    closed
}

/// Runs the warden on its own thread until shutdown.
pub fn spawn(port: u16, shutdown: Shutdown) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("http-warden".into()).spawn(move || {
        while !shutdown.wait_timeout(SCAN_INTERVAL) {
            let n = scan(port);
            if n > 0 {
                log::info!("http: closed {n} idle or excess connections");
            }
        }
    })
}
