//! Thumbnails end to end, with the real binary as the decoding child: footage encoded by
//! ffmpeg (libx264, 720p) is written through the real chunk writer; the thumbnail must be a
//! JPEG of the requested size whose picture matches ffmpeg's own decode of the same
//! keyframe, scaled the same way (PSNR above 30 dB, measured by ffmpeg's psnr filter).

use edgenvr::chunk::writer::{ChunkWriter, WriterContext};
use edgenvr::config::{FreeSpace, StorageConfig};
use edgenvr::index::Index;
use edgenvr::media::frame::EncodedFrame;
use edgenvr::media::h26x::{split_annex_b, Codec, NalKind};
use edgenvr::storage::Storage;
use edgenvr::thumb::locate::Pick;
use edgenvr::thumb::Thumbnailer;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// 2026-11-21T14:56:50Z.
const T0: i64 = 1_795_273_010_000_000;

fn ffmpeg(args: &[&str]) -> String {
    let out = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).output().expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 3 s of 1280x720 at 10 fps, a keyframe every 10 frames, single-slice pictures: returns
/// the access units (a keyframe AU holds SPS, PPS, SEI and the IDR slice).
fn footage(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    let f = dir.join("src.h264");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=10",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "0",
        "-g",
        "10",
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-bsf:v",
        "h264_mp4toannexb",
        f.to_str().unwrap(),
    ]);
    let data = std::fs::read(&f).unwrap();
    let mut aus: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    for nal in split_annex_b(&data) {
        let kind = Codec::H264.classify(nal);
        cur.push(nal.to_vec());
        if kind.is_slice() {
            aus.push(std::mem::take(&mut cur));
        }
    }
    assert_eq!(aus.len(), 30);
    aus
}

fn record(dir: &Path, aus: &[Vec<Vec<u8>>]) -> (Arc<Index>, Arc<Storage>) {
    let index = Arc::new(Index::open(&dir.join("index.db")).unwrap());
    let cfg = StorageConfig {
        path: dir.join("root"),
        min_free: FreeSpace::Bytes(0),
        max_bytes: None,
        events_reserve: None,
        require_mount: false,
    };
    std::fs::create_dir_all(&cfg.path).unwrap();
    let storage = Arc::new(Storage::open(&[cfg], &index).unwrap());
    let ctx = WriterContext {
        storage: storage.clone(),
        index: index.clone(),
        on_space_pressure: Arc::new(|| {}),
        sync_interval: std::time::Duration::from_secs(1),
    };
    let mut w = ChunkWriter::new("cam", Codec::H264, ctx, Arc::default());
    for (i, au) in aus.iter().enumerate() {
        let mut f = EncodedFrame::new(T0 + i as i64 * 100_000, Codec::H264);
        for n in au {
            f.push_nal(n);
        }
        w.write_frame(&f);
    }
    w.close();
    (index, storage)
}

fn probe_size(path: &Path) -> (u64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = s.trim().split(',').collect();
    assert_eq!(v[0], "mjpeg", "{s}");
    (v[1].parse().unwrap(), v[2].parse().unwrap())
}

#[test]
fn thumbnails_match_ffmpegs_decode_of_the_same_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let aus = footage(d);
    let (index, storage) = record(d, &aus);
    let thumbs = Thumbnailer::new(env!("CARGO_BIN_EXE_edgenvr").into());

    // 1.75 s: the keyframe at 1 s (frame 10).
    let j = thumbs.jpeg(&index, &storage, "cam", Pick::AtOrBefore(T0 + 1_750_000), 320).unwrap();
    assert_eq!(j.ts_us, T0 + 1_000_000);
    let thumb = d.join("thumb.jpg");
    std::fs::write(&thumb, &j.bytes).unwrap();
    assert_eq!(probe_size(&thumb), (320, 180));

    // ffmpeg's decode of the same access unit, scaled by area averaging.
    let key: Vec<u8> = aus[10].iter().flat_map(|n| [&[0, 0, 0, 1][..], n].concat()).collect();
    assert_eq!(Codec::H264.classify(aus[10].last().unwrap()), NalKind::IdrSlice);
    std::fs::write(d.join("key.h264"), &key).unwrap();
    let reference = d.join("ref.y4m");
    ffmpeg(&[
        "-i",
        d.join("key.h264").to_str().unwrap(),
        "-frames:v",
        "1",
        "-vf",
        "scale=320:180:flags=area",
        "-pix_fmt",
        "yuv420p",
        reference.to_str().unwrap(),
    ]);
    let psnr = psnr(&thumb, &reference);
    assert!(psnr > 30.0, "PSNR {psnr} dB");

    // Full size, and the cache answers a repeat without a child.
    let full = thumbs.jpeg(&index, &storage, "cam", Pick::AtOrBefore(T0 + 2_500_000), 1920).unwrap();
    std::fs::write(&thumb, &full.bytes).unwrap();
    assert_eq!(probe_size(&thumb), (1280, 720));
    let decodes = thumbs.stats.decodes.load(std::sync::atomic::Ordering::Relaxed);
    let again = thumbs.jpeg(&index, &storage, "cam", Pick::AtOrBefore(T0 + 2_900_000), 1920).unwrap();
    assert_eq!(again.bytes, full.bytes);
    assert_eq!(thumbs.stats.decodes.load(std::sync::atomic::Ordering::Relaxed), decodes);

    // A damaged keyframe is an error from the child, not a crash of the caller.
    let e = Thumbnailer::new(env!("CARGO_BIN_EXE_edgenvr").into())
        .jpeg(&index, &storage, "cam", Pick::AtOrBefore(T0 - 1), 320)
        .unwrap_err();
    assert_eq!(e.kind(), edgenvr::error::ErrorKind::NotFound);
}

/// The child refuses garbage with a message and exit code 1.
#[test]
fn the_child_rejects_garbage() {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgenvr"))
        .args(["thumbnail-decode", "--width", "320"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&[0, 0, 0, 1, 0x65, 0xff, 0x00, 0x12]).unwrap();
    let out = c.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.is_empty());
}

/// ffmpeg's PSNR (average over Y, U, V) between a JPEG and a 4:2:0 video picture of the
/// same size, compared where both were made: as 4:2:0 video levels (comparing in RGB would
/// mostly measure the two chroma upsamplers of the conversions, not the pictures).
fn psnr(a: &Path, b: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "[0:v]scale=out_range=tv,format=yuv420p[a];[a][1:v]psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let avg = log.split("average:").nth(1).unwrap_or_else(|| panic!("no PSNR in {log}"));
    avg.split_whitespace().next().unwrap().parse().unwrap()
}
