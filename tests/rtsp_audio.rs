//! Camera audio (issue 13) against GStreamer's real RTSP server: H.264 video with AAC
//! (`avenc_aac`, mpeg4-generic) or G.711 µ-law from `audiotestsrc wave=ticks`, a tick at
//! every second of the server's running time. Catches audio that is not recorded, recorded
//! into the wrong file or off the video's timeline, an `audio = false` camera that still
//! writes audio, and a camera whose audio stops taking its video down with it.

mod common;
#[path = "common/rtsp.rs"]
mod rtsp_peers;

use common::*;
use edgenvr::chunk::reader::ChunkReader;
use edgenvr::index::{ChunkRow, ChunkState};
use edgenvr::media::audio::{AudioCodec, AudioParams};
use edgenvr::time::now_us;
use rtsp_peers::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A sibling file: its header and its frames (timestamp, bytes).
fn read_sibling(path: &Path) -> (AudioParams, Vec<(i64, Vec<u8>)>) {
    let mut rd = ChunkReader::open(path).unwrap();
    let mut payload = Vec::new();
    rd.next_into(&mut payload).unwrap().expect("a header record");
    let params = AudioParams::from_header(&payload).expect("the first record is the header");
    let mut frames = Vec::new();
    while let Some(h) = rd.next_into(&mut payload).unwrap() {
        frames.push((h.ts_us, payload.clone()));
    }
    (params, frames)
}

fn sibling(d: &Path, r: &ChunkRow) -> PathBuf {
    d.join("data").join(r.rel_path.with_extension("audio"))
}

/// ffmpeg decodes the stream without an error (`-xerror`): AAC wrapped in ADTS headers made
/// from the AudioSpecificConfig, G.711 as raw µ-law.
fn ffmpeg_decodes_audio(p: &AudioParams, frames: &[(i64, Vec<u8>)], scratch: &Path) {
    let f = scratch.join(format!("audio-{}.{}", std::process::id(), p.codec.as_str()));
    let mut bytes = Vec::new();
    for (_, data) in frames {
        if p.codec == AudioCodec::Aac {
            let object = (p.config[0] >> 3) as u32;
            let freq = ((p.config[0] & 7) << 1 | p.config[1] >> 7) as u32;
            let ch = p.channels as u32;
            let len = data.len() as u32 + 7;
            bytes.extend_from_slice(&[
                0xff,
                0xf1,
                (((object - 1) << 6) | (freq << 2) | (ch >> 2)) as u8,
                (((ch & 3) << 6) | (len >> 11)) as u8,
                ((len >> 3) & 0xff) as u8,
                (((len & 7) << 5) | 0x1f) as u8,
                0xfc,
            ]);
        }
        bytes.extend_from_slice(data);
    }
    std::fs::write(&f, bytes).unwrap();
    let fmt: &[&str] = if p.codec == AudioCodec::Aac { &["-f", "aac"] } else { &["-f", "mulaw", "-ar", "8000"] };
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror"])
        .args(fmt)
        .arg("-i")
        .arg(&f)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{:?}: {}", p.codec, String::from_utf8_lossy(&out.stderr));
}

/// Tick onsets of a µ-law recording, µs: the first loud sample after at least 0.5 s of
/// quiet, each sample at its frame's timestamp plus its position.
fn tick_onsets(frames: &[(i64, Vec<u8>)]) -> Vec<i64> {
    let mut onsets = Vec::new();
    let mut quiet_since = i64::MIN;
    let mut last_loud: Option<i64> = None;
    for (ts, data) in frames {
        for (i, &b) in data.iter().enumerate() {
            let t = ts + i as i64 * 125;
            // µ-law: magnitude in the low 7 bits, inverted; 0x7f/0xff is silence.
            let loud = (!b & 0x7f) > 0x30;
            if loud {
                if last_loud.is_none_or(|l| t - l > 500_000) && quiet_since != i64::MIN {
                    onsets.push(t);
                }
                last_loud = Some(t);
            } else if quiet_since == i64::MIN {
                quiet_since = t;
            }
        }
    }
    onsets
}

