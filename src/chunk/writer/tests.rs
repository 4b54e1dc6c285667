//! The chunk writer's tests: rotation, naming, B-frames, reconnects, failover, limits.

use super::*;
use crate::chunk::scan::scan_file;
use crate::time::US_PER_MIN;

const T0: i64 = 1_795_272_960_000_000; // 2026-11-21T14:56:00Z

fn frame(ts: i64, key: bool) -> EncodedFrame {
    let mut f = EncodedFrame::new(ts, Codec::H264);
    if key {
        f.push_nal(&[0x67, 1, 2]);
        f.push_nal(&[0x68, 3]);
        f.push_nal(&[0x65, 9, 9, 9]);
    } else {
        f.push_nal(&[0x41, 7, 7]);
    }
    f
}

use crate::testutil::writer_fixture as setup;

#[test]
fn rotates_at_first_keyframe_after_minute_and_files_start_decodable() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, _) = setup(d.path());
    // A P frame before any keyframe is dropped.
    w.write_frame(&frame(T0 - 1_000, false));
    let mut ts = T0;
    for i in 0..100 {
        // 1 fps, keyframe every 7 frames: the minute boundary falls mid-GOP.
        w.write_frame(&frame(ts, i % 7 == 0));
        ts += 1_000_000;
    }
    w.close();
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    assert_eq!(rows.len(), 2);
    // Frame 63 is the first keyframe at or after T0 + 60 s.
    assert_eq!(rows[1].start_us, T0 + 63 * 1_000_000);
    assert_eq!(rows[0].end_us, T0 + 62 * 1_000_000);
    assert_eq!(rows[0].frames + rows[1].frames, 100);
    for r in &rows {
        let s = scan_file(&d.path().join(&r.rel_path), Some(Codec::H264)).unwrap();
        assert!(s.is_clean() && s.starts_with_keyframe);
        assert_eq!((s.frames, s.bytes_eq(r.bytes)), (r.frames, true));
        assert_eq!(Some(s.records), r.records);
        assert_eq!(s.keyframes, r.keyframes);
    }
    assert_eq!(rows[0].rel_path, PathBuf::from("cam/20261121/cam.20261121.1456.chunk"));
    assert_eq!(rows[1].rel_path, PathBuf::from("cam/20261121/cam.20261121.1457.chunk"));
}

#[test]
fn parameter_sets_are_written_before_keyframes_that_lack_them() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, _) = setup(d.path());
    w.write_frame(&frame(T0, true));
    let mut idr_only = EncodedFrame::new(T0 + 1_000_000, Codec::H264);
    idr_only.push_nal(&[0x65, 1]);
    w.write_frame(&idr_only);
    w.close();
    let r = &index.chunks_for_camera("cam", 0, i64::MAX).unwrap()[0];
    let mut rd = crate::chunk::reader::ChunkReader::open_at(&d.path().join(&r.rel_path), r.keyframes[1].1).unwrap();
    let mut nal = Vec::new();
    let kinds: Vec<_> =
        std::iter::from_fn(|| rd.next_into(&mut nal).unwrap().map(|_| Codec::H264.classify(&nal))).collect();
    assert_eq!(kinds, [NalKind::Sps, NalKind::Pps, NalKind::IdrSlice]);
}

#[test]
fn never_overwrites_when_clock_goes_back() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, _) = setup(d.path());
    w.write_frame(&frame(T0 + 10_000_000, true));
    w.write_frame(&frame(T0 + 11_000_000, false));
    // Clock steps back 5 s within the same minute: a P frame is dropped, the next
    // keyframe starts a new file with a suffixed name.
    w.write_frame(&frame(T0 + 6_000_000, false));
    w.write_frame(&frame(T0 + 7_000_000, true));
    w.close();
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    let names: Vec<_> = rows.iter().map(|r| r.rel_path.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"cam.20261121.1456.chunk".to_owned()));
    assert!(names.contains(&"cam.20261121.1456.1.chunk".to_owned()));
    let first = rows.iter().find(|r| r.start_us == T0 + 10_000_000).unwrap();
    assert_eq!(first.frames, 2, "the original file keeps both frames");
}

/// B-frames stay; the row ends at its latest frame; a keyframe before it is a step back.
#[test]
fn b_frames_stay_and_a_keyframe_before_the_frontier_is_a_step_back() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, _) = setup(d.path());
    for (ms, key) in [(0, true), (120, false), (40, false), (240, false), (160, false), (220, true), (260, false)] {
        w.write_frame(&frame(T0 + ms * 1000, key));
    }
    w.close();
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    let spans: Vec<_> = rows.iter().map(|r| (r.start_us - T0, r.end_us - T0, r.frames)).collect();
    assert_eq!(spans, vec![(0, 240_000, 5), (220_000, 260_000, 2)]);
    assert!(rows[1].rel_path.to_str().unwrap().ends_with(".1.chunk"));
}

