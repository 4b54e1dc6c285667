//! The sound track against ffmpeg: real AAC (made by ffmpeg's encoder) and G.711 frames
//! recorded through the real chunk writer beside real openh264 video, exported across a
//! minute boundary and a pause.

use crate::export::mp4::tests::{boxes, read_all, T0};
use crate::export::mp4::Mp4File;
use crate::export::plan::make_plan;
use crate::export::VirtualFile;
use crate::media::audio::{AudioCodec, AudioFrame, AudioParams};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// `seconds` of AAC-LC (16 kHz mono) from ffmpeg's encoder: the parameters and raw access
/// units (ADTS headers stripped), 1024 samples each.
fn aac_frames(seconds: u32) -> (AudioParams, Vec<Vec<u8>>) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=1000:sample_rate=16000:duration={seconds}"))
        .args(["-c:a", "aac", "-b:a", "32k", "-f", "adts", "pipe:1"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (mut frames, mut pos, d) = (Vec::new(), 0, &out.stdout);
    let mut config = Vec::new();
    while pos + 7 <= d.len() {
        assert_eq!((d[pos], d[pos + 1] & 0xf0), (0xff, 0xf0), "ADTS sync at {pos}");
        let header = if d[pos + 1] & 1 == 1 { 7 } else { 9 };
        let len = ((d[pos + 3] as usize & 3) << 11) | (d[pos + 4] as usize) << 3 | (d[pos + 5] as usize) >> 5;
        if config.is_empty() {
            let object = (d[pos + 2] >> 6) + 1;
            let rate_index = (d[pos + 2] >> 2) & 0xf;
            let channels = ((d[pos + 2] & 1) << 2) | (d[pos + 3] >> 6);
            config = vec![object << 3 | rate_index >> 1, (rate_index & 1) << 7 | channels << 3];
        }
        frames.push(d[pos + header..pos + len].to_vec());
        pos += len;
    }
    (AudioParams { codec: AudioCodec::Aac, sample_rate: 16_000, channels: 1, config }, frames)
}

/// G.711 µ-law frames of 20 ms (160 samples at 8 kHz): quiet, with a loud burst in the
/// first frame of every second.
fn pcmu_frames(seconds: u32) -> (AudioParams, Vec<Vec<u8>>) {
    let frames = (0..seconds * 50).map(|i| vec![if i % 50 == 0 { 0x00 } else { 0xff }; 160]).collect();
    (AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8_000, channels: 1, config: vec![] }, frames)
}

/// Records 25 s of video (as `mp4::tests::record`: a 3 s video pause at 12 s, a minute
/// boundary at 10 s) and the given audio frames from `T0`, in time order, through the real
/// writer. Returns the audio frames' timestamps.
fn record_with_audio(
    dir: &Path,
    params: AudioParams,
    frames: Vec<Vec<u8>>,
) -> (crate::index::Index, crate::storage::Storage, Vec<i64>) {
    use crate::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
    use crate::encode::yuv::I420;
    let (mut w, index, storage) = crate::testutil::writer_fixture(dir);
    let mut enc =
        SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
    let mut pic = I420::new(64, 48);
    let mut seed = 7;
    let params = Arc::new(params);
    let samples = if params.codec == AudioCodec::Aac { 1024 } else { 160 };
    let audio_ts = |k: usize| T0 + (k as i64 * samples * 1_000_000 / params.sample_rate as i64);
    let mut audio = frames.into_iter().enumerate().peekable();
    let mut written = Vec::new();
    for i in 0..250i64 {
        let ts = T0 + i * 100_000;
        while let Some((k, data)) = audio.next_if(|(k, _)| audio_ts(*k) < ts + 100_000) {
            if i > 0 {
                w.write_audio(&AudioFrame { ts_us: audio_ts(k), params: params.clone(), data });
                written.push(audio_ts(k));
            }
        }
        if (120..150).contains(&i) {
            continue;
        }
        crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
        if i == 150 {
            enc.force_keyframe();
        }
        w.write_frame(&enc.encode(&pic, ts).unwrap().unwrap());
    }
    w.close();
    drop(w);
    (Arc::try_unwrap(index).ok().unwrap(), Arc::try_unwrap(storage).ok().unwrap(), written)
}

/// ffprobe's view of a file: each stream's codec name, and the packet times of stream `a:0`.
fn probe(path: &Path) -> (Vec<String>, Vec<f64>) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let codecs = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim_matches(',').to_owned()).collect();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let times = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim_matches(',').parse().ok()).collect();
    (codecs, times)
}

