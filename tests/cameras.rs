//! Cameras managed over the API against the real service (`src/service/cameras.rs`): added,
//! changed, removed, enabled and disabled while another camera keeps recording; persisted
//! across a restart; `SIGHUP` reloads the config file's cameras. RTSP cameras come from
//! GStreamer's RTSP server (tests/common/rtsp.rs); the rest are testsrc (cheaper).

mod common;
use common::http::{request, send, Reply};
#[path = "common/rtsp.rs"]
mod rtsp_peers;
use common::*;
use rtsp_peers::{Media, RtspServer};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-token-0123456789";
const VIEWER: &str = "viewer-token-0123456789";
const NEW_VIEWER: &str = "viewer-token-new-0123456789";

fn write_config(d: &Path, port: u16, cameras: &str) -> PathBuf {
    write_config_viewer(d, port, VIEWER, cameras)
}

fn write_config_viewer(d: &Path, port: u16, viewer: &str, cameras: &str) -> PathBuf {
    let cfg = d.join("edgenvr.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{ADMIN}\"\nviewer_tokens = [\"{viewer}\"]\n\
             [recording]\nsync_interval = \"500ms\"\n[[storage]]\npath = \"{}\"\n{cameras}",
            d.join("data").display(),
        ),
    )
    .unwrap();
    cfg
}

fn admin(port: u16, method: &str, target: &str, body: &str) -> Reply {
    let auth = format!("Bearer {ADMIN}");
    let mut h = vec![("Authorization", auth.as_str())];
    if !body.is_empty() {
        h.push(("Content-Type", "application/json"));
    }
    send(port, method, target, &h, body.as_bytes())
}

/// The camera documents of `GET /api/v1/cameras`, by id.
fn cameras(port: u16) -> Vec<serde_json::Value> {
    let r = request(port, "GET", "/api/v1/cameras", &[("Authorization", &format!("Bearer {ADMIN}"))]);
    assert_eq!(r.status, 200);
    r.json()["cameras"].as_array().unwrap().clone()
}

fn camera(port: u16, id: &str) -> Option<serde_json::Value> {
    cameras(port).into_iter().find(|c| c["id"] == id)
}

