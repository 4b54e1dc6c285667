//! The MP4 export against ffprobe and ffmpeg, on footage recorded by the real writer.

use super::*;
use crate::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
use crate::encode::yuv::I420;
use crate::error::ErrorKind;
use crate::export::plan::make_plan;
use crate::index::Index;
use crate::storage::Storage;
use std::io::{Read, Write};
use std::sync::Arc;

/// 2026-11-21T14:56:50Z: the recording crosses a minute boundary after 10 s.
pub(crate) const T0: i64 = 1_795_273_010_000_000;

/// Records 25 s of real openh264 video at 10 fps (keyframe every 10 frames) with a 3 s
/// pause at 12 s, through the real chunk writer.
pub(crate) fn record(dir: &std::path::Path) -> (Index, Storage) {
    let (mut w, index, storage) = crate::testutil::writer_fixture(dir);
    let mut enc =
        SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
    let mut pic = I420::new(64, 48);
    let mut seed = 7;
    for i in 0..250i64 {
        if (120..150).contains(&i) {
            continue;
        }
        crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
        if i == 150 {
            enc.force_keyframe();
        }
        let f = enc.encode(&pic, T0 + i * 100_000).unwrap().unwrap();
        w.write_frame(&f);
    }
    w.close();
    drop(w);
    (Arc::try_unwrap(index).ok().unwrap(), Arc::try_unwrap(storage).ok().unwrap())
}

pub(crate) fn read_all(f: &dyn VirtualFile, start: u64, end: u64) -> Vec<u8> {
    let mut v = Vec::new();
    f.reader(start, end).read_to_end(&mut v).unwrap();
    v
}

/// (kind, offset, size) of every box, descending into containers.
pub(crate) fn boxes(data: &[u8], base: usize, out: &mut Vec<([u8; 4], usize, usize)>) {
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        let mut header = 8;
        if size == 1 {
            size = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()) as usize;
            header = 16;
        }
        assert!(
            size >= header && pos + size <= data.len(),
            "box {} overruns its parent",
            String::from_utf8_lossy(&kind)
        );
        out.push((kind, base + pos, size));
        if matches!(&kind, b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" | b"dinf") {
            boxes(&data[pos + header..pos + size], base + pos + header, out);
        }
        pos += size;
    }
    assert_eq!(pos, data.len(), "boxes fill their parent exactly");
}

/// Events in the range become chapters ffprobe reads at their times on the export's
/// timeline (which starts at `from`), and the title names camera and range.
#[test]
fn events_are_chapters_at_their_times_and_the_title_names_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let (index, storage) = record(dir.path());
    let ev = |label, start: i64, end: Option<i64>| crate::index::events::NewEvent {
        camera: "cam",
        label,
        source: "api",
        start_us: T0 + start,
        end_us: end.map(|e| T0 + e),
        pre_us: 0,
        post_us: 0,
        note: None,
    };
    index.insert_event(&ev("early", 500_000, Some(2_000_000))).unwrap();
    index.insert_event(&ev("door", 3_000_000, Some(5_000_000))).unwrap();
    index.insert_event(&ev("motion", 15_000_000, None)).unwrap();
    index.insert_event(&ev("later", 21_000_000, Some(22_000_000))).unwrap();
    let (from, to) = (T0 + 1_050_000, T0 + 20_000_000);
    let mp4 = Mp4File::new(make_plan(&index, &storage, "cam", from, to).unwrap()).unwrap();
    let path = dir.path().join("x.mp4");
    std::fs::write(&path, read_all(&mp4, 0, mp4.len())).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_chapters", "-show_format", "-of", "json"])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chapters: Vec<(f64, String)> = v["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["start_time"].as_str().unwrap().parse().unwrap(), c["tags"]["title"].as_str().unwrap().into()))
        .collect();
    let starts: Vec<f64> = chapters.iter().map(|c| c.0).collect();
    assert_eq!(starts, [0.0, 1.95, 13.95], "{chapters:?}");
    assert!(chapters[1].1.starts_with("door (event 2"), "{chapters:?}");
    let title = v["format"]["tags"]["title"].as_str().unwrap();
    assert_eq!(title, "cam 2026-11-21T14:56:51.050Z to 2026-11-21T14:57:10.000Z");
}

