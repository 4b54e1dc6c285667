//! Retention classes on a real 16 MiB file system filled well past its watermark: the
//! reaper takes continuous footage, oldest first, and leaves the chunk holding an event's
//! footage (an event recorded after the fact, as the API and the CLI allow). Age limits per
//! class are tested with a fixed clock in `storage::reaper::classes` (footage here is
//! seconds old).

mod common;
use common::*;
use edgenvr::index::events::NewEvent;
use edgenvr::index::{ChunkState, Index};
use std::time::{Duration, Instant};

const FS_BYTES: u64 = 16 << 20;
const MIN_FREE: u64 = 4 << 20;

#[test]
fn pressure_reaps_continuous_footage_and_keeps_event_footage() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_m, mnt) = tmpfs(d, "mnt", FS_BYTES);
    let root = mnt.join("edgenvr");
    std::fs::create_dir(&root).unwrap();
    let config = d.join("edgenvr.toml");
    let index_path = d.join("index.db");
    std::fs::write(
        &config,
        format!(
            "[recording]\nsync_interval = \"500ms\"\n[index]\npath = \"{}\"\n[[storage]]\npath = \"{}\"\nmin_free = \"{MIN_FREE}\"\nrequire_mount = true\n{}",
            index_path.display(),
            root.display(),
            testsrc_camera("cam", 20.0, 300_000)
        ),
    )
    .unwrap();
    let svc = Service::start(&config, d);
    // Once three chunks are sealed, an event is recorded over the middle of the second.
    let index = Index::open(&index_path).unwrap();
    let sealed = wait_for(Duration::from_secs(60), "three sealed chunks", || {
        let rows = sealed_rows(&index_path);
        (rows.len() >= 3).then_some(rows)
    });
    let (first, kept, next) = (&sealed[0], &sealed[1], &sealed[2]);
    let mid = (kept.start_us + kept.end_us) / 2;
    index
        .insert_event(&NewEvent {
            camera: "cam",
            label: "door",
            source: "api",
            start_us: mid,
            end_us: Some(mid + 1_000_000),
            pre_us: 0,
            post_us: 0,
            note: None,
        })
        .unwrap();
    assert_eq!(index.chunk_holds_event(kept.id).unwrap(), Some(true));
    assert_eq!(index.chunk_holds_event(next.id).unwrap(), Some(false));

    // Record until the reaper has taken the continuous chunk after the event's, then on.
    let start = Instant::now();
    while index.chunk(next.id).unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the reaper did not take the continuous chunks:\n{}",
            svc.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));
    let log = svc.log_text();
    assert!(svc.stop().success());

    assert!(index.chunk(first.id).unwrap().is_none(), "the oldest continuous chunk went first");
    assert!(index.chunk(next.id).unwrap().is_none(), "a younger continuous chunk went too");
    let row = index.chunk(kept.id).unwrap().expect("the event's chunk stays");
    assert_eq!(row.state, ChunkState::Sealed);
    assert_eq!(std::fs::metadata(root.join(&row.rel_path)).unwrap().len(), row.bytes, "and its file");
    assert!(!log.contains("only event footage left"), "event footage was never needed:\n{log}");
    assert!(log.contains("reaper: deleted"), "{log}");
    let (code, out) = check(&config, false);
    assert_eq!(code, 0, "{out}");
}
