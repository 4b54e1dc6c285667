//! The HTTP API against the real service: exports checked with ffprobe/ffmpeg and played by
//! Chromium, byte ranges against the whole body, the lists, and hostile requests.

mod common;
use common::http::{get, request};
use common::*;
use edgenvr::time::format_rfc3339;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const FPS: i64 = 15;

/// The tests of this file run one at a time: the connection flood puts thousands of
/// threads on two cores for a moment, which would starve the 10x-speed cameras of the
/// tests beside it and turn their waits into timeouts.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a service recording testsrc at 10x speed (a chunk every 6 s) on a free port.
fn start(d: &Path, extra_server: &str) -> (Service, u16, std::path::PathBuf) {
    let port = free_port();
    let cfg = d.join("edgenvr.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n{extra_server}\n[recording]\nsync_interval = \"500ms\"\n\
             [[storage]]\npath = \"{}\"\n{}",
            d.join("data").display(),
            testsrc_camera("cam", 10.0, 200_000)
        ),
    )
    .unwrap();
    let svc = Service::start(&cfg, d);
    (svc, port, cfg)
}

/// Raises this process's open-file limit (children inherit it) so a connection flood tests
/// the server, not the machine's default limit.
fn raise_fd_limit(want: u64) {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a valid, writable struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        let target = (want as libc::rlim_t).max(l.rlim_cur);
        l.rlim_max = l.rlim_max.max(target); // root may raise the hard limit
        l.rlim_cur = target;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}

