//! B-frame cameras (issue 13) against GStreamer's real RTSP server: H.264 and H.265 with
//! B-frames (IBBP, presentation times on the RTP packets, frames in decode order) recorded
//! for over two minutes. Catches a clock that stamps frames in decode order (on main the
//! timestamps of a 140 s recording spanned 228 s), a writer that takes B-frames for a clock
//! going back, and exports whose frames are presented out of order.

mod common;
#[path = "common/rtsp.rs"]
mod rtsp_peers;

use common::*;
use edgenvr::index::{ChunkRow, ChunkState};
use edgenvr::time::{now_us, US_PER_MIN};
use rtsp_peers::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A reader of PyNVR's record layout written apart from edgenvr's (Python `struct`):
/// `u8 version | u64 BE µs | u64 BE length | NAL`, per file: records, earliest and latest
/// timestamp, and how many records are stamped before the record stored before them.
const PYNVR_READER: &str = r#"
import struct, sys
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    pos, n, lo, hi, back, prev = 0, 0, None, None, 0, None
    while pos < len(data):
        ver, ts, ln = struct.unpack_from(">BQQ", data, pos)
        assert ver == 0 and pos + 17 + ln <= len(data), (path, pos)
        pos += 17 + ln
        n += 1
        lo = ts if lo is None else min(lo, ts)
        hi = ts if hi is None else max(hi, ts)
        back += prev is not None and ts < prev
        prev = ts
    print(n, lo, hi, back)
"#;

