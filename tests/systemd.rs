//! The systemd integration: the unit passes `systemd-analyze verify`, rates well in
//! `systemd-analyze security`, and the real service speaks the notify protocol (READY,
//! watchdog pings while healthy, STOPPING) to a socket of the test's own.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The unit with ExecStart pointing at the binary under test (verify checks it exists).
fn unit_copy(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/edgenvr.service")).unwrap();
    let p = dir.join("edgenvr.service");
    std::fs::write(&p, unit.replace("/usr/bin/edgenvr", bin())).unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/media-usb0.mount"), dir.join("media-usb0.mount"))
        .unwrap();
    p
}

#[test]
fn unit_verifies_and_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    unit_copy(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["verify", "edgenvr.service", "media-usb0.mount"])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (package systemd) is required");
    assert!(out.status.success() && out.stderr.is_empty(), "verify: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", "edgenvr.service"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for edgenvr.service:").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 2.0, "exposure {score} (want <= 2.0):\n{text}");
}

#[test]
fn service_notifies_ready_feeds_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock_path = d.join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let cfg = d.join("edgenvr.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n[[storage]]\npath = \"{}\"\n{}",
            free_port(),
            d.join("data").display(),
            testsrc_camera("cam", 1.0, 100_000)
        ),
    )
    .unwrap();
    let svc =
        Service::start_env(&cfg, d, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "1000000")]);
    let mut buf = [0u8; 512];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(first.starts_with("READY=1\n") && first.contains("STATUS=recording 1 camera"), "{first}");
    // WATCHDOG_USEC=1 s: a ping every 0.5 s while the camera records.
    let pings = (0..4).map(|_| recv()).filter(|m| m == "WATCHDOG=1").count();
    assert_eq!(pings, 4);
    // SIGINT: STOPPING before the process ends.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGINT) };
    let mut saw_stopping = false;
    for _ in 0..10 {
        let m = recv();
        if m.starts_with("STOPPING=1") {
            saw_stopping = true;
            break;
        }
    }
    assert!(saw_stopping);
    assert!(svc.wait_exit().success());
}
