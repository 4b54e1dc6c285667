//! RTSP ingest against a real RTSP server (GStreamer's, on loopback or in a network
//! namespace of the test's own), through the faults real cameras make.

mod common;
#[path = "common/rtsp.rs"]
mod rtsp_peers;

use common::*;
use edgenvr::index::{ChunkRow, ChunkState};
use edgenvr::media::h26x::Codec;
use edgenvr::time::{now_us, US_PER_MIN};
use rtsp_peers::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config recording `cams` = (id, url) with short fault timers.
fn config(d: &Path, cams: &[(&str, String)], frame_timeout: &str) -> PathBuf {
    config_with(d, cams, frame_timeout, "")
}

/// [`config`] with extra keys added to every camera.
fn config_with(d: &Path, cams: &[(&str, String)], frame_timeout: &str, extra: &str) -> PathBuf {
    cameras_config(d, "", cams, frame_timeout, extra)
}

/// Every chunk of `cam` decodes without a single ffmpeg error; returns the frame count.
fn decodes(d: &Path, cam: &str) -> u64 {
    let rows = camera_rows(d, cam);
    let fmt = if rows.first().is_some_and(|r| r.codec == Codec::H265) { "hevc" } else { "h264" };
    let mut frames = 0;
    for r in &rows {
        let decoded = ffmpeg_decode_as(&annex_b(&[d.join("data").join(&r.rel_path)]), d, fmt);
        assert_eq!(decoded, r.frames, "{}: ffmpeg frames vs index", r.rel_path.display());
        frames += decoded;
    }
    frames
}

/// Frames (timestamp groups holding a picture) of `rows` with `from <= ts <= to`.
fn frames_between(d: &Path, rows: &[ChunkRow], from: i64, to: i64) -> i64 {
    let mut n = 0;
    for r in rows {
        let reader = edgenvr::chunk::reader::ChunkReader::open_at(&d.join("data").join(&r.rel_path), 0).unwrap();
        let mut groups = edgenvr::chunk::frames::FrameGroups::new(reader, Some(r.codec));
        while let Some(g) = groups.next_group().unwrap() {
            n += (g.has_slice && (from..=to).contains(&g.ts_us)) as i64;
        }
    }
    n
}