#[test]
fn b_frame_cameras_record_at_true_times_for_two_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cams = [("avc", Media::H264B), ("hevc", Media::H265B)];
    let server = RtspServer::start(&cams);
    let port = free_port();
    let urls: Vec<(&str, String)> = cams.iter().map(|(id, _)| (*id, server.url(id))).collect();
    let cfg_path = cameras_config(d, &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"), &urls, "5s", "");
    let t_launch = now_us();
    let started = Instant::now();
    let svc = Service::start(&cfg_path, d);
    // Two minutes at least, and two minute boundaries crossed by every camera.
    while started.elapsed() < Duration::from_secs(125) || cams.iter().any(|(id, _)| camera_rows(d, id).len() < 3) {
        if started.elapsed() > Duration::from_secs(240) {
            let spans: Vec<_> = cams
                .iter()
                .map(|(id, _)| {
                    (id, camera_rows(d, id).iter().map(|r| (r.start_us, r.end_us, r.frames)).collect::<Vec<_>>())
                })
                .collect();
            panic!("no two minute boundaries in 240 s: {spans:?}\n{}", svc.log_text());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    chromium_plays_in_order(d, port, &camera_rows(d, "avc"));
    std::thread::sleep(Duration::from_secs(2));
    let t_stop = now_us();
    assert!(svc.stop().success());

    for (id, media) in &cams {
        let (codec, fps, gop) = media.params();
        let frame_us = 1_000_000 / fps as i64;
        let rows = camera_rows(d, id);
        assert!(rows.len() >= 3 && rows.iter().all(|r| r.state == ChunkState::Sealed), "{id}: {rows:#?}");
        assert!(rows.iter().all(|r| r.codec.as_str() == codec));
        // Rotation at the first keyframe after each minute boundary; chunks follow each other
        // frame to frame (a clock pushed by B-frames drifts ahead and rotates early or late).
        for w in rows.windows(2) {
            let boundary = (w[0].start_us / US_PER_MIN + 1) * US_PER_MIN;
            assert!(w[1].start_us >= boundary, "{id}: rotated before the minute");
            assert!(w[1].start_us - boundary < gop as i64 * frame_us + 50_000, "{id}: late rotation");
            let gap = w[1].start_us - w[0].end_us;
            assert!(gap > 0 && gap < frame_us * 3 / 2, "{id}: gap {gap} µs between chunks");
        }
        // Timestamps track the wall clock within a second at both ends of 2+ minutes.
        let (first, last) = (rows[0].start_us, rows.last().unwrap().end_us);
        assert!(first >= t_launch && first - t_launch < 3_000_000, "{id}: first frame {} µs in", first - t_launch);
        assert!((t_stop - last).abs() < 1_000_000, "{id}: last frame {} µs from the stop", t_stop - last);
        // Every frame the server sent over the span is there, within a GOP, and decodes.
        let fmt = if codec == "h265" { "hevc" } else { "h264" };
        let mut frames = 0;
        for r in &rows {
            let decoded = ffmpeg_decode_as(&annex_b(&[d.join("data").join(&r.rel_path)]), d, fmt);
            assert_eq!(decoded, r.frames, "{}: ffmpeg frames vs index", r.rel_path.display());
            frames += decoded as i64;
        }
        let expected = (last - first) / frame_us + 1;
        assert!((frames - expected).abs() <= gop as i64, "{id}: {frames} frames, expected {expected}");
        // PyNVR's record layout still reads every file, records stay in decode order with
        // presentation times, and the index spans each file's earliest to latest time.
        let files: Vec<String> =
            rows.iter().map(|r| d.join("data").join(&r.rel_path).to_string_lossy().into_owned()).collect();
        let out = Command::new("/usr/bin/python3").args(["-c", PYNVR_READER]).args(&files).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for (r, line) in rows.iter().zip(String::from_utf8_lossy(&out.stdout).lines()) {
            let v: Vec<i64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            assert_eq!((v[0] as u64, v[1], v[2]), (r.records.unwrap(), r.start_us, r.end_us), "{id}: {line}");
            assert!(v[3] as u64 >= r.frames / 4, "{id}: B-frames are stored after the frames they follow");
        }
        export_presents_in_order(d, &cfg_path, id, &rows, fps);
    }
    drop(server);
}

/// Exports across the first minute boundary: ffmpeg decodes it without an error or a
/// warning, and the frames come out in presentation order, one frame time apart, as many
/// as were recorded in the range.
fn export_presents_in_order(d: &Path, cfg: &Path, id: &str, rows: &[ChunkRow], fps: u32) {
    let (mp4, from, to) = export_across_boundary(d, cfg, id, rows);
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-xerror", "-i"])
        .arg(&mp4)
        .args(["-enc_time_base:v", "1/90000", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.stderr.is_empty(), "{id}: ffmpeg warned: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(&mp4)
        .output()
        .unwrap();
    let pts: Vec<f64> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split(',').next()?.parse().ok()).collect();
    let step = 1.0 / fps as f64;
    for w in pts.windows(2) {
        assert!((w[1] - w[0] - step).abs() < step / 4.0, "{id}: frames presented at {} then {} s", w[0], w[1]);
    }
    // Playback starts at `from` (the edit list); frames shown = frames recorded in range, ±1.
    // The export ends in decode order before the first frame presented after `to`, so the
    // B-frames stored after that frame (presented before `to`) are not in it.
    let mut want = 0i64;
    for r in &rows[..2] {
        let reader = edgenvr::chunk::reader::ChunkReader::open_at(&d.join("data").join(&r.rel_path), 0).unwrap();
        let mut groups = edgenvr::chunk::frames::FrameGroups::new(reader, Some(r.codec));
        while let Some(g) = groups.next_group().unwrap().filter(|g| g.ts_us <= to) {
            want += (g.has_slice && g.ts_us >= from) as i64;
        }
    }
    assert!((pts.len() as i64 - want).abs() <= 1, "{id}: {} frames shown, {want} recorded in the range", pts.len());
}

/// Debian's Chromium plays an H.264 B-frame export through the player page: no error, the
/// whole range's duration, playback advancing through it (headless Chromium composites
/// only a few frames: those it presents come in order, counted by the page with
/// `requestVideoFrameCallback`). Presentation order frame by frame is checked with ffprobe.
fn chromium_plays_in_order(d: &Path, port: u16, rows: &[ChunkRow]) {
    // 20 s across the second minute boundary (the first chunk may be short), once the
    // chunk being written holds its 10 s.
    let (from, to) = (rows[2].start_us - 10_000_000, rows[2].start_us + 10_000_000);
    let wait = to + 2_000_000 - now_us();
    if wait > 0 {
        std::thread::sleep(Duration::from_micros(wait as u64));
    }
    let url =
        format!("http://127.0.0.1:{port}/player.html?camera=avc&from={}&to={}", from as f64 / 1e6, to as f64 / 1e6);
    let state = chromium_player_state(&d.join("chromium-profile"), &url);
    assert!(state["error"].is_null(), "{state}");
    assert_eq!(state["videoWidth"].as_i64(), Some(1280), "{state}");
    let want = (to - from) as f64 / 1e6;
    assert!((state["duration"].as_f64().unwrap() - want).abs() < 0.1, "asked for {want} s: {state}");
    assert!(state["currentTime"].as_f64().unwrap() > 5.0, "playback advanced: {state}");
    assert!(state["framesShown"].as_i64().unwrap() >= 1, "{state}");
    assert_eq!(state["framesOutOfOrder"].as_i64(), Some(0), "{state}");
}