#[test]
fn export_is_well_formed_and_every_range_matches_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (index, storage) = record(dir.path());
    let from = T0 + 1_050_000;
    let to = T0 + 20_000_000;
    let plan = make_plan(&index, &storage, "cam", from, to).unwrap();
    assert!(plan.segments.len() >= 3, "minute boundary and pause split the export: {:?}", plan.segments.len());
    let samples = plan.samples();
    let keys = plan.keyframes();
    let mp4 = Mp4File::new(plan).unwrap();
    let full = read_all(&mp4, 0, mp4.len());
    assert_eq!(full.len() as u64, mp4.len(), "the announced length is the produced length");

    let mut b = Vec::new();
    boxes(&full, 0, &mut b);
    let find = |k: &[u8; 4]| {
        b.iter().find(|x| &x.0 == k).copied().unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(k)))
    };
    let top: Vec<&[u8; 4]> = b.iter().filter(|x| [b"ftyp", b"moov", b"mdat"].contains(&&x.0)).map(|x| &x.0).collect();
    assert_eq!(top, [b"ftyp", b"moov", b"mdat"], "moov comes before mdat");
    let u32_at = |o: usize| u32::from_be_bytes(full[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_be_bytes(full[o..o + 8].try_into().unwrap());
    // Sample counts.
    let stsz = find(b"stsz");
    assert_eq!(u32_at(stsz.1 + 16) as u64, samples);
    let stss = find(b"stss");
    assert_eq!(u32_at(stss.1 + 12) as u64, keys);
    assert_eq!(u32_at(stss.1 + 16), 1, "the first sample is a keyframe");
    // Durations: the stts total is the media duration in mdhd, and every delta is
    // ~100 ms except the 3 s pause, kept as a gap.
    let stts = find(b"stts");
    let n = u32_at(stts.1 + 12) as usize;
    let deltas: Vec<u32> = (0..n).map(|i| u32_at(stts.1 + 20 + 8 * i)).collect();
    assert!(deltas.iter().filter(|&&d| d == 9000).count() >= n - 4, "{deltas:?}");
    assert!(deltas.iter().any(|&d| d > 90_000 * 3), "the pause is kept as a gap");
    let mdhd = find(b"mdhd");
    assert_eq!(u64_at(mdhd.1 + 32), deltas.iter().map(|&d| d as u64).sum::<u64>());
    // The edit list starts playback at `from` and lasts to `to`.
    let elst = find(b"elst");
    let (seg_dur, media_time) = (u64_at(elst.1 + 16), u64_at(elst.1 + 24));
    assert_eq!(seg_dur, ((to - from) * 9 / 100) as u64);
    assert_eq!(media_time, 4500, "from is 50 ms after the keyframe at or before it");
    // Chunk offsets point at sample data: a 4-byte length, then an SPS.
    let co64 = find(b"co64");
    let mdat = find(b"mdat");
    for i in 0..u32_at(co64.1 + 12) as usize {
        let off = u64_at(co64.1 + 16 + 8 * i) as usize;
        assert!(off >= mdat.1 + 16 && off < mdat.1 + mdat.2);
        assert_eq!(Codec::H264.classify(&full[off + 4..off + 6]), crate::media::h26x::NalKind::Sps, "segment {i}");
    }
    // Sample sizes add up to the mdat payload.
    let sizes: u64 = (0..samples as usize).map(|i| u32_at(stsz.1 + 20 + 4 * i) as u64).sum();
    assert_eq!(sizes, (mdat.2 - 16) as u64);

    // Any byte range equals the same slice of the whole file.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = x % mp4.len();
        let len = if i % 3 == 0 { x % 64 + 1 } else { x % 20_000 + 1 };
        let e = (a + len).min(mp4.len());
        assert_eq!(read_all(&mp4, a, e), full[a as usize..e as usize], "range {a}..{e}");
    }
}