fn ids(port: u16) -> Vec<String> {
    cameras(port).iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

/// The ids in the state file.
fn saved_ids(d: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(d.join("data/cameras.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["cameras"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

/// Starts the service and waits for its API.
fn start(cfg: &Path, d: &Path, port: u16) -> Service {
    let svc = Service::start(cfg, d);
    wait_for(Duration::from_secs(20), "the API to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    svc
}

/// Waits until camera `id` has written frames; returns how long that took.
fn wait_recording(port: u16, id: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    wait_for(within, &format!("camera {id} to record"), || {
        camera(port, id).filter(|c| c["state"] == "recording" && c["frames"].as_u64() > Some(0)).map(|_| ())
    });
    t0.elapsed()
}

/// Recorded runs of `id` (one while it records without a gap).
fn runs(port: u16, id: &str) -> usize {
    let r = request(
        port,
        "GET",
        &format!("/api/v1/cameras/{id}/recordings"),
        &[("Authorization", &format!("Bearer {ADMIN}"))],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["recordings"].as_array().unwrap().len()
}

/// One service life: add an RTSP camera (recording within 10 s), change its URL (only it
/// reconnects: the other camera's recording has no gap), a bad body and a viewer change
/// nothing, two changes at once both land, delete keeps the footage exportable; then a
/// restart keeps the list and `SIGHUP` brings back the config file's cameras.
#[test]
fn cameras_change_live_persist_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = RtspServer::start(&[("a", Media::H264Small), ("b", Media::H264Small)]);
    let port = free_port();
    let cfg = write_config(d, port, &testsrc_camera("keep", 1.0, 100_000));
    let svc = start(&cfg, d, port);
    wait_recording(port, "keep", Duration::from_secs(20));
    assert!(!d.join("data/cameras.json").exists(), "nothing is written before the first change");

    // Add: recording within 10 s.
    let r = admin(port, "POST", "/api/v1/cameras", &format!(r#"{{"id": "ip", "url": "{}"}}"#, server.url("a")));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let took = wait_recording(port, "ip", Duration::from_secs(10));
    eprintln!("POST to first frame of the RTSP camera: {} ms", took.as_millis());
    assert_eq!(saved_ids(d), ["keep", "ip"]);

    // A viewer may change nothing, by any route.
    let viewer = format!("Bearer {VIEWER}");
    let json = ("Content-Type", "application/json");
    for (m, t, b) in [
        ("POST", "/api/v1/cameras", r#"{"id": "v", "source": "testsrc"}"#),
        ("PUT", "/api/v1/cameras/ip", r#"{"source": "testsrc"}"#),
        ("DELETE", "/api/v1/cameras/ip", ""),
        ("POST", "/api/v1/cameras/ip/disable", ""),
        ("POST", "/api/v1/cameras/ip/enable", ""),
        ("GET", "/api/v1/discover", ""),
    ] {
        let r = send(port, m, t, &[("Authorization", &viewer), json], b.as_bytes());
        assert_eq!(r.status, 403, "{m} {t}: {}", String::from_utf8_lossy(&r.body));
    }
    // A token in the URL is not a credential for a change (auth.rs, rule 4).
    let r = send(port, "DELETE", &format!("/api/v1/cameras/ip?token={ADMIN}"), &[], b"");
    assert_eq!(r.status, 401);

    // An invalid body: 400 naming the key, nothing changed.
    let r = admin(port, "POST", "/api/v1/cameras", r#"{"id": "bad", "url": "http://cam/x"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "camera[2].url: must start with rtsp://");
    let r = admin(port, "PUT", "/api/v1/cameras/ip", r#"{"url": "rtsp://x", "fps": 0, "source": "testsrc"}"#);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(admin(port, "DELETE", "/api/v1/cameras/nope", "").status, 404);
    assert_eq!((ids(port), saved_ids(d)), (vec!["keep".to_owned(), "ip".to_owned()], vec!["keep".into(), "ip".into()]));

    // Change its URL: only it reconnects; the other camera records on without a gap.
    let (keep_before, ip_before) = (camera(port, "keep").unwrap(), camera(port, "ip").unwrap());
    let r = admin(port, "PUT", "/api/v1/cameras/ip", &format!(r#"{{"url": "{}"}}"#, server.url("b")));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    wait_recording(port, "ip", Duration::from_secs(10));
    let ip_after = camera(port, "ip").unwrap();
    assert_ne!(ip_after["since"], ip_before["since"], "ip restarted");
    std::thread::sleep(Duration::from_secs(2));
    let keep_after = camera(port, "keep").unwrap();
    assert_eq!(keep_after["connects"], keep_before["connects"]);
    assert_eq!(keep_after["since"], keep_before["since"], "keep was not restarted");
    assert!(keep_after["frames"].as_u64().unwrap() >= keep_before["frames"].as_u64().unwrap() + 20);
    assert_eq!((keep_after["frames_dropped"].as_u64(), keep_after["gaps"].as_u64()), (Some(0), Some(0)));
    assert_eq!(runs(port, "keep"), 1, "keep recorded without a gap");

    // Two changes at once: serialized, both applied and persisted.
    let posts: Vec<_> = ["c1", "c2"]
        .map(|id| {
            std::thread::spawn(move || {
                admin(port, "POST", "/api/v1/cameras", &format!(r#"{{"id": "{id}", "source": "testsrc", "fps": 5}}"#))
                    .status
            })
        })
        .into_iter()
        .collect();
    for p in posts {
        assert_eq!(p.join().unwrap(), 201);
    }
    let mut saved = saved_ids(d);
    saved.sort();
    assert_eq!(saved, ["c1", "c2", "ip", "keep"]);
    wait_recording(port, "c1", Duration::from_secs(10));
    wait_recording(port, "c2", Duration::from_secs(10));

    // Disable and enable.
    assert_eq!(admin(port, "POST", "/api/v1/cameras/c2/disable", "").status, 200);
    let c2 = camera(port, "c2").unwrap();
    assert_eq!((c2["enabled"].as_bool(), c2["state"].as_str()), (Some(false), Some("idle")), "{c2}");
    assert_eq!(admin(port, "POST", "/api/v1/cameras/c2/enable", "").status, 200);
    wait_recording(port, "c2", Duration::from_secs(10));

    // Delete: recording stops, the footage still exports.
    assert_eq!(admin(port, "DELETE", "/api/v1/cameras/c1", "").status, 200);
    assert!(camera(port, "c1").is_none());
    let now = edgenvr::time::now_us() as f64 / 1e6;
    let q = format!("from={}&to={}", now - 600.0, now + 60.0);
    let mp4 = admin(port, "GET", &format!("/api/v1/cameras/c1/export.mp4?{q}"), "");
    assert_eq!(mp4.status, 200, "{}", String::from_utf8_lossy(&mp4.body));
    let f = d.join("c1.mp4");
    std::fs::write(&f, &mp4.body).unwrap();
    ffmpeg_decodes_mp4(&f);

    // Restart: the list is the state file's, not the config file's.
    assert!(svc.stop().success());
    let svc = start(&cfg, d, port);
    wait_recording(port, "ip", Duration::from_secs(20));
    assert_eq!(ids(port), ["keep", "ip", "c2"]);

    // SIGHUP: the config file's cameras again (persisted); an unchanged camera keeps running;
    // the viewer token is the new one.
    let keep_before = camera(port, "keep").unwrap();
    let two = format!("{}{}", testsrc_camera("keep", 1.0, 100_000), testsrc_camera("hup", 1.0, 100_000));
    write_config_viewer(d, port, NEW_VIEWER, &two);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGHUP) };
    wait_for(Duration::from_secs(10), "SIGHUP to reload the cameras", || (ids(port) == ["keep", "hup"]).then_some(()));
    assert_eq!(saved_ids(d), ["keep", "hup"]);
    let as_viewer = |t: &str| request(port, "GET", "/api/v1/cameras", &[("Authorization", &format!("Bearer {t}"))]);
    assert_eq!((as_viewer(VIEWER).status, as_viewer(NEW_VIEWER).status), (401, 200), "tokens not reloaded");
    wait_recording(port, "hup", Duration::from_secs(10));
    assert_eq!(camera(port, "keep").unwrap()["since"], keep_before["since"], "keep was not restarted");
    // A config file that does not load changes nothing.
    std::fs::write(&cfg, "[[camera]]\nid = \"x\"\n").unwrap();
    unsafe { libc::kill(svc.child.id() as i32, libc::SIGHUP) };
    wait_for(Duration::from_secs(10), "the bad reload to be logged", || {
        svc.log_text().contains("cameras unchanged").then_some(())
    });
    assert_eq!(ids(port), ["keep", "hup"]);
    assert!(svc.stop().success());
    drop(server);
}
