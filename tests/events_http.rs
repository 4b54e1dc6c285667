//! The events routes and `edgenvr event` against the real service: roles (admin changes,
//! viewers read only their cameras' events), CSRF for sessions, bodies refused with the
//! field named, keyset paging with `next`, one event's links; the CLI starts, ends and lists
//! through the running service, and says what it does when the service is down.

mod common;
use common::http::{request, send, Reply};
use common::*;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const ADMIN: &str = "admin-token-0123456789abcdef";
const DOOR: &str = "viewer-token-of-door-only-1";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn post(port: u16, path: &str, auth: &str, body: &str) -> Reply {
    send(port, "POST", path, &[("Authorization", auth), ("Content-Type", "application/json")], body.as_bytes())
}

fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = edgenvr().args(["event"]).args(args).arg("--config").arg(config).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn events_over_http_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let config = d.join("edgenvr.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{ADMIN}\"\nviewer_tokens = [{{ token = \"{DOOR}\", cameras = [\"door\"] }}]\n\
             [recording]\nsync_interval = \"500ms\"\n[[storage]]\npath = \"{}\"\n{}[[camera]]\nid = \"door\"\nsource = \"testsrc\"\nenabled = false\n",
            d.join("data").display(),
            testsrc_camera("cam", 1.0, 100_000)
        ),
    )
    .unwrap();
    // The service is down: start refuses and says why; list reads the index.
    let (code, _, err) = cli(&config, &["start", "cam", "--label", "x"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("does not answer") && err.contains("is it running"), "{err}");

    let svc = Service::start(&config, d);
    wait_for(Duration::from_secs(30), "the API", || TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()));
    let admin = bearer(ADMIN);

    // Validation: 400 naming the field, nothing stored.
    for (body, field) in [
        ("{}", "label"),
        (r#"{"label": 5}"#, "label"),
        (r#"{"label": "a b"}"#, "label"),
        (r#"{"label": "x", "start": "soon"}"#, "start"),
        (r#"{"label": "x", "colour": 1}"#, "colour"),
        (r#"{"label": "x", "note": "a\nb"}"#, "note"),
    ] {
        let r = post(port, "/api/v1/cameras/cam/events", &admin, body);
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"].as_str().unwrap().to_owned();
        assert!(msg.starts_with(&format!("{field}:")), "{body}: {msg}");
    }
    assert_eq!(post(port, "/api/v1/cameras/nope/events", &admin, r#"{"label":"x"}"#).status, 404);

    // Roles: a viewer may not change anything; no token is 401; a URL token never changes state.
    assert_eq!(post(port, "/api/v1/cameras/door/events", &bearer(DOOR), r#"{"label":"x"}"#).status, 403);
    assert_eq!(
        send(port, "POST", "/api/v1/cameras/cam/events", &[("Content-Type", "application/json")], b"{\"label\":\"x\"}")
            .status,
        401
    );
    let url_token = format!("/api/v1/cameras/cam/events?token={ADMIN}");
    assert_eq!(
        send(port, "POST", &url_token, &[("Content-Type", "application/json")], b"{\"label\":\"x\"}").status,
        401
    );

    // A session needs the CSRF token.
    let login = send(
        port,
        "POST",
        "/api/v1/login",
        &[("Content-Type", "application/json")],
        format!("{{\"token\":\"{ADMIN}\"}}").as_bytes(),
    );
    assert_eq!(login.status, 200);
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let csrf = login.json()["csrf_token"].as_str().unwrap().to_owned();
    let h = [("Cookie", cookie.as_str()), ("Content-Type", "application/json")];
    assert_eq!(send(port, "POST", "/api/v1/cameras/cam/events", &h, b"{\"label\":\"x\"}").status, 403, "no CSRF token");
    let h = [("Cookie", cookie.as_str()), ("Content-Type", "application/json"), ("X-CSRF-Token", csrf.as_str())];
    let via_session = send(port, "POST", "/api/v1/cameras/cam/events", &h, b"{\"label\":\"session\"}");
    assert_eq!(via_session.status, 201, "{}", String::from_utf8_lossy(&via_session.body));

    // Start now, end it; a finished one after the fact; one on the door camera.
    let e = post(port, "/api/v1/cameras/cam/events", &admin, r#"{"label":"doorbell","note":"parcel"}"#);
    assert_eq!(e.status, 201);
    let e = e.json();
    assert_eq!(
        (e["active"].as_bool(), e["source"].as_str(), e["pre_capture_s"].as_f64()),
        (Some(true), Some("api"), Some(5.0))
    );
    let id = e["id"].as_i64().unwrap();
    let ended = post(port, &format!("/api/v1/events/{id}/end"), &admin, "");
    assert_eq!(ended.status, 200);
    assert_eq!(ended.json()["active"], false);
    assert_eq!(post(port, &format!("/api/v1/events/{id}/end"), &admin, "").status, 400, "already ended");
    assert_eq!(post(port, "/api/v1/events/999999/end", &admin, "").status, 404);
    let past = post(
        port,
        "/api/v1/cameras/cam/events",
        &admin,
        r#"{"label":"old","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:10Z"}"#,
    );
    assert_eq!(past.status, 201);
    assert_eq!(post(port, "/api/v1/cameras/door/events", &admin, r#"{"label":"porch"}"#).status, 201);

    // One event with links.
    let one = request(port, "GET", &format!("/api/v1/events/{id}"), &[("Authorization", &admin)]).json();
    assert!(one["links"]["mp4"].as_str().unwrap().starts_with("/api/v1/cameras/cam/export.mp4?from="), "{one}");
    assert_eq!(
        request(port, "GET", &format!("/api/v1/events/{id}"), &[("Authorization", &bearer(DOOR))]).status,
        404,
        "not the viewer's camera"
    );

    // Lists: paging with next, filters, a viewer sees only its cameras.
    let list =
        |q: &str, auth: &str| request(port, "GET", &format!("/api/v1/events?{q}"), &[("Authorization", auth)]).json();
    let p1 = list("limit=2", &admin);
    assert_eq!(p1["events"].as_array().unwrap().len(), 2);
    let next = p1["next"].as_str().unwrap().to_owned();
    let p2 = list(&format!("limit=2&after={next}"), &admin);
    assert_eq!(p2["events"].as_array().unwrap().len(), 2);
    assert!(
        list(&format!("limit=2&after={}", p2["next"].as_str().unwrap_or("0:0")), &admin)["events"]
            .as_array()
            .unwrap()
            .is_empty()
            || p2["next"].is_null()
    );
    let labels: Vec<String> = list("camera=cam&label=doorbell", &admin)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels, ["doorbell"]);
    let viewer: Vec<String> = list("", &bearer(DOOR))["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["camera"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(viewer, ["door"]);
    assert_eq!(request(port, "GET", "/api/v1/events?from=never", &[("Authorization", &admin)]).status, 400);

    // The CLI, through the running service.
    let (code, out, err) = cli(&config, &["start", "cam", "--label", "cli-test", "--json"]);
    assert_eq!(code, 0, "{err}");
    let started: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(started["source"], "cli");
    let cid = started["id"].as_i64().unwrap().to_string();
    let (code, _, err) = cli(&config, &["end", &cid]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cli(&config, &["list", "--camera", "cam", "--label", "cli-test"]);
    assert_eq!(code, 0);
    assert!(out.contains("cli-test") && out.contains(" cli "), "{out}");
    let (code, _, err) = cli(&config, &["start", "cam", "--label", "bad label"]);
    assert_eq!(code, 2, "{err}");
    assert!(svc.stop().success());
    // Down again: list still answers from the index.
    let (code, out, err) = cli(&config, &["list", "--label", "cli-test"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cli-test") && err.contains("reading the index directly"), "{out}{err}");
}