fn sealed(d: &Path) -> Vec<edgenvr::index::ChunkRow> {
    sealed_rows(&d.join("data/index.db"))
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn exports_lists_and_ranges() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (svc, port, cfg) = start(d, "");
    let rows = wait_for(Duration::from_secs(90), "four sealed chunks", || {
        let r = sealed(d);
        (r.len() >= 4).then_some(r)
    });
    // From 7.3 s into the first chunk to 3.1 s before the end of the third: two boundaries.
    let from = rows[0].start_us + 7_300_000;
    let to = rows[2].end_us - 3_100_000;
    let q = format!("from={}&to={}", format_rfc3339(from).replace(':', "%3A"), to as f64 / 1e6);

    // MP4: ffprobe and ffmpeg agree it is whole, the right length, every frame there.
    let mp4 = get(port, &format!("/api/v1/cameras/cam/export.mp4?{q}"));
    assert_eq!(mp4.status, 200, "{}", String::from_utf8_lossy(&mp4.body));
    assert_eq!(mp4.header("content-type"), Some("video/mp4"));
    assert_eq!(mp4.header("accept-ranges"), Some("bytes"));
    let f = d.join("export.mp4");
    std::fs::write(&f, &mp4.body).unwrap();
    ffmpeg_decodes_mp4(&f);
    let p = ffprobe(&f);
    let s = &p["streams"][0];
    let want_s = (to - from) as f64 / 1e6;
    let duration: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - want_s).abs() <= 1.0 / FPS as f64, "duration {duration} s, asked for {want_s} s");
    let read: i64 = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    let want_frames = (to - from) * FPS / 1_000_000;
    assert!((read - want_frames).abs() <= 1, "{read} frames played, expected {want_frames}");
    assert_eq!((s["width"].as_i64(), s["height"].as_i64()), (Some(320), Some(240)));
    assert_eq!(s["codec_name"], "h264");

    // Ranges against the whole body.
    let len = mp4.body.len() as u64;
    for (range, start, end) in [
        ("bytes=0-99".to_string(), 0, 100),
        (format!("bytes={}-", len - 1000), len - 1000, len),
        ("bytes=-777".to_string(), len - 777, len),
        (format!("bytes=1000-{}", len / 2), 1000, len / 2 + 1),
        (format!("bytes={}-{}", len / 3, len / 3 + 70_000), len / 3, len / 3 + 70_001),
    ] {
        let r = request(port, "GET", &format!("/api/v1/cameras/cam/export.mp4?{q}"), &[("Range", &range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, mp4.body[start as usize..end as usize], "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes {start}-{}/{len}", end - 1).as_str()));
    }
    let r =
        request(port, "GET", &format!("/api/v1/cameras/cam/export.mp4?{q}"), &[("Range", &format!("bytes={len}-"))]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{len}").as_str()));
    let etag = mp4.header("etag").unwrap().to_owned();
    // If-Range: the range applies while the ETag still names this file, else the whole file.
    let r = request(
        port,
        "GET",
        &format!("/api/v1/cameras/cam/export.mp4?{q}"),
        &[("Range", "bytes=0-99"), ("If-Range", &etag)],
    );
    assert_eq!((r.status, &r.body[..]), (206, &mp4.body[..100]));
    let r = request(
        port,
        "GET",
        &format!("/api/v1/cameras/cam/export.mp4?{q}"),
        &[("Range", "bytes=0-99"), ("If-Range", "\"other\"")],
    );
    assert_eq!((r.status, r.body.len()), (200, mp4.body.len()));
    assert_eq!(
        request(port, "GET", &format!("/api/v1/cameras/cam/export.mp4?{q}"), &[("If-None-Match", &etag)]).status,
        304
    );
    let head = request(port, "HEAD", &format!("/api/v1/cameras/cam/export.mp4?{q}"), &[]);
    assert_eq!((head.status, head.header("content-length")), (200, Some(len.to_string().as_str())));
    assert!(head.body.is_empty());
    // The same export over SSH: `edgenvr export ... -o -` writes it to stdout, byte for byte.
    let cli = edgenvr()
        .args(["export", "--config", cfg.to_str().unwrap(), "--camera", "cam", "-o", "-", "--log-level", "warn"])
        .args(["--from", &format_rfc3339(from), "--to", &format!("{}", to as f64 / 1e6)])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    assert!(
        cli.stdout == mp4.body,
        "CLI export differs from the API's ({} vs {} bytes)",
        cli.stdout.len(),
        mp4.body.len()
    );

    // Annex B: the same frames as the MP4 holds.
    let h264 = get(port, &format!("/api/v1/cameras/cam/export.h264?{q}"));
    assert_eq!(h264.status, 200);
    let mp4_frames: u64 = s["nb_frames"].as_str().unwrap().parse().unwrap();
    assert_eq!(ffmpeg_decode(&h264.body, d), mp4_frames);

    // Lists.
    let chunks = get(port, "/api/v1/cameras/cam/chunks?limit=2").json();
    assert_eq!(chunks["chunks"].as_array().unwrap().len(), 2);
    let next = chunks["next"].as_str().expect("more pages").to_owned();
    let page2 = get(port, &format!("/api/v1/cameras/cam/chunks?limit=2&after={next}")).json();
    assert_ne!(page2["chunks"][0]["id"], chunks["chunks"][0]["id"]);
    let id = chunks["chunks"][0]["id"].as_i64().unwrap();
    let raw = get(port, &format!("/api/v1/chunks/{id}"));
    let row = rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(raw.body, std::fs::read(d.join("data").join(&row.rel_path)).unwrap());
    let sealed_before = sealed(d).iter().map(|r| r.end_us).max().unwrap();
    let recs = get(port, "/api/v1/cameras/cam/recordings").json();
    assert_eq!(recs["recordings"].as_array().unwrap().len(), 1, "one uninterrupted run: {recs}");
    assert_eq!(recs["gaps"].as_array().unwrap().len(), 0);
    assert!(recs["recordings"][0]["chunks"].as_u64().unwrap() >= 4);
    // The run goes on in the chunk being written: marked live, ending past every sealed chunk.
    assert_eq!(recs["recordings"][0]["live"], true, "{recs}");
    assert!(recs["recordings"][0]["end_us"].as_i64().unwrap() > sealed_before, "{recs}");

    // Status and PyNVR's routes.
    let st = get(port, "/api/v1/status").json();
    assert_eq!(st["cameras"][0]["state"], "recording");
    assert_eq!(st["cameras"][0]["encoder"], "openh264");
    assert!(st["storage"][0]["writable"].as_bool().unwrap());
    assert_eq!(get(port, "/api/v1/health").status, 200);
    assert_eq!(get(port, "/api/1/cameras.json").status, 200);
    let c = edgenvr::time::Civil::from_us(rows[1].start_us);
    let minute = format!("{}.{}", c.yyyymmdd(), c.hhmm());
    let py = get(port, &format!("/api/1/range/cam.{minute}.to.{minute}.mp4"));
    assert_eq!(py.status, 200, "{}", String::from_utf8_lossy(&py.body));
    std::fs::write(d.join("py.mp4"), &py.body).unwrap();
    ffmpeg_decodes_mp4(&d.join("py.mp4"));

    // The minute being recorded exports too: a range after the last sealed chunk is served
    // from the open chunk (retried if a chunk happens to seal during the request).
    let (live, live_url) = wait_for(Duration::from_secs(30), "an export served from the open chunk", || {
        let from = sealed(d).iter().map(|r| r.end_us).max().unwrap() + 1;
        let url =
            format!("/api/v1/cameras/cam/export.mp4?from={}&to={}", from as f64 / 1e6, from as f64 / 1e6 + 3600.0);
        let r = get(port, &url);
        if sealed(d).iter().any(|r| r.start_us >= from) {
            return None;
        }
        assert!(matches!(r.status, 200 | 404), "{}", String::from_utf8_lossy(&r.body));
        (r.status == 200).then_some((r, url))
    });
    std::fs::write(d.join("live.mp4"), &live.body).unwrap();
    ffmpeg_decodes_mp4(&d.join("live.mp4"));
    let frames: i64 = ffprobe(&d.join("live.mp4"))["streams"][0]["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(frames >= 1, "{frames}");
    // It grows as recording goes on: a Range sent with the first ETag in If-Range gets the
    // whole new file (200), not a slice of a different layout; with the new ETag, a 206.
    let old_etag = live.header("etag").unwrap().to_owned();
    let grown = wait_for(Duration::from_secs(30), "the live export to grow", || {
        let r = get(port, &live_url);
        (r.status == 200 && r.header("etag") != Some(old_etag.as_str())).then_some(r)
    });
    assert!(grown.body.len() > live.body.len());
    let r = request(port, "GET", &live_url, &[("Range", "bytes=0-99"), ("If-Range", &old_etag)]);
    assert_eq!(r.status, 200);
    assert!(r.body.len() >= grown.body.len(), "{} < {}", r.body.len(), grown.body.len());

    assert!(svc.stop().success());
}

#[test]
fn hostile_requests_get_clear_errors_and_recording_goes_on() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    raise_fd_limit(8192);
    let token = "an-api-token-of-some-length";
    let (svc, port, cfg) = start(d, &format!("token = \"{token}\""));
    wait_for(Duration::from_secs(60), "a sealed chunk", || sealed(d).first().map(|_| ()));
    let auth = format!("Bearer {token}");
    // `edgenvr status` reads the running service with the configured token.
    let out = edgenvr().args(["status", "--config", cfg.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.code() == Some(0) || out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("cam") && text.contains("recording") && text.contains("storage:"), "{text}");
    let get_auth = |t: &str| request(port, "GET", t, &[("Authorization", &auth)]);

    // Tokens: health is open, the rest is not.
    assert!(matches!(get(port, "/api/v1/health").status, 200 | 503));
    assert_eq!(get(port, "/api/v1/status").status, 401);
    assert_eq!(request(port, "GET", "/api/v1/status", &[("Authorization", "Bearer wrong")]).status, 401);
    assert_eq!(get_auth("/api/v1/status").status, 200);
    assert_eq!(get(port, &format!("/api/v1/status?token={token}")).status, 200);

    // Traversal in every parameter, bad times, huge and reversed ranges, bad limits.
    let day = 86_400;
    let now = edgenvr::time::now_us() / 1_000_000;
    for (target, want) in [
        ("/api/v1/cameras/..%2F..%2Fetc%2Fpasswd/chunks".to_string(), 404),
        ("/api/v1/cameras/../../etc/passwd".to_string(), 404),
        ("/api/v1/cameras/cam/chunks?from=../../etc/passwd".to_string(), 400),
        ("/api/v1/cameras/cam/export.mp4?from=/etc/passwd&to=1".to_string(), 400),
        ("/api/v1/cameras/cam/export.mp4?from=1&to=..%2F..".to_string(), 400),
        ("/api/v1/chunks/..%2F..%2Fetc%2Fpasswd".to_string(), 400),
        ("/api/v1/chunks/1%2F..%2F..".to_string(), 400),
        ("/api/v1/chunks/999999999".to_string(), 404),
        ("/api/1/range/..%2F..%2Fetc.20261121.1456.to.20261121.1457.mp4".to_string(), 400),
        ("/api/1/range/etc.20261121.1456.to.20261121.1457.mp4".to_string(), 404),
        ("/api/1/range/cam.2026x121.1456.to.20261121.1457.mp4".to_string(), 400),
        ("/api/1/range/cam.20261121.1500.to.20261121.1456.mp4".to_string(), 400),
        (format!("/api/v1/cameras/cam/export.mp4?from={}&to={now}", now - 2 * day), 400),
        (format!("/api/v1/cameras/cam/export.mp4?from={now}&to={}", now - 60), 400),
        ("/api/v1/cameras/cam/export.mp4?from=yesterday&to=today".to_string(), 400),
        ("/api/v1/cameras/cam/export.mp4".to_string(), 400),
        ("/api/v1/cameras/cam/export.mp4?from=1&to=2".to_string(), 404),
        ("/api/v1/cameras/cam/chunks?limit=0".to_string(), 400),
        ("/api/v1/cameras/cam/chunks?limit=99999999999".to_string(), 400),
        ("/api/v1/cameras/cam/chunks?after=nonsense".to_string(), 400),
        ("/nope".to_string(), 404),
        (format!("/api/v1/status?{}", "x".repeat(5000)), 400),
    ] {
        let r = get_auth(&target);
        assert_eq!(r.status, want, "{target}: {}", String::from_utf8_lossy(&r.body));
        let j = r.json();
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{target}: {j}");
    }
    assert_eq!(request(port, "POST", "/api/v1/status", &[("Authorization", &auth)]).status, 400);
    // A Range header that overflows is ignored, not a crash.
    let q = format!("from={}&to={}", sealed(d)[0].start_us / 1_000_000, sealed(d)[0].end_us / 1_000_000);
    let r = request(
        port,
        "GET",
        &format!("/api/v1/cameras/cam/export.h264?{q}"),
        &[("Authorization", &auth), ("Range", "bytes=0-99999999999999999999999")],
    );
    assert_eq!(r.status, 200);
    // The raw format follows the footage: H.264 is never served under an .h265 name.
    let r = get_auth(&format!("/api/v1/cameras/cam/export.h265?{q}"));
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let e = r.json()["error"].as_str().unwrap_or_default().to_owned();
    assert!(e.contains("/api/v1/cameras/cam/export.h264"), "{e}");

    // Thousands of idle connections: the API keeps answering, the server closes all but its
    // cap (64), and recording never stops. Both processes run with the raised descriptor
    // limit (the service inherited it from this test, which raised it before starting it);
    // tests/http_hostile.rs floods the service under the unit's own limit.
    const FLOOD: usize = 2000;
    let frames_before = get_auth("/api/v1/status").json()["cameras"][0]["frames"].as_u64().unwrap();
    let conns: Vec<std::net::TcpStream> =
        (0..FLOOD).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    assert_eq!(get_auth("/api/v1/health").status, 200, "the API answers during the flood");
    std::thread::sleep(Duration::from_secs(3));
    let closed = conns
        .iter()
        .filter(|c| {
            // Closed by the server: end of stream or reset. Still open: the read times out.
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut b = [0u8; 1];
            let mut s: &std::net::TcpStream = c;
            match std::io::Read::read(&mut s, &mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            }
        })
        .count();
    assert!(closed >= FLOOD - 64 - 10, "the server closed only {closed} of {FLOOD} idle connections");
    drop(conns);
    let st = get_auth("/api/v1/status").json();
    assert!(st["cameras"][0]["frames"].as_u64().unwrap() > frames_before, "recording went on");
    assert!(svc.stop().success());
}

#[test]
fn chromium_plays_the_export_in_a_video_element() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (svc, port, _) = start(d, "");
    let rows = wait_for(Duration::from_secs(60), "two sealed chunks", || {
        let r = sealed(d);
        (r.len() >= 2).then_some(r)
    });
    let (from, to) = (rows[0].start_us + 2_000_000, rows[1].end_us - 2_000_000);
    let url =
        format!("http://127.0.0.1:{port}/player.html?camera=cam&from={}&to={}", from as f64 / 1e6, to as f64 / 1e6);
    let state = chromium_player_state(&d.join("chromium-profile"), &url);
    assert!(state["error"].is_null(), "{state}");
    assert!(state["readyState"].as_i64().unwrap() >= 1, "{state}");
    assert_eq!(state["videoWidth"].as_i64(), Some(320), "{state}");
    let duration = state["duration"].as_f64().unwrap();
    let want = (to - from) as f64 / 1e6;
    assert!((duration - want).abs() <= 1.0 / FPS as f64, "Chromium sees {duration} s, asked for {want} s: {state}");
    assert!(svc.stop().success());
}
