//! Local cameras on real V4L2 kernel drivers: the aarch64 `edgenvr` runs inside an arm64 VM
//! (qemu-system-aarch64 booting Debian's own arm64 kernel, tests/vm/) where `vivid` is a
//! real capture driver, `v4l2loopback` a capture node fed with H.264, and `vicodec` a real
//! memory-to-memory encoder (FWHT, not H.264: the Pi's bcm2835-codec cannot exist here).
//!
//! What runs where: the VM setup, the aarch64 binaries and every check of the results run on
//! the host; inside the guest only edgenvr, the driver controls (v4l2-ctl, modprobe) and the
//! frame feeder run. The guest's recordings come back through the 9p share.
//!
//! The aarch64 binaries come from `EDGENVR_AARCH64_BIN` / `EDGENVR_AARCH64_LIBTEST` when set
//! (scripts/test.sh builds them once), or are built here (tests/common/vm.rs).

mod common;

use common::vm::{boot, edgenvr_aarch64, libtest_aarch64, read, share, VM};
use common::{annex_b, chunk_files, ffmpeg_decode, rows, sh};
use edgenvr::media::h26x::{split_annex_b, Codec, NalKind};
use std::collections::HashSet;

/// The guest's config: one V4L2 camera, storage on the guest's tmpfs.
const CONFIG: &str = r#"cat >/tmp/edgenvr.toml <<EOF
[server]
listen = "127.0.0.1:8080"
[[storage]]
path = "/tmp/rec"
[[camera]]
id = "cam"
device = "$DEV"
$EXTRA
EOF
"#;

/// Copies the recording and the log back to the share after edgenvr stopped.
const COLLECT: &str = "rm -rf /mnt/rec; cp -a /tmp/rec /mnt/rec\n";