/// ffmpeg decodes `data` as an MP4 without a single error; returns the frames shown.
fn ffmpeg_frames(data: &[u8], dir: &std::path::Path) -> u64 {
    let f = dir.join("export.mp4");
    std::fs::write(&f, data).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&f)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn the_chunk_being_written_is_exported_up_to_its_last_whole_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, index, storage) = crate::testutil::writer_fixture_syncing(dir.path(), std::time::Duration::ZERO);
    let mut enc =
        SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
    let mut pic = I420::new(64, 48);
    let mut seed = 7;
    let mut record = |w: &mut crate::chunk::writer::ChunkWriter, frames: std::ops::Range<i64>| {
        for i in frames {
            crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
            w.write_frame(&enc.encode(&pic, T0 + i * 100_000).unwrap().unwrap());
        }
    };
    // 15 s from :50: frames 0-99 sealed at the minute, 100-149 in the open chunk.
    record(&mut w, 0..150);
    let (open_id, _) = w.open_chunk().unwrap();
    assert_eq!(index.chunk(open_id).unwrap().unwrap().state, crate::index::ChunkState::Open);
    let (from, to) = (T0 + 5_000_000, T0 + 60_000_000);
    let plan = make_plan(&index, &storage, "cam", from, to).unwrap();
    // From the keyframe at 5 s: 50 sealed frames, then the open chunk's 50 less the last
    // (its group is not yet known to be whole).
    assert_eq!((plan.samples(), plan.segments.len()), (99, 2));
    assert_eq!(plan.last_ts(), T0 + 148 * 100_000);
    let before = Mp4File::new(plan).unwrap();
    let snapshot = read_all(&before, 0, before.len());
    assert_eq!(ffmpeg_frames(&snapshot, dir.path()), 99);

    // The file grows, and a torn record sits at its end (a write in progress): a new
    // export sees the new frames; the first one still reads exactly as it was planned.
    record(&mut w, 150..160);
    let path = dir.path().join(w.open_chunk().unwrap().1);
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[0, 0, 0, 1]).unwrap();
    let after = Mp4File::new(make_plan(&index, &storage, "cam", from, to).unwrap()).unwrap();
    assert_eq!(after.plan().samples(), 109);
    assert_ne!(after.etag(), before.etag());
    assert_eq!(read_all(&before, 0, before.len()), snapshot);
    assert_eq!(ffmpeg_frames(&read_all(&after, 0, after.len()), dir.path()), 109);

    // Only the open chunk, starting mid-GOP: from the keyframe at or before `from`.
    let plan = make_plan(&index, &storage, "cam", T0 + 12_340_000, to).unwrap();
    assert_eq!(plan.segments.len(), 1);
    assert_eq!((plan.first_ts(), plan.samples()), (T0 + 12_000_000, 39));

    // The open chunk's file is gone (its disk was yanked): the sealed footage still exports.
    std::fs::rename(&path, dir.path().join("yanked")).unwrap();
    let plan = make_plan(&index, &storage, "cam", from, to).unwrap();
    assert_eq!((plan.segments.len(), plan.samples()), (1, 50));
    drop(w);
}