#[test]
fn aac_and_g711_are_recorded_beside_their_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cams = [
        ("aac", Media::H264Small, "aac", ""),
        ("pcmu", Media::H264Small, "pcmu", ""),
        ("off", Media::H264Small, "aac", "audio = false\n"),
        ("mute", Media::H264Small, "aac-stop", ""),
    ];
    let server = RtspServer::start_audio(&cams.map(|(id, m, a, _)| (id, m, a)));
    let port = free_port();
    let mut cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[recording]\nsync_interval = \"1s\"\n[index]\npath = \"{}\"\n[[storage]]\npath = \"{}\"\n",
        d.join("index.db").display(),
        d.join("data").display()
    );
    for (id, _, _, extra) in &cams {
        cfg += &format!("[[camera]]\nid = \"{id}\"\nurl = \"{}\"\nframe_timeout = \"5s\"\n{extra}", server.url(id));
    }
    let cfg_path = d.join("edgenvr.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let svc = Service::start(&cfg_path, d);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    let t_stop = now_us();
    assert!(svc.stop().success());
    assert!(started.elapsed() < Duration::from_secs(40));
    let all = rows(&d.join("index.db"));
    for (id, _, audio, _) in &cams {
        let rows: Vec<&ChunkRow> = all.iter().filter(|r| r.camera == *id).collect();
        assert!(!rows.is_empty() && rows.iter().all(|r| r.state == ChunkState::Sealed), "{id}: {rows:?}");
        let (first, last) = (rows[0].start_us, rows.last().unwrap().end_us);
        // Video records to the end whatever the audio does.
        assert!(t_stop - last < 1_500_000 && last - first > 14_000_000, "{id}: video {first}..{last}, stop {t_stop}");
        if *id == "off" {
            assert!(rows.iter().all(|r| !sibling(d, r).exists()), "audio = false wrote audio");
            continue;
        }
        let mut frames = Vec::new();
        for r in &rows {
            if *id == "mute" && !sibling(d, r).exists() {
                // A chunk opened after the microphone died (6 s in) has no audio to hold: the
                // sibling is made at a chunk's first audio frame. Only after some audio came.
                assert!(!frames.is_empty(), "{id}: no audio before {r:?}");
                continue;
            }
            let (p, f) = read_sibling(&sibling(d, r));
            let codec = if audio.starts_with("aac") { AudioCodec::Aac } else { AudioCodec::Pcmu };
            assert_eq!((p.codec, p.channels), (codec, 1), "{id}");
            assert_eq!(p.sample_rate, if codec == AudioCodec::Aac { 48_000 } else { 8000 });
            // Audio lies within its chunk's span (it is written with the GOP it came in).
            let (lo, hi) = (f[0].0, f.last().unwrap().0);
            assert!(lo >= r.start_us - 200_000 && hi <= r.end_us + 1_000_000, "{id}: audio {lo}..{hi} in {r:?}");
            assert!(f.windows(2).all(|w| w[0].0 < w[1].0), "{id}: audio goes back");
            ffmpeg_decodes_audio(&p, &f, d);
            frames.extend(f);
        }
        let (lo, hi) = (frames[0].0, frames.last().unwrap().0);
        if *id == "mute" {
            // The microphone died after 6 s of the server's time; video went on.
            assert!(hi - lo < 8_000_000 && last - hi > 8_000_000, "{id}: audio {lo}..{hi}, video to {last}");
            continue;
        }
        // As much audio as video time, within 1 s at each end.
        assert!((lo - first).abs() < 1_000_000 && (hi - last).abs() < 1_000_000, "{id}: audio {lo}..{hi}");
        if *id == "aac" {
            let expected = (hi - lo) * 48 / 1024 / 1000;
            assert!((frames.len() as i64 - expected).abs() <= 5, "{id}: {} AAC frames for {expected}", frames.len());
        } else {
            // Ticks at every second of the server's clock: one second apart on ours too.
            let onsets = tick_onsets(&frames);
            assert!(onsets.len() >= 12, "{id}: {onsets:?}");
            for w in onsets.windows(2) {
                assert!((w[1] - w[0] - 1_000_000).abs() < 30_000, "{id}: ticks {} µs apart", w[1] - w[0]);
            }
        }
    }
    drop(server);
}