/// How many times the vivid test unplugs and replugs the camera: 3, or `EDGENVR_VM_REPLUGS`
/// (at least 2) for a soak that shows whether anything grows from one session to the next.
/// The memory check compares the later unplugged moments with the first (see there).
fn replugs() -> usize {
    std::env::var("EDGENVR_VM_REPLUGS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(2)
}

/// vivid through openh264, unplugged and plugged back ([`replugs`] times): vivid's `disconnect`
/// control makes the node fail like a yanked USB camera, then the driver is unloaded (the
/// node vanishes) and loaded again (it returns). Recording resumes by itself each time, with
/// the gap in the index, and a session's memory goes with it.
#[test]
fn vivid_records_through_openh264_and_resumes_after_unplug() {
    let _vm = VM.lock().unwrap_or_else(|e| e.into_inner());
    let bin = edgenvr_aarch64();
    let replugs = replugs();
    // The process's anonymous memory, exact (VmRSS lags: it is summed from per-thread counters).
    let anon = "grep ^Anonymous: /proc/$pid/smaps_rollup";
    let guest = format!(
        "set -u\nDEV=$VIVID_DEV\nEXTRA='width = 640\nheight = 480\nfps = 25\nencoder = \"auto\"\nkeyframe_interval = 25'\n\
         {CONFIG}\
         ./edgenvr probe --json >probe.json || exit 10\n\
         ./edgenvr probe >probe.txt\n\
         ./edgenvr run --config /tmp/edgenvr.toml >run.log 2>&1 &\n\
         pid=$!\n\
         sleep 8; {anon} >anon-8s.txt\n\
         sleep 12\n\
         for round in $(seq {replugs}); do\n\
           v4l2-ctl -d $VIVID_DEV -c disconnect=1 || exit 11\n\
           for i in $(seq 50); do rmmod vivid 2>/dev/null && break; sleep 0.2; done\n\
           lsmod | grep -q '^vivid' && exit 12\n\
           sleep 4\n\
           [ -e $VIVID_DEV ] && exit 13\n\
           {anon} >anon-unplugged-$round.txt\n\
           modprobe vivid $VIVID_OPTS || exit 14\n\
           sleep 14\n\
         done\n\
         sleep 6\n\
         kill -TERM $pid; wait $pid; echo \"edgenvr exited $?\" >>run.log\n\
         {COLLECT}"
    );
    let dir = share("vivid", &[(&bin, "edgenvr")], &guest);
    // Each round takes about 20 s in the guest; the rest is boot, probe and the first session.
    let (rc, console) = boot(&dir, 125 + 25 * replugs as u32);
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    assert_eq!(rc, 0, "guest failed ({rc}):\n{console}\n--- run.log\n{log}");
    assert!(log.contains("edgenvr exited 0"), "clean shutdown:\n{log}");

    // The probe saw vivid as a camera, vicodec as an M2M FWHT device, and no H.264 encoder.
    let probe: serde_json::Value = serde_json::from_str(&read(&dir.join("probe.json"))).unwrap();
    let devs = probe["devices"].as_array().unwrap();
    let vivid = devs.iter().find(|d| d["driver"] == "vivid").expect("vivid probed");
    assert_eq!(vivid["kind"], "camera");
    let yuyv = vivid["formats"].as_array().unwrap().iter().find(|f| f["fourcc"] == "YUYV").expect("YUYV offered");
    let s640 = yuyv["sizes"].as_array().unwrap().iter().find(|s| s["width"] == 640 && s["height"] == 480).unwrap();
    assert_eq!(s640["fps"][0], 25.0, "{s640}");
    let enc = devs.iter().find(|d| d["card"] == "vicodec" && d["m2m"]["output"][0] == "FWHT").expect("vicodec");
    assert_eq!(enc["kind"], "mem_to_mem");
    assert!(probe["h264_encoder"].is_null());
    assert!(read(&dir.join("probe.txt")).contains("hardware H.264 encoder: none"));

    // A session before the first unplug and one after each replug, with the gaps between them.
    assert_eq!(log.matches("YUYV 640x480 at 25 fps, openh264").count(), replugs + 1, "{log}");
    assert!(log.contains("device error (unplugged?)") || log.contains("No such device"), "{log}");
    let root = dir.join("rec");
    let rows = rows(&root.join("index.db"));
    assert!(rows.len() > replugs, "{rows:?}");
    assert!(rows.iter().all(|r| r.codec == Codec::H264 && r.frames > 0));
    // Rows within a session follow each other (a minute may turn in one); the unplugged
    // seconds are the only gaps.
    let gaps: Vec<usize> = (1..rows.len()).filter(|&i| rows[i].start_us - rows[i - 1].end_us >= 3_000_000).collect();
    assert_eq!(gaps.len(), replugs, "one gap per unplug: {rows:?}");
    let before: u64 = rows[..gaps[0]].iter().map(|r| r.frames).sum();
    assert!(before >= 25, "frames before the first unplug: {before}");
    let last = &rows[gaps[replugs - 1]..];
    let resumed = last.last().unwrap().end_us - last[0].start_us;
    assert!(resumed >= 5_000_000, "recording resumed for seconds after the last replug: {last:?}");

    // Memory: a session's buffers and encoder go when it ends, every time. Measured while
    // the camera is unplugged, so no session is open: each unplugged moment is within
    // allocator noise of the first (measured: 1.8, 2.0, 2.0 MiB), while a session kept alive
    // would add its encoder (a 10 MiB mapping, 3 to 9 MiB of it touched). Without the fixed
    // mmap threshold (src/service/allocator.rs) the second and third were 11.7 to 13.7 MiB.
    let kib = |f: &str| -> u64 {
        read(&dir.join(f)).split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("Anonymous kB")
    };
    let unplugged: Vec<u64> = (1..=replugs).map(|r| kib(&format!("anon-unplugged-{r}.txt"))).collect();
    eprintln!("edgenvr anonymous memory in the VM: {} kB at 8 s, unplugged {unplugged:?} kB", kib("anon-8s.txt"));
    assert!(
        unplugged.iter().all(|&u| u <= unplugged[0] + 2048),
        "a session's memory stayed after it ended: {unplugged:?} kB unplugged"
    );

    // Every stored frame decodes, and the picture is 640x480.
    let files = chunk_files(&root);
    let total: u64 = rows.iter().map(|r| r.frames).sum();
    let stream = annex_b(&files);
    assert_eq!(ffmpeg_decode(&stream, &dir), total);
    let h264 = dir.join("all.h264");
    std::fs::write(&h264, &stream).unwrap();
    let dims = sh(&format!(
        "ffprobe -v error -f h264 -select_streams v:0 -show_entries stream=width,height -of csv=p=0 {}",
        h264.display()
    ));
    assert_eq!(dims.trim(), "640,480");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Splits an Annex B stream into access units, each ending with its (single) slice.
fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut aus = Vec::new();
    let mut cur = Vec::new();
    for nal in split_annex_b(stream) {
        cur.extend_from_slice(&[0, 0, 0, 1]);
        cur.extend_from_slice(nal);
        if Codec::H264.classify(nal).is_slice() {
            aus.push(std::mem::take(&mut cur));
        }
    }
    aus
}

/// A camera that delivers H.264 itself (v4l2loopback fed one access unit per write, as a
/// UVC H.264 webcam delivers them): stored byte for byte, never re-encoded.
#[test]
fn h264_from_the_camera_is_stored_as_delivered() {
    let _vm = VM.lock().unwrap_or_else(|e| e.into_inner());
    let bin = edgenvr_aarch64();
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("cam.h264");
    sh(&format!(
        "ffmpeg -v error -f lavfi -i testsrc2=size=640x480:rate=10 -t 4 -c:v libx264 -preset veryfast -profile:v main \
         -bf 0 -g 10 -keyint_min 10 -sc_threshold 0 -pix_fmt yuv420p -bsf:v h264_mp4toannexb -f h264 {}",
        src.display()
    ));
    let stream = std::fs::read(&src).unwrap();
    let aus = access_units(&stream);
    assert_eq!(aus.len(), 40);
    let guest = "set -u\nDEV=$LOOPBACK_DEV\nEXTRA='format = \"H264\"'\n".to_string()
        + CONFIG
        + "cp -a /mnt/au /tmp/au\n\
           exec 3<>$LOOPBACK_DEV\n\
           v4l2-ctl -d $LOOPBACK_DEV --set-fmt-video-out=width=640,height=480,pixelformat=H264 || exit 10\n\
           ( while [ ! -e /tmp/stop ]; do for f in /tmp/au/*; do dd if=$f of=$LOOPBACK_DEV bs=1M 2>/dev/null; usleep 100000; done; done ) &\n\
           feeder=$!\n\
           sleep 2\n\
           ./edgenvr run --config /tmp/edgenvr.toml >run.log 2>&1 &\n\
           pid=$!\n\
           sleep 15\n\
           kill -TERM $pid; wait $pid; echo \"edgenvr exited $?\" >>run.log\n\
           touch /tmp/stop; wait $feeder\n"
        + COLLECT;
    // One file per access unit: the feeder writes each with one write(), as a camera
    // delivers one frame per buffer.
    let dir = share("h264", &[(&bin, "edgenvr")], &guest);
    std::fs::create_dir(dir.join("au")).unwrap();
    for (i, au) in aus.iter().enumerate() {
        std::fs::write(dir.join(format!("au/{i:03}")), au).unwrap();
    }
    let (rc, console) = boot(&dir, 90);
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    assert_eq!(rc, 0, "guest failed ({rc}):\n{console}\n--- run.log\n{log}");
    assert!(log.contains("H264 640x480") && log.contains("stored as delivered"), "{log}");
    assert!(log.contains("edgenvr exited 0"), "{log}");

    let root = dir.join("rec");
    let rows = rows(&root.join("index.db"));
    let frames: u64 = rows.iter().map(|r| r.frames).sum();
    assert!(frames >= 50, "about 10 fps for 15 s: {frames} frames in {rows:?}");
    // Every stored slice is one the camera sent, byte for byte.
    let sent: HashSet<&[u8]> =
        split_annex_b(&stream).into_iter().filter(|n| Codec::H264.classify(n).is_slice()).collect();
    let stored = annex_b(&chunk_files(&root));
    let slices: Vec<&[u8]> =
        split_annex_b(&stored).into_iter().filter(|n| Codec::H264.classify(n).is_slice()).collect();
    assert_eq!(slices.len() as u64, frames);
    assert!(slices.iter().all(|s| sent.contains(s)), "a stored slice differs from what the camera sent");
    assert_eq!(Codec::H264.classify(split_annex_b(&stored)[0]), NalKind::Sps, "chunks start decodable");
    assert_eq!(ffmpeg_decode(&stored, scratch.path()), frames);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The memory-to-memory encoder code on vicodec, with the single-planar and the
/// multi-planar API (the Pi's encoder uses the latter), and `encoder = "hardware"` on a
/// board without an H.264 encoder: a clear error, nothing recorded, nothing crashes.
#[test]
fn m2m_encoder_runs_on_vicodec_in_both_apis() {
    let _vm = VM.lock().unwrap_or_else(|e| e.into_inner());
    let bin = edgenvr_aarch64();
    let libtest = libtest_aarch64();
    let test = "encode::m2m::tests::vm_m2m_encoder_returns_every_picture_with_its_timestamp";
    let guest = format!(
        "set -u\n\
         EDGENVR_M2M_DEVICE=$VICODEC_ENC EDGENVR_M2M_MPLANE=0 ./libtest --ignored --exact {test} >m2m-single.txt 2>&1 || exit 10\n\
         rmmod vicodec && modprobe vicodec multiplanar=1 || exit 11\n\
         enc=$(for d in /sys/class/video4linux/video*; do [ \"$(cat $d/name)\" = stateful-encoder ] && echo /dev/${{d##*/}}; done)\n\
         EDGENVR_M2M_DEVICE=$enc EDGENVR_M2M_MPLANE=1 ./libtest --ignored --exact {test} >m2m-mplane.txt 2>&1 || exit 12\n\
         DEV=$VIVID_DEV\nEXTRA='encoder = \"hardware\"'\n\
         {CONFIG}\
         ./edgenvr run --config /tmp/edgenvr.toml >run.log 2>&1 &\n\
         pid=$!\n\
         sleep 6\n\
         kill -TERM $pid; wait $pid; echo \"edgenvr exited $?\" >>run.log\n"
    );
    let dir = share("m2m", &[(&bin, "edgenvr"), (&libtest, "libtest")], &guest);
    let (rc, console) = boot(&dir, 120);
    let single = std::fs::read_to_string(dir.join("m2m-single.txt")).unwrap_or_default();
    let mplane = std::fs::read_to_string(dir.join("m2m-mplane.txt")).unwrap_or_default();
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    assert_eq!(
        rc, 0,
        "guest failed ({rc}):\n{console}\n--- single\n{single}\n--- mplane\n{mplane}\n--- run.log\n{log}"
    );
    for out in [&single, &mplane] {
        assert!(out.contains("test result: ok. 1 passed"), "{out}");
    }
    assert!(log.contains("encoder = \"hardware\" but this board has no V4L2 H.264 encoder"), "{log}");
    assert!(log.contains("edgenvr exited 0"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
