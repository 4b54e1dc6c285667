//! An index on a 9p share (issue 11 item 9): SQLite cannot map its WAL shared memory there
//! ("starting schema upgrade: disk I/O error: Error code 5386" stopped the service at
//! start). The aarch64 `edgenvr` runs in the arm64 VM (tests/vm/) whose /mnt is a real 9p
//! share, with its index and its storage root on the share: it falls back to exclusive
//! locking, records, stops cleanly, and `edgenvr check` then finds index and files in
//! agreement. Short on purpose: one boot, eight seconds of recording.

mod common;

use common::vm::{boot, edgenvr_aarch64, share, VM};
use common::{annex_b, chunk_files, ffmpeg_decode, rows};

#[test]
fn an_index_on_a_9p_share_records_and_checks() {
    let _vm = VM.lock().unwrap_or_else(|e| e.into_inner());
    let bin = edgenvr_aarch64();
    let guest = "set -u\n\
         cat >/tmp/edgenvr.toml <<EOF\n\
         [index]\npath = \"/mnt/idx/index.db\"\n\
         [[storage]]\npath = \"/mnt/rec\"\n\
         [[camera]]\nid = \"cam\"\nsource = \"testsrc\"\nwidth = 160\nheight = 120\nfps = 5\nbitrate = 50000\nkeyframe_interval = 5\n\
         EOF\n\
         mount | grep ' /mnt ' >mount.txt\n\
         ./edgenvr run --config /tmp/edgenvr.toml >run.log 2>&1 &\n\
         pid=$!\n\
         sleep 8\n\
         kill -TERM $pid; wait $pid; echo \"edgenvr exited $?\" >>run.log\n\
         ./edgenvr check --config /tmp/edgenvr.toml >check.txt 2>&1; echo \"check exited $?\" >>check.txt\n";
    let dir = share("index9p", &[(&bin, "edgenvr")], guest);
    let (rc, console) = boot(&dir, 90);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let (log, check) = (read("run.log"), read("check.txt"));
    assert_eq!(rc, 0, "guest failed ({rc}):\n{console}\n--- run.log\n{log}\n--- check\n{check}");
    assert!(read("mount.txt").contains("9p"), "the share is 9p: {}", read("mount.txt"));
    assert!(log.contains("cannot share SQLite's WAL memory"), "the 9p failure was met and handled:\n{log}");
    assert!(log.contains("edgenvr exited 0"), "{log}");
    assert!(check.contains("check exited 0") && check.contains("0 remaining"), "{check}");

    let rows = rows(&dir.join("idx/index.db"));
    let frames: u64 = rows.iter().map(|r| r.frames).sum();
    assert!(frames >= 10, "about 5 fps for 8 s: {rows:#?}\n{log}");
    assert_eq!(ffmpeg_decode(&annex_b(&chunk_files(&dir.join("rec"))), &dir), frames);
    let _ = std::fs::remove_dir_all(&dir);
}