#[test]
fn a_reconnect_or_pause_starts_a_new_chunk() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, _) = setup(d.path());
    w.write_frame(&frame(T0, true));
    w.write_frame(&frame(T0 + 1_000_000, false));
    let mut again = frame(T0 + 1_500_000, true);
    again.discontinuity = true;
    w.write_frame(&again);
    w.write_frame(&frame(T0 + 5_000_000, false)); // 3.5 s pause, not a keyframe: dropped
    w.write_frame(&frame(T0 + 6_000_000, true));
    w.close();
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    let spans: Vec<_> = rows.iter().map(|r| (r.start_us - T0, r.end_us - T0, r.frames)).collect();
    assert_eq!(spans, vec![(0, 1_000_000, 2), (1_500_000, 1_500_000, 1), (6_000_000, 6_000_000, 1)]);
}

#[test]
fn new_parameter_sets_start_a_new_chunk_that_carries_them() {
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, _) = setup(d.path());
    w.write_frame(&frame(T0, true));
    w.write_frame(&frame(T0 + 1_000_000, false));
    // The camera switches resolution: a new SPS arrives with the next IDR.
    let mut resized = EncodedFrame::new(T0 + 2_000_000, Codec::H264);
    resized.push_nal(&[0x67, 0x4d, 0x00, 0x28]);
    resized.push_nal(&[0x68, 3]);
    resized.push_nal(&[0x65, 1]);
    w.write_frame(&resized);
    w.write_frame(&frame(T0 + 3_000_000, false));
    w.close();
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    assert_eq!(rows.iter().map(|r| r.frames).collect::<Vec<_>>(), vec![2, 2]);
    let mut rd = crate::chunk::reader::ChunkReader::open(&d.path().join(&rows[1].rel_path)).unwrap();
    let mut nal = Vec::new();
    rd.next_into(&mut nal).unwrap();
    assert_eq!(nal, [0x67, 0x4d, 0x00, 0x28], "the new file starts with the new SPS");
}

#[test]
fn restart_in_same_minute_uses_a_new_name() {
    let d = tempfile::tempdir().unwrap();
    {
        let (mut w, _, _) = setup(d.path());
        w.write_frame(&frame(T0, true));
    }
    let (mut w, _, _) = setup(d.path());
    w.write_frame(&frame(T0 + US_PER_MIN / 2, true));
    w.close();
    assert!(d.path().join("cam/20261121/cam.20261121.1456.chunk").exists());
    assert!(d.path().join("cam/20261121/cam.20261121.1456.1.chunk").exists());
}

#[test]
fn a_chunk_that_vanished_before_rotation_fails_its_root() {
    // A disk unmounted just before the minute turns: the rotation's seal is the first
    // to notice that the file being written is no longer where the root says it is.
    let d = tempfile::tempdir().unwrap();
    let (mut w, index, storage) = setup(d.path());
    w.write_frame(&frame(T0, true));
    w.write_frame(&frame(T0 + 1_000_000, false));
    let (_, path) = w.open_chunk().unwrap();
    let path = d.path().join(path);
    std::fs::rename(&path, d.path().join("elsewhere")).unwrap();
    w.write_frame(&frame(T0 + US_PER_MIN, true));
    let root = &storage.roots()[0];
    let health = root.health();
    assert_eq!(health.failures, 1);
    assert!(health.last_error.unwrap().contains("has disappeared; was its disk unmounted?"));
    assert!(root.is_failed(), "the next chunk must not go to the failed root");
    assert!(w.open_chunk().is_none());
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].state, rows[0].frames), (crate::index::ChunkState::Sealed, 2));
}

/// Issue 11: one NAL over the reader's limit made the rest of its chunk unreadable.
#[test]
fn a_nal_over_the_format_limit_drops_its_frame_not_the_chunk() {
    let d = tempfile::tempdir().unwrap();
    let index = Arc::new(Index::open_in_memory().unwrap());
    let cfg = crate::config::StorageConfig {
        path: d.path().to_owned(),
        min_free: crate::config::FreeSpace::Bytes(0),
        max_bytes: None,
        events_reserve: None,
        require_mount: false,
    };
    let storage = Arc::new(Storage::open(&[cfg], &index).unwrap());
    let ctx = WriterContext {
        storage,
        index: index.clone(),
        on_space_pressure: Arc::new(|| {}),
        sync_interval: Duration::from_secs(2),
    };
    let stats = Arc::new(CameraStats::default());
    let mut w = ChunkWriter::new("cam", Codec::H264, ctx, stats.clone());
    w.write_frame(&frame(T0, true));
    w.write_frame(&frame(T0 + 100_000, false));
    let mut huge = EncodedFrame::new(T0 + 200_000, Codec::H264);
    huge.push_nal(&vec![0x41; MAX_NAL_LEN as usize + 1]);
    w.write_frame(&huge);
    w.write_frame(&frame(T0 + 300_000, false)); // refers to the dropped frame: dropped
    w.write_frame(&frame(T0 + 400_000, true));
    w.write_frame(&frame(T0 + 500_000, false));
    w.close();
    assert_eq!(stats.frames_dropped.load(Relaxed), 2);
    let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
    assert_eq!(rows.iter().map(|r| r.frames).sum::<u64>(), 4);
    for r in &rows {
        let s = scan_file(&d.path().join(&r.rel_path), Some(Codec::H264)).unwrap();
        assert!(s.is_clean(), "{:?}", s.error);
        assert_eq!(s.frames, r.frames);
    }
}

impl crate::chunk::scan::ChunkSummary {
    fn bytes_eq(&self, b: u64) -> bool {
        self.good_len == b && self.file_len == b
    }
}
