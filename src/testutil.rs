//! Fixtures shared by unit tests.

use crate::chunk::writer::{ChunkWriter, WriterContext};
use crate::config::{FreeSpace, StorageConfig};
use crate::index::Index;
use crate::media::h26x::Codec;
use crate::storage::Storage;
use std::sync::Arc;

/// A chunk writer for camera "cam" on one storage root at `dir`, with an in-memory index.
pub fn writer_fixture(dir: &std::path::Path) -> (ChunkWriter, Arc<Index>, Arc<Storage>) {
    writer_fixture_syncing(dir, std::time::Duration::from_secs(2))
}

/// [`writer_fixture`] with a given sync interval (zero: every frame reaches the file as it
/// is written, for tests that read the chunk being written).
pub fn writer_fixture_syncing(
    dir: &std::path::Path,
    sync_interval: std::time::Duration,
) -> (ChunkWriter, Arc<Index>, Arc<Storage>) {
    let index = Arc::new(Index::open_in_memory().unwrap());
    let cfg = StorageConfig {
        path: dir.to_owned(),
        min_free: FreeSpace::Bytes(0),
        max_bytes: None,
        events_reserve: None,
        require_mount: false,
    };
    let storage = Arc::new(Storage::open(&[cfg], &index).unwrap());
    let ctx = WriterContext {
        storage: storage.clone(),
        index: index.clone(),
        on_space_pressure: Arc::new(|| {}),
        sync_interval,
    };
    (ChunkWriter::new("cam", Codec::H264, ctx, Arc::default()), index, storage)
}

/// `n` frames of real openh264 video (`width`x`height`, 10 fps from `t0_us`, a keyframe
/// every 10 frames), as a source would deliver them.
pub fn encoded_frames(width: usize, height: usize, t0_us: i64, n: i64) -> Vec<crate::media::frame::EncodedFrame> {
    use crate::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
    let mut enc =
        SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
    let mut pic = crate::encode::yuv::I420::new(width, height);
    let mut seed = 7;
    (0..n)
        .map(|i| {
            crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
            enc.encode(&pic, t0_us + i * 100_000).unwrap().unwrap()
        })
        .collect()
}

/// The configuration of the arbitrary-bytes property targets ("fuzzing on stable"): a
/// bounded number of cases in the normal test run; `EDGENVR_FUZZ_CASES=100000 cargo test
/// --lib fuzz` hunts longer. Failures are not persisted (no files in the source tree).
pub fn fuzz_config() -> proptest::test_runner::Config {
    let cases = std::env::var("EDGENVR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    proptest::test_runner::Config { cases, failure_persistence: None, ..Default::default() }
}

/// Bytes that look like a chunk file, for the fuzz targets: whole records of every NAL kind
/// (H.264 and H.265), timestamps that mostly rise, then random damage (bytes overwritten,
/// the end cut) so the parsers' deep paths are reached, not just the first header check.
pub fn chunk_like_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let nal = prop_oneof![
        Just(vec![0x67u8, 0x42]),
        Just(vec![0x68u8, 0xce]),
        Just(vec![0x65u8, 0x88, 0x84]),
        Just(vec![0x41u8, 0x9a]),
        Just(vec![0x06u8, 0x05]),
        Just(vec![0x40u8, 0x01]),
        Just(vec![0x42u8, 0x01]),
        Just(vec![0x26u8, 0x01]),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    let records = proptest::collection::vec((0i64..3, nal), 0..40);
    let damage = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
    (any::<u32>(), records, damage, any::<prop::sample::Index>(), any::<bool>()).prop_map(
        |(t0, records, damage, cut, do_cut)| {
            let mut b = Vec::new();
            let mut ts = t0 as i64;
            for (step, nal) in records {
                ts += step * 33_000 - if step == 0 && nal.len() > 30 { 1 } else { 0 };
                crate::chunk::format::append_record(&mut b, ts, &nal);
            }
            if !b.is_empty() {
                for (at, v) in damage {
                    let i = at.index(b.len());
                    b[i] = v;
                }
                if do_cut {
                    b.truncate(cut.index(b.len() + 1));
                }
            }
            b
        },
    )
}

/// `seconds` of real B-frame video made by ffmpeg (libx264 `-bf 2` or libx265 `bframes=2`,
/// 160x90, `fps`, a closed GOP of `fps` frames, access unit delimiters on), as a camera
/// delivers it: in decode order, each frame stamped with its presentation time from `t0_us`.
pub fn bframe_frames(
    dir: &std::path::Path,
    codec: Codec,
    fps: i64,
    seconds: i64,
    t0_us: i64,
) -> Vec<crate::media::frame::EncodedFrame> {
    use std::process::Command;
    let mp4 = dir.join("bframes.mp4");
    let enc: &[&str] = match codec {
        Codec::H264 => &["-c:v", "libx264", "-bf", "2", "-b_strategy", "0", "-x264-params", "aud=1"],
        Codec::H265 => &["-c:v", "libx265", "-x265-params", "bframes=2:b-adapt=0:open-gop=0:aud=1:log-level=error"],
    };
    let g = fps.to_string();
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=160x90:rate={fps}"))
        .args(["-t", &seconds.to_string(), "-pix_fmt", "yuv420p", "-g", &g, "-keyint_min", &g, "-sc_threshold", "0"])
        .args(enc)
        .arg(&mp4)
        .status()
        .unwrap();
    assert!(st.success());
    let bsf = if codec == Codec::H264 { "h264_mp4toannexb" } else { "hevc_mp4toannexb" };
    let raw = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&mp4)
        .args(["-c", "copy", "-bsf:v", bsf, "-f", if codec == Codec::H264 { "h264" } else { "hevc" }, "-"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(&mp4)
        .output()
        .unwrap();
    let pts: Vec<f64> = String::from_utf8_lossy(&probe.stdout).lines().map(|l| l.trim().parse().unwrap()).collect();
    let aud = |n: &[u8]| match codec {
        Codec::H264 => n[0] & 0x1f == 9,
        Codec::H265 => (n[0] >> 1) & 0x3f == 35,
    };
    let mut aus: Vec<Vec<&[u8]>> = Vec::new();
    for nal in crate::media::h26x::split_annex_b(&raw.stdout) {
        // A new access unit at each delimiter after a picture (the bitstream filter puts
        // parameter sets before some delimiters, and x265's first unit has none).
        let has_slice = |au: &Vec<&[u8]>| au.iter().any(|n| codec.classify(n).is_slice());
        if aus.is_empty() || (aud(nal) && has_slice(aus.last().unwrap())) {
            aus.push(Vec::new());
        }
        aus.last_mut().unwrap().push(nal);
    }
    assert_eq!(aus.len(), pts.len(), "one packet per access unit");
    let min = pts.iter().copied().fold(f64::MAX, f64::min);
    aus.iter()
        .zip(&pts)
        .map(|(nals, p)| {
            let frame_no = ((p - min) * fps as f64).round() as i64;
            let mut f = crate::media::frame::EncodedFrame::new(t0_us + frame_no * 1_000_000 / fps, codec);
            for n in nals {
                f.push_nal(n);
            }
            f
        })
        .collect()
}

/// The presentation times (s) of the first video stream of the MP4 at `path`, in decode
/// order as ffprobe lists frames, after checking that ffmpeg decodes the file with
/// `-xerror` and prints no warning (a timestamp or decode-order mistake shows as one).
pub fn decoded_presentation_times(path: &std::path::Path) -> Vec<f64> {
    use std::process::Command;
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split(',').next()?.parse().ok()).collect()
}