#[test]
fn records_hd_multislice_and_h265_across_a_minute_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = RtspServer::start(&[("hd", Media::H264Hd), ("slices", Media::H264Slices), ("hevc", Media::H265)]);
    // Credentials in the URL: the server ignores them; the log must never show them.
    let cams: Vec<(&str, String)> = ["hd", "slices", "hevc"]
        .iter()
        .map(|m| (*m, server.url(m).replace("rtsp://", "rtsp://admin:Sup3rSecret@")))
        .collect();
    let cfg = config(d, &cams, "5s");
    let t_launch = now_us();
    let svc = Service::start(&cfg, d);
    // Record until every camera has crossed the minute boundary after its first frame (not
    // the launch's: a launch a moment before the minute turns records its first frame after it).
    let next_minute = |rows: &[ChunkRow]| rows.first().map(|r| (r.start_us / US_PER_MIN + 1) * US_PER_MIN);
    wait_for(Duration::from_secs(120), "every camera to cross a minute boundary", || {
        cams.iter()
            .all(|(id, _)| {
                let rows = camera_rows(d, id);
                next_minute(&rows).is_some_and(|b| rows.iter().any(|r| r.start_us >= b))
            })
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let t_stop = now_us();
    let log = svc.log_text();
    assert!(svc.stop().success());
    assert!(!log.contains("Sup3rSecret"), "credentials leaked into the log:\n{log}");
    assert!(log.contains("rtsp://***@127.0.0.1"), "{log}");

    for (id, _) in &cams {
        let media = match *id {
            "hd" => Media::H264Hd,
            "slices" => Media::H264Slices,
            _ => Media::H265,
        };
        let (codec, fps, gop) = media.params();
        let rows = camera_rows(d, id);
        assert!(rows.len() >= 2 && rows.iter().all(|r| r.state == ChunkState::Sealed), "{id}: {rows:#?}");
        assert!(rows.iter().all(|r| r.codec.as_str() == codec), "{id}: codec in the index");
        // The second chunk starts at the first keyframe at or after the minute boundary.
        let boundary = next_minute(&rows).unwrap();
        let second = rows.iter().find(|r| r.start_us >= boundary).unwrap();
        assert!(second.start_us - boundary < 1_000_000 * gop as i64 / fps as i64 + 50_000, "{id}: late rotation");
        // Chunks follow each other frame to frame.
        for w in rows.windows(2) {
            let gap = w[1].start_us - w[0].end_us;
            assert!(gap > 0 && gap < 1_500_000 / fps as i64, "{id}: gap {gap} µs between chunks");
        }
        // Timestamps track the wall clock: recording starts after launch (within the
        // connection time) and the last frame is within 1 s of the stop.
        let first = rows.first().unwrap().start_us;
        let last = rows.last().unwrap().end_us;
        assert!(
            first >= t_launch && first - t_launch < 3_000_000,
            "{id}: first frame {} µs after launch",
            first - t_launch
        );
        assert!((t_stop - last).abs() < 1_000_000, "{id}: last frame {} µs from the stop", t_stop - last);
        // Frame count matches the duration at the server's rate, within one GOP.
        let frames = decodes(d, id);
        let expected = (last - first) * fps as i64 / 1_000_000 + 1;
        assert!((frames as i64 - expected).abs() <= gop as i64, "{id}: {frames} frames, expected {expected}");
    }
    // Every camera exports as an MP4 across the minute boundary (H.265 in an `hvc1` entry).
    for (id, _) in &cams {
        let rows = camera_rows(d, id);
        let (mp4, from, to) = export_across_boundary(d, &cfg, id, &rows);
        let probe = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-of", "csv=p=0"])
            .args(["-show_entries", "stream=codec_name,codec_tag_string,width,height,nb_read_frames"])
            .arg(&mp4)
            .output()
            .unwrap();
        let probe = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
        let (name, tag) = if *id == "hevc" { ("hevc", "hvc1") } else { ("h264", "avc1") };
        let fields: Vec<&str> = probe.split(',').collect();
        let (w, h) = if *id == "hd" { ("1920", "1080") } else { ("1280", "720") };
        assert_eq!(fields[..4], [name, tag, w, h], "{id}: {probe}");
        // Playback starts at `from`: the frames shown are the recorded frames in [from, to],
        // ±1 at the edges. (Counted from the chunks, not from the frame rate: a stream that
        // falls behind, as under qemu-user, has its clock slewed or stepped.)
        let shown: i64 = fields[4].parse().unwrap();
        let want = frames_between(d, &rows[..2], from, to);
        assert!((shown - want).abs() <= 1, "{id}: {shown} frames shown, {want} recorded in the range");
    }
    drop(server);
}

#[test]
fn server_killed_and_restarted_resumes_within_5_s_with_the_gap_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut server = RtspServer::start(&[("cam", Media::H264Small)]);
    let cfg = config(d, &[("cam", server.url("cam"))], "2s");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(20), "recording", || camera_rows(d, "cam").first().map(|_| ()));
    std::thread::sleep(Duration::from_secs(4));
    server.kill();
    std::thread::sleep(Duration::from_secs(4));
    let t_back = now_us();
    server.restart();
    let resumed = wait_for(Duration::from_secs(15), "a chunk after the restart", || {
        camera_rows(d, "cam").into_iter().find(|r| r.start_us > t_back)
    });
    assert!(
        resumed.start_us - t_back < 5_000_000,
        "resumed {} µs after the server returned",
        resumed.start_us - t_back
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(svc.stop().success());
    let rows = camera_rows(d, "cam");
    let before: Vec<_> = rows.iter().filter(|r| r.end_us < t_back).collect();
    assert!(!before.is_empty());
    let gap = resumed.start_us - before.last().unwrap().end_us;
    assert!(gap > 3_500_000, "the outage shows as a {gap} µs gap between index rows");
    decodes(d, "cam");
    let (code, out) = check(&cfg, false);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn stalled_server_is_detected_and_recording_resumes_after_it_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = RtspServer::start(&[("cam", Media::H264Small)]);
    let cfg = config(d, &[("cam", server.url("cam"))], "2s");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(20), "recording", || camera_rows(d, "cam").first().map(|_| ()));
    std::thread::sleep(Duration::from_secs(3));
    server.signal(libc::SIGSTOP);
    wait_for(Duration::from_secs(10), "the stall to be detected", || {
        svc.log_text().contains("went silent").then_some(())
    });
    let t_cont = now_us();
    server.signal(libc::SIGCONT);
    wait_for(Duration::from_secs(15), "a chunk after SIGCONT", || {
        camera_rows(d, "cam").into_iter().find(|r| r.start_us > t_cont).map(|_| ())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(svc.stop().success());
    assert!(camera_rows(d, "cam").iter().filter(|r| r.start_us > t_cont).map(|r| r.frames).sum::<u64>() >= 15);
    decodes(d, "cam");
}

#[test]
fn a_broken_or_hostile_camera_costs_the_good_one_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = RtspServer::start(&[("good", Media::H264Small)]);
    let cams = vec![
        ("good", server.url("good")),
        ("refused", format!("rtsp://127.0.0.1:{}/x", free_port())),
        ("garbage", format!("rtsp://127.0.0.1:{}/x", start_hostile(Hostile::Garbage))),
        ("badsdp", format!("rtsp://127.0.0.1:{}/x", start_hostile(Hostile::BadSdp))),
        ("huge", format!("rtsp://127.0.0.1:{}/x", start_hostile(Hostile::HugeLength))),
        ("silent", format!("rtsp://127.0.0.1:{}/x", start_hostile(Hostile::Silent))),
        ("nostream", server.url("no-such-mount")),
    ];
    let cfg = config(d, &cams, "2s");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(20), "recording", || camera_rows(d, "good").first().map(|_| ()));
    std::thread::sleep(Duration::from_secs(12));
    let status = std::fs::read_to_string(format!("/proc/{}/status", svc.child.id())).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    let log = svc.log_text();
    assert!(svc.stop().success(), "the service survived every hostile camera");
    // Under an emulator (EDGENVR_TEST_RUNNER) the RSS is qemu's, translation cache included,
    // not the recorder's: the bound is checked on native runs only.
    if std::env::var_os("EDGENVR_TEST_RUNNER").is_none() {
        assert!(hwm_kib < 64 * 1024, "peak RSS {hwm_kib} KiB with hostile cameras");
    }
    for bad in ["refused", "garbage", "badsdp", "huge", "silent", "nostream"] {
        assert!(log.contains(&format!("camera {bad}: ")), "{bad} logged its error:\n{log}");
        assert!(camera_rows(d, bad).is_empty(), "{bad} recorded nothing");
    }
    assert!(!log.contains("panicked"), "{log}");
    // The good camera: one run of chunks, no gaps, every frame at 15 fps.
    let rows = camera_rows(d, "good");
    for w in rows.windows(2) {
        assert!(w[1].start_us - w[0].end_us < 100_000, "gap in the good camera: {rows:#?}");
    }
    let frames = decodes(d, "good");
    let span = rows.last().unwrap().end_us - rows[0].start_us;
    let expected = span * 15 / 1_000_000 + 1;
    assert!((frames as i64 - expected).abs() <= 1, "good camera: {frames} frames over {span} µs");
}

#[test]
fn udp_transport_records_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = RtspServer::start(&[("cam", Media::H264Small)]);
    let cfg = config_with(d, &[("cam", server.url("cam"))], "2s", "transport = \"udp\"\n");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(20), "recording over UDP", || camera_rows(d, "cam").first().map(|_| ()));
    std::thread::sleep(Duration::from_secs(5));
    assert!(svc.stop().success());
    let frames = decodes(d, "cam");
    assert!(frames >= 4 * 15, "{frames} frames over UDP in 5 s");
}
