//! Audio in MP4 exports (issue 13), in sync with the video. GStreamer's real RTSP server sends
//! a video that flashes white at every whole second of its running time (`Media::H264Flash`)
//! with audio that ticks at the same seconds (tests/fixtures/rtsp_server.py), AAC or G.711
//! µ-law. The exports are analyzed on their own timeline with ffmpeg: each flash frame
//! (`signalstats` luma) is paired with the nearest tick onset (`silencedetect`'s end of
//! silence) and must lie within 100 ms of it, across a minute boundary and a reconnect.
//! The analyzer is checked first on files made by ffmpeg, in sync and shifted 300 ms, so
//! the sync test can fail. Catches an export without its audio track, audio that drifts or
//! jumps against the video at a chunk or a reconnect, an undecodable audio track, audio in
//! the raw `export.h264`, and an audio track invented for a camera that sent none.

mod common;
#[path = "common/rtsp.rs"]
mod rtsp_peers;

use common::http::get;
use common::*;
use edgenvr::time::{now_us, US_PER_MIN};
use rtsp_peers::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Sync budget: a flash and its tick may be this far apart (s).
const MAX_OFFSET: f64 = 0.1;

/// The marks of an MP4 on its own timeline, s: frames that turn white, and tick onsets.
#[derive(Debug)]
struct Marks {
    flashes: Vec<f64>,
    ticks: Vec<f64>,
}

/// One ffmpeg run over the first video and first audio stream of `mp4`: each frame's
/// average luma, and where each stretch of at least 0.4 s of silence ends (the end is
/// computed from the frame's time plus the sample's position in it).
fn marks(mp4: &Path, scratch: &Path) -> Marks {
    let (v, a) = ("marks-video.txt", "marks-audio.txt");
    let graph = format!(
        "[0:v:0]signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file={v}[vo];\
         [0:a:0]silencedetect=n=-30dB:d=0.4,ametadata=mode=print:key=lavfi.silence_end:file={a}[ao]"
    );
    for f in [v, a] {
        let _ = std::fs::remove_file(scratch.join(f));
    }
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(mp4)
        .args(["-filter_complex", &graph, "-map", "[vo]", "-map", "[ao]", "-f", "null", "-"])
        .current_dir(scratch)
        .output()
        .expect("ffmpeg is required (the README test command installs it)");
    assert!(out.status.success(), "{}: {}", mp4.display(), String::from_utf8_lossy(&out.stderr));
    let read = |f: &str| std::fs::read_to_string(scratch.join(f)).unwrap_or_default();
    // Lines: "frame:N pts:P pts_time:T", then "key=value" for the frame.
    let mut flashes = Vec::new();
    let (mut t, mut was_bright) = (f64::NAN, false);
    for line in read(v).lines() {
        if let Some(pt) = line.split_whitespace().find_map(|w| w.strip_prefix("pts_time:")) {
            t = pt.parse().unwrap();
        } else if let Some(y) = line.strip_prefix("lavfi.signalstats.YAVG=") {
            let bright = y.parse::<f64>().unwrap() > 128.0;
            if bright && !was_bright {
                flashes.push(t);
            }
            was_bright = bright;
        }
    }
    let ticks =
        read(a).lines().filter_map(|l| l.strip_prefix("lavfi.silence_end=")).map(|s| s.parse().unwrap()).collect();
    Marks { flashes, ticks }
}

/// Each flash with a tick within half a second: (flash time, tick - flash), s.
fn pairs(m: &Marks) -> Vec<(f64, f64)> {
    m.flashes
        .iter()
        .filter_map(|&f| {
            let d = m.ticks.iter().map(|&t| t - f).min_by(|x, y| x.abs().total_cmp(&y.abs()))?;
            (d.abs() < 0.5).then_some((f, d))
        })
        .collect()
}

/// Why `m` is out of sync: a flash more than [`MAX_OFFSET`] from its tick, or more than
/// `unpaired` flashes without a tick near them (the edges of the range and of an outage may
/// cut a tick off); `None` when in sync.
fn sync_error(m: &Marks, unpaired: usize) -> Option<String> {
    let p = pairs(m);
    if let Some((f, d)) = p.iter().find(|(_, d)| d.abs() >= MAX_OFFSET) {
        return Some(format!("the flash at {f:.3} s has its tick {:.0} ms away: {p:?}", d * 1e3));
    }
    if p.len() + unpaired < m.flashes.len() || p.is_empty() {
        return Some(format!("{} of {} flashes have a tick near them: {m:?}", p.len(), m.flashes.len()));
    }
    None
}