/// B-frame footage (H.264 and H.265, IBBP in decode order, stamped with presentation
/// times) recorded across a minute boundary exports with decode times and signed `ctts`:
/// ffmpeg decodes it without a warning, and every frame is presented at its recorded
/// time, in order. On main the samples were timed in decode order (no `ctts`), so
/// presentation times came out shuffled.
#[test]
fn b_frame_footage_is_presented_at_its_recorded_times() {
    for codec in [Codec::H264, Codec::H265] {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture(dir.path());
        let frames = crate::testutil::bframe_frames(dir.path(), codec, 25, 16, T0);
        assert!(frames.windows(2).any(|f| f[1].ts_us < f[0].ts_us), "the stream has B-frames");
        for f in &frames {
            w.write_frame(f);
        }
        w.close();
        let rows = index.chunks_for_camera("cam", T0, T0 + 60_000_000).unwrap();
        // Rotation at the first keyframe after the minute (10 s in); nothing dropped;
        // each row ends at its latest frame, not its last stored one.
        assert_eq!(rows.len(), 2, "{codec:?}");
        assert_eq!(rows[1].start_us, T0 + 10_000_000);
        assert_eq!(rows[0].end_us, T0 + 10_000_000 - 40_000);
        assert_eq!(rows[0].frames + rows[1].frames, 400);
        let plan = make_plan(&index, &storage, "cam", T0, T0 + 60_000_000).unwrap();
        let mp4 = Mp4File::new(plan).unwrap();
        let data = read_all(&mp4, 0, mp4.len());
        let mut b = Vec::new();
        boxes(&data, 0, &mut b);
        let ctts = b.iter().find(|x| &x.0 == b"ctts").unwrap();
        assert_eq!(data[ctts.1 + 8], 1, "ctts version 1");
        let path = dir.path().join("b.mp4");
        std::fs::write(&path, &data).unwrap();
        let pts = crate::testutil::decoded_presentation_times(&path);
        assert_eq!(pts.len(), 400, "{codec:?}: every frame decoded");
        for (i, p) in pts.iter().enumerate() {
            assert!((p - i as f64 * 0.04).abs() < 0.002, "{codec:?}: frame {i} presented at {p} s");
        }
    }
}

/// Issue 11: a row with more keyframes (or frames) than its file holds passed the
/// row's own checks and panicked the export thread, which with `panic = "abort"` ends
/// all recording. Now the read fails with data loss and nothing panics.
#[test]
fn counts_the_file_does_not_hold_fail_the_read_not_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (index, storage) = record(dir.path());
    for (keys, samples) in [(3, 0), (0, 2), (0, -2)] {
        let mut plan = make_plan(&index, &storage, "cam", T0, T0 + 30_000_000).unwrap();
        let last = plan.segments.len() - 1;
        plan.segments[last].keyframes += keys;
        plan.segments[last].samples = plan.segments[last].samples.saturating_add_signed(samples);
        let mp4 = Mp4File::new(plan).unwrap();
        let mut out = Vec::new();
        let e = mp4.reader(0, mp4.len()).read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("indexed"), "{keys} {samples}: {e}");
    }
}

/// A real H.264 SPS (openh264's, as recorded).
fn real_sps() -> Vec<u8> {
    let mut enc =
        SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
    let f = enc.encode(&I420::new(64, 48), T0).unwrap().unwrap();
    let sps = f.nals().find(|n| Codec::H264.classify(n) == crate::media::h26x::NalKind::Sps).unwrap().to_vec();
    sps
}

proptest::proptest! {
    #![proptest_config(crate::testutil::fuzz_config())]
    /// Fuzz target: the H.264 SPS parse behind an MP4's picture size takes any bytes (a
    /// real SPS damaged, or random) without a panic, and a size it returns is sane.
    #[test]
    fn fuzz_h264_sps(
        random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
        damage in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..4),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
        use_real in proptest::prelude::any::<bool>(),
    ) {
        static SPS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let nal = if use_real {
            let mut n = SPS.get_or_init(real_sps).clone();
            for (at, v) in damage {
                let i = at.index(n.len() - 1) + 1;
                n[i] = v;
            }
            n.truncate(cut.index(n.len()) + 1);
            n
        } else {
            [&[0x67u8][..], &random].concat()
        };
        if let Ok((w, h)) = dimensions(&nal) {
            proptest::prop_assert!((1..=16_384).contains(&w) && (1..=16_384).contains(&h), "{}x{}", w, h);
        }
    }
}

#[test]
fn empty_or_bad_ranges_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (index, storage) = record(dir.path());
    let e = make_plan(&index, &storage, "cam", T0 - 100_000_000, T0 - 50_000_000).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(make_plan(&index, &storage, "cam", T0, T0).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let day = crate::export::plan::MAX_RANGE_US;
    assert_eq!(make_plan(&index, &storage, "cam", T0, T0 + day + 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(make_plan(&index, &storage, "nope", T0, T0 + 1_000_000).unwrap_err().kind(), ErrorKind::NotFound);
}
