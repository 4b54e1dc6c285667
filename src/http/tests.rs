//! The server in-process, on a listener bound to 127.0.0.1:0 and handed over, with short
//! timeouts: each limit of [`super::limits`] is reached and the server keeps answering.

use super::body::Body;
use super::limits::Limits;
use super::state::{AppState, CameraEntry, Parts};
use super::{start_with, HttpHandle, Pool};
use crate::config::Config;
use crate::index::{Index, NewChunk, Seal};
use crate::media::h26x::Codec;
use crate::shutdown::Shutdown;
use crate::storage::Storage;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    index: Arc<Index>,
    shutdown: Shutdown,
    http: Option<HttpHandle>,
    port: u16,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(h) = self.http.take() {
            h.join();
        }
    }
}

fn fixture(server: &str, limits: Limits) -> Fixture {
    fixture_live(server, limits, None)
}

fn fixture_live(server: &str, limits: Limits, live: Option<Arc<crate::live::hub::LiveHub>>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let cfg = format!(
        "[server]\n{server}\n[[storage]]\npath = \"{}\"\n[[camera]]\nid = \"cam\"\nsource = \"testsrc\"\n",
        root.display()
    );
    let config = Config::parse(&cfg).unwrap();
    let index = Arc::new(Index::open(&config.index_path).unwrap());
    let storage = Arc::new(Storage::open(&config.storage, &index).unwrap());
    let cameras = config.cameras.iter().map(|c| CameraEntry::new(c, &Arc::default(), live.clone())).collect();
    let events = Arc::new(crate::events::Events::new(index.clone(), &config, crate::time::now_us));
    let parts = Parts {
        index: index.clone(),
        storage,
        cameras: Arc::new(crate::http::state::CameraList::new(cameras)),
        reaper: Arc::default(),
        control: None,
        events,
        mqtt: None,
    };
    let state = Arc::new(AppState::new(&config, parts).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = Shutdown::new();
    let http = start_with(listener, state, &shutdown, limits).unwrap();
    Fixture { _dir: dir, root, index, shutdown, http: Some(http), port }
}

fn short() -> Limits {
    Limits {
        head_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        write_stall: Duration::from_secs(1),
        max_connections: 8,
    }
}

/// Sends `raw` on a new connection and returns the status code of the answer.
fn status_of(port: u16, raw: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(raw);
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).split(' ').nth(1)?.parse().ok()
}

