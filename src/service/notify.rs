//! The systemd notify protocol (`sd_notify(3)`), without a dependency: one datagram per
//! message to the socket named in `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace). Used for `READY=1`, `STOPPING=1`, `STATUS=...` and the watchdog.
//!
//! The watchdog is fed only while recording is actually healthy: every enabled camera's
//! source and writer loops must have made progress recently. A camera that is down but
//! retrying counts as progress; a wedged loop does not, so systemd restarts the service
//! instead of seeing a happy watchdog. The `watchdog` module decides that and sends through
//! this one, which does not know it.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where to send notifications.
#[derive(Clone, Debug)]
pub struct Notifier {
    socket: Option<PathBuf>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; a no-op notifier when it is unset (not run by systemd).
    pub fn from_env() -> Notifier {
        Notifier { socket: std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from) }
    }

    /// A notifier for an explicit socket path (tests).
    pub fn new(socket: PathBuf) -> Notifier {
        Notifier { socket: Some(socket) }
    }

    /// Sends `state` (e.g. `"READY=1\nSTATUS=recording 2 cameras"`). Returns false when
    /// there is no socket to send to.
    pub fn notify(&self, state: &str) -> std::io::Result<bool> {
        let Some(path) = &self.socket else { return Ok(false) };
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_os_str().as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            sock.send_to(state.as_bytes(), path)?;
        }
        Ok(true)
    }
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this process), if any.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path);
        assert!(n.notify("READY=1\nSTATUS=recording 1 camera").unwrap());
        assert!(n.notify("WATCHDOG=1").unwrap());
        let mut buf = [0u8; 256];
        let got = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"READY=1\nSTATUS=recording 1 camera");
        let got = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"WATCHDOG=1");
    }

    #[test]
    fn abstract_socket_names_work() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("edgenvr-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        assert!(Notifier::new(PathBuf::from(format!("@{name}"))).notify("STOPPING=1").unwrap());
        let mut buf = [0u8; 64];
        let got = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"STOPPING=1");
    }

    #[test]
    fn no_socket_is_a_quiet_no_op() {
        assert!(!Notifier { socket: None }.notify("READY=1").unwrap());
    }
}
