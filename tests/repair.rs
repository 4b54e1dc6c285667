//! `edgenvr check` and `check --repair` on real recordings: a lost index is rebuilt from
//! the chunk files (the same path imports a PyNVR directory), a torn tail is cut, a row
//! whose file is gone is dropped, and check's exit status says whether problems remain.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn check_finds_and_repair_fixes_a_lost_index_a_torn_tail_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("edgenvr.toml");
    std::fs::write(
        &cfg,
        format!("[[storage]]\npath = \"{}\"\n{}", d.join("data").display(), testsrc_camera("cam", 10.0, 150_000)),
    )
    .unwrap();
    let index = d.join("data/index.db");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(60), "three sealed chunks", || (sealed_rows(&index).len() >= 3).then_some(()));
    assert!(svc.stop().success());
    let before = rows(&index);
    assert_eq!(check(&cfg, false).0, 0, "a clean recording checks clean");

    // Lose the index (an SD card that ate it), tear a file's tail, and delete one file.
    for f in ["index.db", "index.db-wal", "index.db-shm"] {
        let _ = std::fs::remove_file(d.join("data").join(f));
    }
    let files = chunk_files(&d.join("data"));
    let torn = &files[1];
    let torn_len = std::fs::metadata(torn).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(torn).unwrap();
    std::io::Write::write_all(&mut f, &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap();
    drop(f);

    let (code, out) = check(&cfg, false);
    assert_eq!(code, 1, "problems remain:\n{out}");
    assert!(out.contains("not in the index") && out.contains("torn"), "{out}");

    let (code, out) = check(&cfg, true);
    assert_eq!(code, 0, "repair fixes everything:\n{out}");
    assert_eq!(std::fs::metadata(torn).unwrap().len(), torn_len, "the torn tail was cut");
    let after = rows(&index);
    assert_eq!(after.len(), files.len(), "every chunk file is indexed again");
    for b in &before {
        let a = after.iter().find(|a| a.rel_path == b.rel_path).expect("row rebuilt");
        assert_eq!(
            (a.start_us, a.end_us, a.bytes, a.frames, &a.keyframes),
            (b.start_us, b.end_us, b.bytes, b.frames, &b.keyframes)
        );
    }

    // A file removed behind the index's back: check reports it, repair drops the row.
    std::fs::remove_file(&files[0]).unwrap();
    let (code, out) = check(&cfg, false);
    assert_eq!(code, 1);
    assert!(out.contains("is missing"), "{out}");
    assert_eq!(check(&cfg, true).0, 0);
    assert_eq!(rows(&index).len(), files.len() - 1);
    assert_eq!(check(&cfg, false).0, 0);
}