fn health(port: u16) -> Option<u16> {
    status_of(port, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
}

/// Whether the server closed `s` (end of stream or reset) within `d`.
fn closed_within(s: &mut TcpStream, d: Duration) -> bool {
    s.set_read_timeout(Some(d)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}

#[test]
fn heads_beyond_the_limits_get_431() {
    let f = fixture("", short());
    let mut big = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', super::limits::MAX_HEAD_BYTES));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_of(f.port, &big), Some(431));
    let mut many = String::from("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..=super::limits::MAX_HEADERS {
        many += &format!("X-{i}: v\r\n");
    }
    assert_eq!(status_of(f.port, format!("{many}\r\n").as_bytes()), Some(431));
    let long = format!("GET /api/v1/status?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(5000));
    assert_eq!(status_of(f.port, long.as_bytes()), Some(400));
    assert_eq!(health(f.port), Some(503)); // no camera records here: healthy is false
}

#[test]
fn idle_and_slow_heads_are_closed_after_the_head_timeout() {
    let f = fixture("", short());
    let t = Instant::now();
    let mut idle = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    let head = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let trickle = std::thread::spawn(move || {
        for b in head {
            if slow.write_all(&[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    assert!(closed_within(&mut idle, Duration::from_secs(3)), "an idle connection stays open");
    assert!(t.elapsed() >= Duration::from_millis(400), "closed before the timeout: {:?}", t.elapsed());
    assert!(trickle.join().unwrap(), "a head trickled over 5 s was served");
    // Keep-alive: after a response the connection waits for the next head as long, no more.
    let mut ka = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    ka.write_all(head).unwrap();
    let mut buf = [0u8; 12];
    ka.read_exact(&mut buf).unwrap();
    assert!(closed_within(&mut ka, Duration::from_secs(3)));
}

#[test]
fn at_the_cap_the_connection_idle_longest_goes_and_health_answers() {
    let f = fixture("", Limits { head_timeout: Duration::from_secs(30), ..short() });
    let mut idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("127.0.0.1", f.port)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        assert_eq!(health(f.port), Some(503), "health at the cap ({i})");
    }
    // The oldest idle connections made room; the newest are still open.
    assert!(closed_within(&mut idle[0], Duration::from_secs(2)));
    assert!(!closed_within(&mut idle[7], Duration::from_millis(200)));
}

#[test]
fn a_client_that_stops_reading_is_dropped() {
    let f = fixture("", short());
    // A 64 MiB chunk (sparse: zeros cost no disk) indexed as sealed.
    let rel = PathBuf::from("cam/20260101/cam.20260101.0000.chunk");
    std::fs::create_dir_all(f.root.join(rel.parent().unwrap())).unwrap();
    let len = 64u64 << 20;
    std::fs::File::create(f.root.join(&rel)).unwrap().set_len(len).unwrap();
    let root = f.index.root_id(&f.root).unwrap();
    let n = NewChunk { camera: "cam", root_id: root, rel_path: &rel, start_us: 0, codec: Codec::H264 };
    let id = f.index.rotate(None, Some(&n)).unwrap().unwrap();
    f.index.seal(&Seal { id, end_us: 1, bytes: len, frames: 1, ..Seal::default() }).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    write!(s, "GET /api/v1/chunks/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    assert!(got > 0 && got < len, "{got} of {len} bytes: the stalled download was not dropped");
    assert_eq!(health(f.port), Some(503));
}

#[test]
fn get_bodies_are_never_read_and_json_bodies_are_bounded() {
    let f = fixture("token = \"admin-token-0123456789\"", short());
    let huge = "Content-Length: 1152921504606846976\r\n";
    let get = format!("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n{huge}\r\n");
    assert_eq!(status_of(f.port, get.as_bytes()), Some(503));
    let post = |ctype: &str, rest: &str| {
        let raw = format!("POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n{rest}");
        status_of(f.port, raw.as_bytes())
    };
    assert_eq!(post("application/json", &format!("{huge}\r\n")), Some(413));
    assert_eq!(post("text/plain", "Content-Length: 2\r\n\r\n{}"), Some(415));
    assert_eq!(post("application/json", "Content-Length: 2\r\n\r\n{}"), Some(400));
    let login = "{\"token\":\"admin-token-0123456789\"}";
    let ok = format!("Content-Length: {}\r\n\r\n{login}", login.len());
    assert_eq!(post("application/json; charset=utf-8", &ok), Some(200));
    // A body that does not come: 408 after the body timeout.
    let t = Instant::now();
    assert_eq!(post("application/json", "Content-Length: 100\r\n\r\n{"), Some(408));
    assert!(t.elapsed() >= short().body_timeout, "{:?}", t.elapsed());
}

/// Each piece a producer sends leaves at once: the client reads the first while the
/// producer has not finished (tiny_http held back 8 KiB).
#[test]
fn a_streamed_piece_reaches_the_client_before_the_producer_ends() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx_out, rx_out) = std::sync::mpsc::channel::<super::body::Sender>();
    let server = std::thread::spawn(move || {
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let (s, _) = l.accept().await.unwrap();
            let svc = hyper::service::service_fn(move |_req| {
                let (tx, body) = Body::channel(None);
                tx_out.send(tx).unwrap();
                async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(body)) }
            });
            let _ =
                hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(s), svc).await;
        })
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let producer = rx_out.recv_timeout(Duration::from_secs(5)).unwrap();
    producer.blocking_send(Ok(bytes::Bytes::from_static(b"first-fragment"))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("first-fragment") {
        let n = c.read(&mut buf).expect("the first piece arrives while the producer still runs");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    producer.blocking_send(Ok(bytes::Bytes::from_static(b"second"))).unwrap();
    drop(producer);
    c.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("transfer-encoding: chunked") && text.contains("second") && text.ends_with("0\r\n\r\n"),
        "{text}"
    );
    server.join().unwrap();
}

/// Health has a blocking thread of its own: with every other permit taken by slow work, a
/// health check still runs at once.
#[test]
fn health_never_waits_for_the_pool() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(super::limits::BLOCKING_THREADS)
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = Pool::new();
        let slow: Vec<_> = (0..8)
            .map(|_| {
                let p = pool.clone();
                tokio::spawn(async move { p.run(|| std::thread::sleep(Duration::from_secs(2))).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        pool.run_health(|| ()).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
        for s in slow {
            s.await.unwrap().unwrap();
        }
    });
}

#[test]
fn readers_are_separate_from_the_writers_connection() {
    let f = fixture("", short());
    // A request while the writers' connection is held by a long transaction elsewhere.
    let port = f.port;
    f.index
        .with_connection(|_| {
            let r = status_of(port, b"GET /api/v1/cameras/cam/chunks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            assert_eq!(r, Some(200));
            Ok(())
        })
        .unwrap();
}

/// `METHOD path` with `headers` and `body` on a new connection: (status, body).
fn call(port: u16, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        req += &format!("{h}\r\n");
    }
    if !body.is_empty() {
        req += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    s.write_all(format!("{req}\r\n{body}").as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, mut body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        while let Some((size, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            body = rest[n + 2..].to_owned();
        }
        body = out;
    }
    (status, body)
}

/// The events routes in-process: the admin starts and ends, a viewer may not, bodies are
/// refused naming the field, the list pages with `next`.
#[test]
fn events_routes_roles_validation_and_paging() {
    let admin = "admin-token-0123456789abcdef";
    let viewer = "viewer-token-0123456789abcd";
    let f = fixture(&format!("token = \"{admin}\"\nviewer_tokens = [\"{viewer}\"]"), short());
    let (a, v) = (format!("Authorization: Bearer {admin}"), format!("Authorization: Bearer {viewer}"));
    let post = |path: &str, auth: &str, body: &str| call(f.port, "POST", path, &[auth], body);
    let (st, body) = post("/api/v1/cameras/cam/events", &a, r#"{"label":"a b"}"#);
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("label:"), "{body}");
    assert_eq!(post("/api/v1/cameras/cam/events", &a, r#"{"label":"x","when":1}"#).0, 400);
    assert_eq!(post("/api/v1/cameras/cam/events", &v, r#"{"label":"x"}"#).0, 403);
    assert_eq!(post("/api/v1/cameras/cam/events", "X-None: 1", r#"{"label":"x"}"#).0, 401);
    assert_eq!(post("/api/v1/cameras/nope/events", &a, r#"{"label":"x"}"#).0, 404);
    let mut ids = Vec::new();
    for i in 0..3 {
        let (st, body) = post("/api/v1/cameras/cam/events", &a, &format!(r#"{{"label":"l{i}","note":"n"}}"#));
        assert_eq!(st, 201, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        ids.push(doc["id"].as_i64().unwrap());
    }
    let (st, body) = call(f.port, "POST", &format!("/api/v1/events/{}/end", ids[0]), &[&a], "");
    assert_eq!(st, 200, "{body}");
    assert_eq!(call(f.port, "POST", &format!("/api/v1/events/{}/end", ids[0]), &[&a], "").0, 400);
    assert_eq!(call(f.port, "POST", &format!("/api/v1/events/{}/end", ids[1]), &[&v], "").0, 403);
    let (st, body) = call(f.port, "GET", "/api/v1/events?limit=2", &[&v], "");
    assert_eq!(st, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, body) = call(f.port, "GET", &format!("/api/v1/events?limit=2&after={next}"), &[&v], "");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["events"][0]["id"], ids[2]);
    assert!(page["next"].is_null());
    let (st, body) = call(f.port, "GET", &format!("/api/v1/events/{}", ids[0]), &[&v], "");
    assert_eq!(st, 200);
    assert!(body.contains("\"links\""), "{body}");
    assert_eq!(call(f.port, "GET", "/api/v1/events?from=soon", &[&v], "").0, 400);
}

/// `live.mp4` in-process, fed by a thread publishing frames: the init segment and
/// fragments arrive as they are published (chunked, one piece per fragment), a second
/// viewer over the cap gets 503 with the JSON error, and a viewer that leaves frees its
/// slot.
#[test]
fn live_mp4_streams_fragments_and_enforces_the_cap() {
    use crate::live::hub::LiveHub;
    use crate::media::frame::EncodedFrame;
    let hub = LiveHub::new("cam", 1);
    let f = fixture_live("", short(), Some(hub.clone()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let (hub, stop) = (hub.clone(), stop.clone());
        let params: Vec<Vec<u8>> = crate::testutil::encoded_frames(64, 48, 0, 1)
            .remove(0)
            .nals()
            .filter(|n| Codec::H264.classify(n).is_parameter_set())
            .map(|n| n.to_vec())
            .collect();
        std::thread::spawn(move || {
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut fr = EncodedFrame::new(crate::time::now_us(), Codec::H264);
                let key = i % 10 == 0;
                if key {
                    params.iter().for_each(|p| fr.push_nal(p));
                }
                fr.push_nal(&[if key { 0x65 } else { 0x41 }, 0x11, 0x22, 0x33]);
                hub.publish(&fr);
                i += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
        })
    };
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    s.write_all(b"GET /api/v1/cameras/cam/live.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let t = Instant::now();
    while got.windows(4).filter(|w| w == b"moof").count() < 5 && t.elapsed() < Duration::from_secs(5) {
        let n = s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-type: video/mp4; codecs=\"avc1."), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
    assert!(got.windows(4).any(|w| w == b"ftyp") && got.windows(4).any(|w| w == b"moov"));
    assert_eq!(hub.stats.viewers.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The cap (1): the next viewer is refused with the API's error shape.
    let mut other = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    other
        .write_all(b"GET /api/v1/cameras/cam/live.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut refused = String::new();
    other.read_to_string(&mut refused).unwrap();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("{\"error\":") && refused.contains("max_viewers"), "{refused}");
    // Leaving frees the slot (at the next fragment, when the send fails).
    drop(s);
    let t = Instant::now();
    while hub.stats.viewers.load(std::sync::atomic::Ordering::Relaxed) != 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "the slot was not freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status_of(f.port, b"GET /api/v1/cameras/nope/live.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), Some(404));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
}