/// A 6 s MP4 made by ffmpeg with the same marks, in sync: a white frame and an 880 Hz
/// tone at every whole second, the tone made sample by sample (`aevalsrc`). `audio` is
/// ffmpeg's encoder (`aac`, or `pcm_mulaw` in a QuickTime-style `ulaw` entry, which only
/// the `mov` muxer writes).
fn reference(dir: &Path, audio: &str) -> PathBuf {
    let out = dir.join(format!("reference-{audio}.mp4"));
    let (rate, fmt) = if audio == "aac" { ("48000", "mp4") } else { ("8000", "mov") };
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("color=c=black:size=320x180:rate=15,drawbox=w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,1),0.05)'")
        .args(["-f", "lavfi", "-i"])
        .arg(format!("aevalsrc='if(lt(mod(t,1),0.1),0.8*sin(2*PI*880*t),0)':s={rate}"))
        .args(["-t", "6", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-g", "15", "-bf", "0"])
        .args(["-c:a", audio, "-f", fmt])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

#[test]
fn the_analyzer_sees_sync_and_catches_a_300_ms_shift() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for audio in ["aac", "pcm_mulaw"] {
        let mp4 = reference(d, audio);
        let m = marks(&mp4, d);
        // Six flashes (0..5 s), five ticks (the first has no silence before it).
        assert_eq!(m.flashes.len(), 6, "{audio}: {m:?}");
        assert_eq!(pairs(&m).len(), 5, "{audio}: {m:?}");
        assert!(pairs(&m).iter().all(|(_, d)| d.abs() < 0.005), "{audio}: {m:?}");
        assert_eq!(sync_error(&m, 1), None, "{audio}");
        // The same file with its audio 300 ms late, and 300 ms early: out of sync.
        for shift in ["0.3", "-0.3"] {
            let shifted = d.join(format!("shifted{shift}-{audio}.mp4"));
            let st = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-i"])
                .arg(&mp4)
                .args(["-itsoffset", shift, "-i"])
                .arg(&mp4)
                .args(["-map", "0:v", "-map", "1:a", "-c", "copy", "-f", if audio == "aac" { "mp4" } else { "mov" }])
                .arg(&shifted)
                .status()
                .unwrap();
            assert!(st.success());
            let m = marks(&shifted, d);
            let err = sync_error(&m, 1).unwrap_or_else(|| panic!("{audio} shifted {shift} s passed: {m:?}"));
            let want: f64 = shift.parse().unwrap();
            assert!(pairs(&m).iter().all(|(_, d)| (d - want).abs() < 0.01), "{audio} {shift}: {err}");
        }
    }
}

/// A config recording `cams` = (id, url), with the HTTP API on `port`.
fn config(d: &Path, port: u16, cams: &[(&str, String)]) -> PathBuf {
    cameras_config(d, &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"), cams, "2s", "")
}

/// (codec_type, codec_name) of each stream, and the video's sample count (`nb_frames`: the
/// frames stored, with those before the edit list's start that a player decodes but skips).
fn streams(mp4: &Path) -> (Vec<(String, String)>, u64) {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_streams", "-of", "json"]).arg(mp4).output().unwrap();
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = j["streams"].as_array().unwrap();
    let kinds = s.iter().map(|s| (s["codec_type"].as_str().unwrap().into(), s["codec_name"].as_str().unwrap().into()));
    let video = s.iter().find(|s| s["codec_type"] == "video").expect("a video stream");
    (kinds.collect(), video["nb_frames"].as_str().unwrap().parse().unwrap())
}

/// Sleeps until the wall clock reaches `t` (µs).
fn sleep_until(t: i64) {
    let wait = t - now_us();
    if wait > 0 {
        std::thread::sleep(Duration::from_micros(wait as u64));
    }
}

#[test]
fn exports_keep_aac_and_pcmu_in_sync_across_a_minute_boundary_and_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Seconds of marks before the first minute boundary: start at least 10 s before it.
    if US_PER_MIN - now_us() % US_PER_MIN < 10_000_000 {
        sleep_until((now_us() / US_PER_MIN + 1) * US_PER_MIN);
    }
    let cams = [("aac", "aac"), ("pcmu", "pcmu"), ("mute", "")];
    let mut server = RtspServer::start_audio(&cams.map(|(id, audio)| (id, Media::H264Flash, audio)));
    let port = free_port();
    let urls: Vec<(&str, String)> = cams.iter().map(|(id, _)| (*id, server.url(id))).collect();
    let cfg = config(d, port, &urls);
    let svc = Service::start(&cfg, d);
    let first = wait_for(Duration::from_secs(20), "every camera recording", || {
        let starts: Option<Vec<i64>> =
            cams.iter().map(|(id, _)| camera_rows(d, id).first().map(|r| r.start_us)).collect();
        starts.map(|s| s.into_iter().max().unwrap())
    });
    // The camera drops out for 2 s, 5 s in, or 5 s after the minute turns if that is near:
    // each event has seconds of marks on both sides.
    let boundary = (first / US_PER_MIN + 1) * US_PER_MIN;
    let mut t_kill = now_us() + 5_000_000;
    if (boundary - t_kill).abs() < 6_000_000 {
        t_kill = boundary + 5_000_000;
    }
    sleep_until(t_kill);
    server.kill();
    std::thread::sleep(Duration::from_secs(2));
    let t_back = now_us();
    server.restart();
    // Back after the outage, and rotated at the minute (an open chunk's row keeps its start
    // time as its end until it is sealed: only starts tell).
    let resumed = wait_for(Duration::from_secs(90), "the cameras back and past the minute", || {
        let back: Option<Vec<i64>> = cams
            .iter()
            .map(|(id, _)| camera_rows(d, id).iter().find(|r| r.start_us > t_back).map(|r| r.start_us))
            .collect();
        let rotated = cams.iter().all(|(id, _)| camera_rows(d, id).iter().any(|r| r.start_us >= boundary));
        back.filter(|_| rotated).map(|b| b.into_iter().max().unwrap())
    });
    // Seconds of marks after both. The chunk being written exports up to its last frame on
    // disk (a GOP is written when the next keyframe comes): `to` lies 3.5 s back, so both
    // exports of the range hold the same frames however long apart they are made.
    sleep_until(resumed.max(boundary) + 9_000_000);
    let (from, to) = (first + 500_000, now_us() - 3_500_000);
    // Events on the export's timeline (s; gaps stay gaps, playback starts at `from`).
    let at = |t: i64| (t - from) as f64 / 1e6;
    let (boundary_s, kill_s, back_s) = (at(boundary), at(t_kill), at(resumed));
    let q = format!("from={}&to={}", from as f64 / 1e6, to as f64 / 1e6);
    for (id, audio) in cams {
        let reply = get(port, &format!("/api/v1/cameras/{id}/export.mp4?{q}"));
        assert_eq!(reply.status, 200, "{id}: {}", String::from_utf8_lossy(&reply.body));
        let mp4 = d.join(format!("{id}.mp4"));
        std::fs::write(&mp4, &reply.body).unwrap();
        ffmpeg_decodes_mp4(&mp4);
        let (kinds, video_frames) = streams(&mp4);
        let want: Vec<(String, String)> =
            [("video", "h264"), ("audio", if audio == "aac" { "aac" } else { "pcm_mulaw" })]
                .iter()
                .take(if audio.is_empty() { 1 } else { 2 })
                .map(|(k, c)| (k.to_string(), c.to_string()))
                .collect();
        assert_eq!(kinds, want, "{id}: the export's streams");
        // The raw stream stays H.264 alone: the MP4's frames, decoded without an error.
        let h264 = get(port, &format!("/api/v1/cameras/{id}/export.h264?{q}"));
        assert_eq!(h264.status, 200);
        assert_eq!(ffmpeg_decode(&h264.body, d), video_frames, "{id}: export.h264 vs the MP4");
        if audio.is_empty() {
            continue;
        }
        let m = marks(&mp4, d);
        // Unpaired: at most a flash at each edge and each side of the outage.
        if let Some(e) = sync_error(&m, 4) {
            panic!("{id}: {e} (minute at {boundary_s:.1} s, outage {kill_s:.1}..{back_s:.1} s)");
        }
        let p = pairs(&m);
        let (lo, hi) = p.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (_, d)| (lo.min(*d), hi.max(*d)));
        eprintln!(
            "{id}: {} flashes, {} paired, audio {:.0}..{:.0} ms after video",
            m.flashes.len(),
            p.len(),
            lo * 1e3,
            hi * 1e3
        );
        for (what, lo, hi) in [("minute boundary", boundary_s, boundary_s), ("reconnect", kill_s, back_s)] {
            let before = p.iter().filter(|(f, _)| *f < lo - 0.5).count();
            let after = p.iter().filter(|(f, _)| *f > hi + 0.5).count();
            assert!(before >= 2 && after >= 2, "{id}: {before} pairs before the {what}, {after} after: {p:?}");
        }
    }
    chromium_plays_with_audio(d, port, from, to);
    assert!(svc.stop().success());
    drop(server);
}

/// Debian's Chromium plays both exports through the player page (`<video>`, muted, as the
/// page autoplays): no error, the range's duration, and audio decoded
/// (`webkitAudioDecodedByteCount`). Under headless virtual time the audio clock, which
/// drives playback when there is audio, runs in real time, so playback barely advances
/// before the page is dumped: the bytes decoded are the evidence, not `currentTime`.
fn chromium_plays_with_audio(d: &Path, port: u16, from: i64, to: i64) {
    for id in ["aac", "pcmu"] {
        let url = format!(
            "http://127.0.0.1:{port}/player.html?camera={id}&from={}&to={}",
            from as f64 / 1e6,
            to as f64 / 1e6
        );
        let state = chromium_player_state(&d.join(format!("chromium-{id}")), &url);
        eprintln!("chromium, {id}: {state}");
        assert!(state["error"].is_null(), "{id}: {state}");
        assert_eq!(state["videoWidth"].as_i64(), Some(320), "{id}: {state}");
        let want = (to - from) as f64 / 1e6;
        assert!((state["duration"].as_f64().unwrap() - want).abs() < 0.2, "{id}: asked for {want} s: {state}");
        assert!(state["audioDecodedBytes"].as_i64().unwrap_or(0) > 0, "{id}: no audio decoded: {state}");
    }
}