/// Both codecs: the export has a video and a sound track; ffmpeg decodes both without a
/// message; every audio frame is presented at its recorded wall-clock time on the movie's
/// timeline (which starts at `from`, like the video's), across the minute boundary and the
/// video pause; and any byte range equals the same slice of the whole file.
#[test]
fn exports_carry_the_recorded_audio_at_its_recorded_times() {
    for (params, frames) in [pcmu_frames(26), aac_frames(26)] {
        let codec = params.codec;
        let dir = tempfile::tempdir().unwrap();
        let (index, storage, written) = record_with_audio(dir.path(), params, frames);
        let (from, to) = (T0 + 1_050_000, T0 + 20_000_000);
        let plan = make_plan(&index, &storage, "cam", from, to).unwrap().with_audio();
        let a = plan.audio.as_ref().expect("the chunks' audio is found");
        assert_eq!(a.segments.len(), plan.segments.len(), "{codec:?}: every chunk has its sibling");
        assert!(a.segments.len() >= 3, "{codec:?}: split at the minute and the pause");
        // The window: from the first video frame (the keyframe at 1 s) to just before `to`.
        let expected: Vec<i64> = written.iter().copied().filter(|t| (T0 + 1_000_000..to).contains(t)).collect();
        assert_eq!(a.frames(), expected.len() as u64, "{codec:?}");
        let mp4 = Mp4File::new(plan).unwrap();
        let data = read_all(&mp4, 0, mp4.len());
        let mut b = Vec::new();
        boxes(&data, 0, &mut b);
        assert_eq!(b.iter().filter(|x| &x.0 == b"trak").count(), 2);
        let path = decodes(&mp4, dir.path());
        let (codecs, times) = probe(&path);
        let name = if codec == AudioCodec::Aac { "aac" } else { "pcm_mulaw" };
        assert_eq!(codecs, ["h264", name]);
        // Packets before `from` are cut by the edit list; every other one is where its
        // recorded time puts it (within a sample at 8 kHz).
        let want: Vec<f64> = expected.iter().map(|t| (t - from) as f64 / 1e6).filter(|t| *t >= 0.0).collect();
        let got: Vec<f64> = times.iter().copied().filter(|t| *t >= 0.0).collect();
        assert_eq!(got.len(), want.len(), "{codec:?}: {got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 0.000_2, "{codec:?}: a frame recorded at {w} s is presented at {g} s");
        }
        // Any byte range equals the same slice of the whole.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let start = x % mp4.len();
            let end = (start + x % 30_000 + 1).min(mp4.len());
            assert_eq!(read_all(&mp4, start, end), data[start as usize..end as usize], "{codec:?}: {start}..{end}");
        }
    }
}

/// Damaged audio never fails a video export: a sibling whose header is garbage is left out,
/// a torn tail is cut to whole frames, a missing sibling is a gap; the export still decodes.
#[test]
fn damaged_or_missing_siblings_leave_gaps_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (params, frames) = pcmu_frames(26);
    let (index, storage, _) = record_with_audio(dir.path(), params, frames);
    let siblings: Vec<_> =
        walk(dir.path()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "audio")).collect();
    assert_eq!(siblings.len(), 3, "split at the minute and the pause: {siblings:?}");
    let plan = || make_plan(&index, &storage, "cam", T0, T0 + 30_000_000).unwrap().with_audio();
    let whole = plan().audio.unwrap();
    // A torn last frame: the frames before it.
    let second = &whole.segments[2].path;
    let len = std::fs::metadata(second).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(second).unwrap().set_len(len - 5).unwrap();
    let torn = plan().audio.unwrap();
    assert_eq!(torn.frames(), whole.frames() - 1);
    // The first sibling's header overwritten: that minute has no audio.
    let first = &whole.segments[0].path;
    let mut bytes = std::fs::read(first).unwrap();
    bytes[17..21].copy_from_slice(b"XXXX");
    std::fs::write(first, bytes).unwrap();
    let a = plan().audio.unwrap();
    assert_eq!((a.segments.len(), a.segments[0].video_segment), (2, 1));
    decodes(&Mp4File::new(plan()).unwrap(), dir.path());
    // All gone: a video-only export.
    for s in &siblings {
        std::fs::remove_file(s).unwrap();
    }
    let p = plan();
    assert!(p.audio.is_none());
    decodes(&Mp4File::new(p).unwrap(), dir.path());
}

/// Writes `mp4` to a file in `dir`, which ffmpeg decodes (every stream) without a message;
/// returns its path.
fn decodes(mp4: &Mp4File, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("d.mp4");
    std::fs::write(&path, read_all(mp4, 0, mp4.len())).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-xerror", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
