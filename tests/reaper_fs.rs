//! Records well past the size of a real 16 MiB filesystem: the reaper holds the free-space
//! watermark, recording is never interrupted, and every indexed chunk is on disk.

mod common;
use common::*;
use edgenvr::index::ChunkState;
use edgenvr::storage::statvfs;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const FS_BYTES: u64 = 16 << 20;
const MIN_FREE: u64 = 4 << 20;

#[test]
fn watermark_holds_on_a_full_small_filesystem() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_m, mnt) = tmpfs(d, "mnt", FS_BYTES);
    let root = mnt.join("edgenvr");
    std::fs::create_dir(&root).unwrap();
    let config = d.join("edgenvr.toml");
    std::fs::write(
        &config,
        format!(
            "[recording]\nsync_interval = \"500ms\"\n[index]\npath = \"{}\"\n[[storage]]\npath = \"{}\"\nmin_free = \"{MIN_FREE}\"\nrequire_mount = true\n{}",
            d.join("index.db").display(),
            root.display(),
            testsrc_camera("cam", 20.0, 300_000)
        ),
    )
    .unwrap();

    let svc = Service::start(&config, d);
    // Watch every chunk file's largest size and the filesystem's lowest free space until the
    // recorder has written twice the filesystem's size.
    let mut seen: BTreeMap<std::path::PathBuf, u64> = BTreeMap::new();
    let mut min_free = u64::MAX;
    let start = Instant::now();
    loop {
        for f in chunk_files(&root) {
            if let Ok(m) = std::fs::metadata(&f) {
                let e = seen.entry(f).or_default();
                *e = (*e).max(m.len());
            }
        }
        min_free = min_free.min(statvfs(&mnt).unwrap().free);
        let total: u64 = seen.values().sum();
        if total > 2 * FS_BYTES {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "only {total} bytes written in 4 minutes:\n{}",
            svc.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = svc.log_text();
    assert!(svc.stop().success());

    // The watermark held: free space never fell more than one sync interval's worth of
    // video (~0.5 s at 20x speed, well under 1 MiB) below min_free, and never ran out.
    assert!(min_free + (1 << 20) >= MIN_FREE, "free space fell to {min_free} (watermark {MIN_FREE})");
    assert!(!log.contains("disk full") && !log.contains("lost "), "frames were lost:\n{log}");
    assert!(log.contains("reaper: deleted"), "the reaper ran:\n{log}");

    // Every indexed chunk is on disk with its indexed size; nothing on disk is unindexed.
    let rows = rows(&d.join("index.db"));
    assert!(rows.iter().all(|r| r.state == ChunkState::Sealed));
    for r in &rows {
        let len = std::fs::metadata(root.join(&r.rel_path)).map(|m| m.len());
        assert_eq!(len.ok(), Some(r.bytes), "{}", r.rel_path.display());
    }
    assert_eq!(chunk_files(&root).len(), rows.len());
    assert!(rows.len() < seen.len(), "old chunks were deleted ({} remain of {})", rows.len(), seen.len());

    // Recording was uninterrupted: the surviving chunks follow each other frame to frame
    // (a frame is 66_667 µs of stream time at 15 fps; one lost frame would make 133_333).
    let frame_us = 1_000_000 / 15;
    for w in rows.windows(2) {
        let gap = w[1].start_us - w[0].end_us;
        assert!(
            gap > 0 && gap <= frame_us + 1,
            "gap of {gap} µs between {} and {}",
            w[0].rel_path.display(),
            w[1].rel_path.display()
        );
    }
    let (code, out) = check(&config, false);
    assert_eq!(code, 0, "{out}");
}
