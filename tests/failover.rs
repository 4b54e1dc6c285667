//! Storage-root failover: the first root fails mid-recording and recording moves to the
//! second without stopping, losing at most about a GOP.
//!
//! Two real failures: an ext4 filesystem that hits an error and remounts itself read-only
//! (what a dying SD card or USB stick does; forced with ext4's `trigger_fs_error`), and a
//! disk lazily unmounted under the recorder (a yanked stick whose mount went away).

mod common;
use common::*;
use edgenvr::index::ChunkState;
use std::path::Path;
use std::time::Duration;

/// Writes a two-root config: `first` then `second`, 1 fps GOPs at real-time speed.
fn config(d: &Path, first: &Path, second: &Path) -> std::path::PathBuf {
    let p = d.join("edgenvr.toml");
    std::fs::write(
        &p,
        format!(
            "[recording]\nsync_interval = \"500ms\"\n[index]\npath = \"{}\"\n\
             [[storage]]\npath = \"{}\"\nrequire_mount = true\nmin_free = \"1MiB\"\n\
             [[storage]]\npath = \"{}\"\nmin_free = \"1MiB\"\n{}",
            d.join("index.db").display(),
            first.display(),
            second.display(),
            testsrc_camera("cam", 1.0, 200_000)
        ),
    )
    .unwrap();
    p
}

/// Runs the service until it has recorded on `first`, calls `fail`, and checks that
/// recording continued on `second` with a gap of at most ~one GOP.
fn fails_over(d: &Path, first: &Path, second: &Path, at_minute_boundary: bool, fail: impl FnOnce()) {
    let cfg = config(d, first, second);
    let index = d.join("index.db");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(30), "recording on the first root", || {
        (index.exists() && chunk_files(first).iter().any(|f| std::fs::metadata(f).unwrap().len() > 10_000))
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    if at_minute_boundary {
        // Fail 0.3 s before the minute turns, so the failure meets the chunk rotation.
        let into_minute = edgenvr::time::now_us().rem_euclid(60_000_000);
        let wait = (59_700_000 - into_minute).rem_euclid(60_000_000);
        std::thread::sleep(Duration::from_micros(wait as u64));
    }
    fail();
    wait_for(Duration::from_secs(30), "a chunk with 3 s of video on the second root", || {
        rows(&index).iter().any(|r| r.root_id == 2 && r.frames == 0).then_some(())?;
        chunk_files(second).iter().any(|f| std::fs::metadata(f).unwrap().len() > 20_000).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let log = svc.log_text();
    assert!(svc.stop().success());
    assert!(log.contains("moving recording to the next storage root"), "{log}");

    let rows = rows(&index);
    let on_first: Vec<_> = rows.iter().filter(|r| r.root_id == 1).collect();
    let on_second: Vec<_> = rows.iter().filter(|r| r.root_id == 2).collect();
    assert!(!on_first.is_empty() && !on_second.is_empty(), "{rows:#?}");
    assert!(rows.iter().all(|r| r.state == ChunkState::Sealed));
    // The hand-over gap: from the last frame on the first root to the first on the second.
    let last_first = on_first.iter().map(|r| r.end_us).max().unwrap();
    let first_second = on_second.iter().map(|r| r.start_us).min().unwrap();
    let gap = first_second - last_first;
    assert!(gap > 0 && gap <= 2_100_000, "hand-over gap {gap} µs exceeds a GOP (1 s) plus a sync interval:\n{log}");
    // The second root's footage decodes.
    let files = chunk_files(second);
    let frames: u64 = on_second.iter().map(|r| r.frames).sum();
    assert_eq!(ffmpeg_decode(&annex_b(&files), d), frames);
}

/// Sets up an ext4 image mounted with errors=remount-ro; returns (image mount, dev name).
fn ext4_root(d: &Path) -> (Mount, String) {
    let img = d.join("usb.img");
    let mnt = d.join("usb");
    std::fs::create_dir(&mnt).unwrap();
    sh(&format!("truncate -s 64M {0} && mkfs.ext4 -q -F {0}", img.display()));
    sh(&format!("mount -o loop,errors=remount-ro {} {}", img.display(), mnt.display()));
    let dev = sh(&format!("basename $(findmnt -n -o SOURCE {})", mnt.display())).trim().to_owned();
    (Mount(mnt), dev)
}

/// The next chunk cannot be created (its day directory made immutable just before the
/// minute turns; even root cannot create files in it) while the open file still takes
/// writes: the failure meets the rotation, not a write, and recording must still move on.
#[test]
fn chunk_creation_fails_at_the_minute_boundary() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (m, _) = ext4_root(d);
    let usb = m.0.clone();
    fails_over(d, &usb, &d.join("sd"), true, || {
        for day in std::fs::read_dir(usb.join("cam")).unwrap() {
            sh(&format!("chattr +i {}", day.unwrap().path().display()));
        }
    });
    for day in std::fs::read_dir(usb.join("cam")).unwrap() {
        sh(&format!("chattr -i {}", day.unwrap().path().display()));
    }
}

#[test]
fn ext4_error_remount_read_only() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = d.join("usb.img");
    let mnt = d.join("usb");
    std::fs::create_dir(&mnt).unwrap();
    sh(&format!("truncate -s 64M {0} && mkfs.ext4 -q -F {0}", img.display()));
    sh(&format!("mount -o loop,errors=remount-ro {} {}", img.display(), mnt.display()));
    let _m = Mount(mnt.clone());
    let dev = sh(&format!("basename $(findmnt -n -o SOURCE {})", mnt.display())).trim().to_owned();
    let second = d.join("sd");
    fails_over(d, &mnt, &second, false, || {
        sh(&format!("echo 1 > /sys/fs/ext4/{dev}/trigger_fs_error"));
    });
    // The failed root's footage is still readable and intact.
    let files = chunk_files(&mnt);
    assert!(!files.is_empty());
    ffmpeg_decode(&annex_b(&files), d);
}

/// Lazily unmounts a tmpfs "USB disk" under the recorder, mid-minute or just before the
/// minute turns (then the chunk rotation, not the periodic sync check, may be the first to
/// see it: CI once caught that path moving on without saying why).
fn disk_unmounted(at_minute_boundary: bool) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (m, mnt) = tmpfs(d, "usb", 64 << 20);
    let second = d.join("sd");
    fails_over(d, &mnt, &second, at_minute_boundary, || {
        sh(&format!("umount -l {}", mnt.display()));
    });
    drop(m);
}

#[test]
fn disk_unmounted_under_the_recorder() {
    disk_unmounted(false);
}

#[test]
fn disk_unmounted_at_the_minute_boundary() {
    disk_unmounted(true);
}
