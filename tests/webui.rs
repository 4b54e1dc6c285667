//! The web UI (issue 15) in real headless Chromium, driven by playwright-core
//! (`tests/fixtures/webui.js`), against one running service with two real-time testsrc
//! cameras and a known outage (one camera disabled for 4 s over the camera API):
//! login asked once, every camera shown, live video plays, the timeline's gap is where the
//! outage was, a click plays that moment, a chosen range downloads as a valid MP4 of that
//! range, status readable, logout ends the session, no console errors. Screenshots at
//! phone and desktop sizes go to `target/webui-screenshots/`. The UI's own replies (CSP,
//! ETag, 304) and its gzip size are checked over plain HTTP first.

mod common;
use common::http::{request, send};
use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ADMIN: &str = "admin-token-for-the-webui-test-0123456789";
/// The browser's zone (not UTC, so local days and clock times are exercised).
const TZ: &str = "Europe/Berlin";

fn admin(port: u16, method: &str, target: &str) -> common::http::Reply {
    send(port, method, target, &[("Authorization", &format!("Bearer {ADMIN}"))], b"")
}

fn frames(port: u16, id: &str) -> u64 {
    let st = admin(port, "GET", "/api/v1/status").json();
    let c = st["cameras"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap();
    c["frames"].as_u64().unwrap_or(0)
}

/// Local civil time in `TZ` of `us`, via date(1) (the test's own view, not the UI's).
fn local(us: i64, format: &str) -> String {
    let out = Command::new("date")
        .env("TZ", TZ)
        .args([&format!("-d@{}", us as f64 / 1e6), &format!("+{format}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn gzip_size(bytes: &[u8]) -> usize {
    use std::io::Write;
    let mut child = Command::new("gzip").arg("-9c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().stdout.len()
}

/// The UI's files over HTTP: headers, revalidation, and the whole UI's gzip size.
fn check_ui_replies(port: u16) {
    let page = request(port, "GET", "/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").expect("a CSP on the page").to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let etag = page.header("etag").unwrap().to_owned();
    let again = request(port, "GET", "/", &[("If-None-Match", &etag)]);
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(request(port, "GET", "/ui/nope.js", &[]).status, 404);
    let (mut raw, mut gz) = (page.body.len(), gzip_size(&page.body));
    let html = String::from_utf8(page.body).unwrap();
    // The page's own references, then every module each imports.
    let mut todo: Vec<String> = html.split("/ui/").skip(1).map(|r| r.split('"').next().unwrap().to_owned()).collect();
    let mut seen = Vec::new();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        let r = request(port, "GET", &format!("/ui/{name}"), &[]);
        assert_eq!(r.status, 200, "{name}");
        let ctype = r.header("content-type").unwrap();
        let want = match name.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => "image/svg+xml",
        };
        assert!(ctype.starts_with(want), "{name}: {ctype}");
        assert!(r.header("content-security-policy").is_some(), "{name}");
        (raw, gz) = (raw + r.body.len(), gz + gzip_size(&r.body));
        let text = String::from_utf8(r.body).unwrap();
        todo.extend(text.split("from './").skip(1).map(|r| r.split('\'').next().unwrap().to_owned()));
        seen.push(name);
    }
    assert!(seen.len() >= 8, "{seen:?}");
    eprintln!("web UI: {} files, {raw} bytes, {gz} bytes gzip -9 (file by file)", seen.len() + 1);
    assert!(gz <= 100_000, "the UI is {gz} bytes gzip: over issue 15's 100 KB budget");
}

fn chromium() -> &'static str {
    let c = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists());
    c.expect("Chromium is required (scripts/install-deps.sh test)")
}

fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe is required");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_web_ui_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = d.join("edgenvr.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{ADMIN}\"\n[recording]\nsync_interval = \"500ms\"\n\
             [[storage]]\npath = \"{}\"\n{}{}",
            d.join("data").display(),
            testsrc_camera("cam", 1.0, 300_000),
            testsrc_camera("yard", 1.0, 300_000),
        ),
    )
    .unwrap();
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(30), "the API", || TcpStream::connect(("127.0.0.1", port)).ok());
    check_ui_replies(port);
    // 12 s recorded, then the outage: cam disabled for 4 s, yard recording on.
    wait_for(Duration::from_secs(40), "12 s recorded", || (frames(port, "cam") > 180).then_some(()));
    assert_eq!(admin(port, "POST", "/api/v1/cameras/cam/disable").status, 200);
    let down = edgenvr::time::now_us();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(admin(port, "POST", "/api/v1/cameras/cam/enable").status, 200);
    let up = edgenvr::time::now_us();
    let before = frames(port, "cam");
    wait_for(Duration::from_secs(20), "cam recording again", || (frames(port, "cam") > before + 45).then_some(()));

    // An event before the outage, which the timeline must show with its label.
    let event_at = down - 3_000_000;
    let body =
        format!("{{\"label\":\"doorbell\",\"start\":{},\"end\":{}}}", event_at / 1_000_000, event_at / 1_000_000 + 1);
    let auth = format!("Bearer {ADMIN}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let ev = send(port, "POST", "/api/v1/cameras/cam/events", &headers, body.as_bytes());
    assert_eq!(ev.status, 201, "{}", String::from_utf8_lossy(&ev.body));
    let mid = (down + up) / 2;
    // A click 6 s before the outage; a range 10 s to 4 s before it (local clock times).
    let click_us = down - 6_000_000;
    let (range_from, range_to) = (down - 10_000_000, down - 4_000_000);
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/webui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let plan = serde_json::json!({
        "cameras": ["cam", "yard"], "camera": "cam", "tz": TZ, "outage_mid_us": mid,
        "day": local(mid, "%Y-%m-%d"), "click_us": click_us,
        "range": [local(range_from, "%H:%M:%S"), local(range_to, "%H:%M:%S")],
        "shots": shots, "downloads": d,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webui.js");
    let out = Command::new("node")
        .args([script, chromium(), &format!("http://127.0.0.1:{port}"), ADMIN, &plan.to_string()])
        .output()
        .expect("node runs (scripts/install-deps.sh test installs playwright-core)");
    let line = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|_| panic!("no result from Chromium: {line} {}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("webui: first live frame after {} ms in Chromium", r["firstFrameMs"]);
    assert!(r["error"].is_null(), "{r:#}");

    // Login asked once; the session cookie as designed; every camera shown.
    assert_eq!(r["loginAsked"], true);
    let cookie = &r["cookie"];
    assert_eq!((cookie["httpOnly"].as_bool(), cookie["sameSite"].as_str()), (Some(true), Some("Strict")), "{cookie}");
    assert_eq!(r["shown"], serde_json::json!(["cam", "yard"]), "{r:#}");
    assert!(r["gridStates"].as_array().unwrap().iter().all(|s| s.as_str().unwrap().starts_with("recording")), "{r:#}");

    // Live: plays, advances, close to now.
    let live = &r["live"];
    assert_eq!((live["mode"].as_str(), live["width"].as_i64()), (Some("live"), Some(320)), "{live}");
    assert!(live["advanced"].as_f64().unwrap() >= 2.0, "live video did not advance: {live}");
    assert!(live["lag"].as_f64().unwrap().abs() <= 3.0, "live frame not within 3 s of now: {live}");

    // The gap drawn where the outage was: its data and its pixels.
    let tl = &r["timeline"];
    let x = tl["x"].as_f64().unwrap();
    let covers = |p: &serde_json::Value| p["start"].as_i64().unwrap() <= mid && mid < p["end"].as_i64().unwrap();
    let gap =
        tl["gaps"].as_array().unwrap().iter().find(|g| covers(g)).unwrap_or_else(|| panic!("no gap at {mid}: {tl:#}"));
    let (gs, ge) = (gap["start"].as_i64().unwrap(), gap["end"].as_i64().unwrap());
    assert!((gs - down).abs() <= 1_500_000 && (ge - up).abs() <= 3_000_000, "gap {gs}..{ge}, outage {down}..{up}");
    let bx = (gap["box"][0].as_f64().unwrap(), gap["box"][1].as_f64().unwrap());
    assert!(bx.0 - 1.0 <= x && x <= bx.1 + 1.0, "the gap is drawn at {bx:?}, the outage is at x={x}");
    assert!(!tl["spans"].as_array().unwrap().iter().any(covers), "a recorded span covers the outage: {tl:#}");
    assert!(!tl["gapList"].as_array().unwrap().is_empty(), "gaps are listed as text too");
    let events = tl["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["label"] == "doorbell" && (e["start"].as_i64().unwrap() - event_at).abs() < 1_000_000),
        "the event is not on the timeline: {tl:#}"
    );

    // The click played that moment, through Range requests, within recorded footage.
    let p = &r["played"];
    let (from, wall) = (p["fromUs"].as_i64().unwrap(), p["wallUs"].as_i64().unwrap());
    assert!((from - click_us).abs() <= 1_500_000, "clicked {click_us}, played from {from}");
    assert!(wall > from + 1_000_000 && p["width"] == 320, "{p}");
    let rec = admin(
        port,
        "GET",
        &format!("/api/v1/cameras/cam/recordings?from={}&to={}", from / 1_000_000, wall / 1_000_000 + 1),
    );
    let runs = rec.json()["recordings"].as_array().unwrap().clone();
    assert!(
        runs.iter().any(|r| r["start_us"].as_i64().unwrap() <= from && wall <= r["end_us"].as_i64().unwrap()),
        "played {from}..{wall} is not inside one recording: {runs:?}"
    );
    assert!(r["rangeRequests"].as_u64() >= Some(1), "the player never sent Range: {r:#}");
    // ArrowLeft then Enter: a minute earlier, or (before the service started, not
    // recorded) from the start of the next recording.
    let k = r["keyboardFromUs"].as_i64().unwrap();
    let earlier = from - 60_000_000;
    let day = admin(
        port,
        "GET",
        &format!("/api/v1/cameras/cam/recordings?from={}&to={}", earlier / 1_000_000 - 1, from / 1_000_000),
    );
    let runs = day.json()["recordings"].as_array().unwrap().clone();
    let want = match runs.iter().find(|r| r["end_us"].as_i64().unwrap() > earlier) {
        Some(r) if r["start_us"].as_i64().unwrap() <= earlier => earlier,
        Some(r) => r["start_us"].as_i64().unwrap(),
        None => panic!("no recording after {earlier}: {runs:?}"),
    };
    assert!((k - want).abs() <= 1_000_000, "ArrowLeft then Enter played from {k}, expected {want} (clicked {from})");

    // The chosen range downloads as a valid MP4 of that length (within a GOP: 1 s).
    let dl = PathBuf::from(r["downloadPath"].as_str().unwrap());
    ffmpeg_decodes_mp4(&dl);
    let dur = ffprobe_duration(&dl);
    let want = (range_to / 1_000_000 - range_from / 1_000_000) as f64;
    assert!((dur - want).abs() <= 1.1, "downloaded {dur} s, asked {want} s");

    // Status readable; phone layout does not scroll sideways.
    assert!(r["statusText"].as_str().unwrap().contains("Reaper"), "{r:#}");
    assert!(r["phoneOverflow"].as_f64() <= Some(0.0) && r["phoneOverflowCamera"].as_f64() <= Some(0.0), "{r:#}");

    // Logout: the cookie is gone and the API refuses the browser.
    assert!(r["cookieAfterLogout"].is_null(), "{r:#}");
    assert_eq!(r["statusAfterLogout"], 401);
    assert_eq!(r["urlsWithToken"], 0, "a token appeared in a URL the page requested");

    // No console errors but the browser's own note of the 401s that ask for a login.
    let errors: Vec<&str> = r["console"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .filter(|e| !((e.starts_with("login:") || e.starts_with("logout:")) && e.contains("status of 401")))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    for f in
        ["desktop-cameras", "desktop-camera", "desktop-timeline", "desktop-status", "phone-cameras", "phone-camera"]
    {
        assert!(shots.join(format!("{f}.png")).exists(), "{f}");
    }
    assert!(svc.stop().success());
}
