//! Encode cost of the V4L2 software path: YUYV → I420 conversion + openh264, in ms per
//! frame at 640x480 and 1280x720, next to `ffmpeg -c:v libx264 -preset ultrafast` on the
//! same raw YUYV frames in the same run (ffmpeg converts to yuv420p itself, as we do).
//!
//!     cargo bench --bench encode
//!
//! Frames are the testsrc pattern (moving ramp, bars, box, clock, noise band).
//!
//! A second table: MJPEG decoding (what a webcam at 720p/1080p delivers), zune-jpeg plus
//! the YCbCr → I420 step, next to ffmpeg's own single-threaded MJPEG decoder on the same
//! frames.

use edgenvr::encode::convert::{i420_to_yuyv, yuyv_to_i420};
use edgenvr::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
use edgenvr::encode::yuv::I420;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Frames per run under `cargo bench`. `cargo test --all-targets` also runs this binary
/// (without `--bench`): then it is a smoke test of a few frames, so the test run checks the
/// bench still works without spending minutes in a debug build.
fn frames() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        300
    } else {
        4
    }
}
const FPS: u32 = 15;

fn main() {
    println!("| size | edgenvr: convert + openh264 | ffmpeg libx264 ultrafast | ratio |");
    println!("|---|---|---|---|");
    for (w, h, bitrate) in [(640usize, 480usize, 1_000_000u32), (1280, 720, 2_000_000)] {
        // The camera's frames, prepared before timing.
        let mut pic = I420::new(w, h);
        let mut seed = 1;
        let yuyv_frames: Vec<Vec<u8>> = (0..frames())
            .map(|i| {
                edgenvr::source::testsrc::draw(&mut pic, i as u64, "2026-11-21T14:56:03.000Z", &mut seed);
                let mut y = Vec::new();
                i420_to_yuyv(&pic, &mut y);
                y
            })
            .collect();
        let mut i420 = I420::new(w, h);
        let ours_ms = best_of_3(
            || SoftwareEncoder::new(SoftwareEncoderConfig { bitrate, fps: FPS, keyframe_interval: FPS * 2 }).unwrap(),
            |enc| {
                for (i, f) in yuyv_frames.iter().enumerate() {
                    yuyv_to_i420(f, w * 2, &mut i420);
                    enc.encode(&i420, i as i64 * 66_667).unwrap();
                }
            },
        );
        let raw = std::env::temp_dir().join(format!("edgenvr-bench-{w}x{h}-{}.yuv", std::process::id()));
        std::fs::write(&raw, yuyv_frames.concat()).unwrap();
        let size = format!("{w}x{h}");
        let rate = bitrate.to_string();
        let ff_ms = best_of_3(
            || (),
            |_| {
                ffmpeg(&[
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    "yuyv422",
                    "-s",
                    &size,
                    "-r",
                    "15",
                    "-i",
                    raw.to_str().unwrap(),
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-b:v",
                    &rate,
                    "-threads",
                    "1",
                    "-f",
                    "null",
                    "-",
                ])
            },
        );
        let _ = std::fs::remove_file(&raw);
        row(w, h, ours_ms, ff_ms);
    }
    println!("({} frames, best of 3 runs each; both single-threaded; ffmpeg's time includes process start and reading the raw file)", frames());
    println!();
    mjpeg_decode();
}

/// MJPEG decode cost, ours against ffmpeg's, on the same 4:2:2 frames.
fn mjpeg_decode() {
    println!("| size | edgenvr: zune-jpeg + to I420 | ffmpeg mjpeg decoder | ratio |");
    println!("|---|---|---|---|");
    for (w, h) in [(640usize, 480usize), (1280, 720), (1920, 1080)] {
        let file = std::env::temp_dir().join(format!("edgenvr-bench-{w}x{h}-{}.mjpeg", std::process::id()));
        let (src, n) = (format!("testsrc2=size={w}x{h}:rate=15"), frames().to_string());
        let path = file.to_str().unwrap();
        ffmpeg(&[
            "-y",
            "-f",
            "lavfi",
            "-i",
            &src,
            "-frames:v",
            &n,
            "-pix_fmt",
            "yuvj422p",
            "-q:v",
            "5",
            "-f",
            "mjpeg",
            path,
        ]);
        let data = std::fs::read(&file).unwrap();
        // Split at each SOI marker (FF D8 FF): one JPEG per frame.
        let starts: Vec<usize> =
            data.windows(3).enumerate().filter(|(_, x)| x == &[0xFF, 0xD8, 0xFF]).map(|(i, _)| i).collect();
        let jpegs: Vec<&[u8]> = starts
            .iter()
            .enumerate()
            .map(|(k, &s)| &data[s..starts.get(k + 1).copied().unwrap_or(data.len())])
            .collect();
        assert_eq!(jpegs.len(), frames());
        let mut pic = I420::new(w, h);
        let ours_ms = best_of_3(edgenvr::encode::mjpeg::MjpegDecoder::default, |dec| {
            for j in &jpegs {
                dec.decode(j, &mut pic).unwrap();
            }
        });
        let ff_ms = best_of_3(
            || (),
            |_| ffmpeg(&["-threads", "1", "-f", "mjpeg", "-i", path, "-pix_fmt", "yuvj420p", "-f", "null", "-"]),
        );
        let _ = std::fs::remove_file(&file);
        row(w, h, ours_ms, ff_ms);
    }
    println!("({} frames of 4:2:2 MJPEG at -q:v 5, best of 3; ffmpeg converts to 4:2:0 as we do)", frames());
}

/// The best of three timed runs of `run` (on the state an untimed `setup` makes each time),
/// in ms per frame:
/// single runs on a shared machine vary by tens of percent.
fn best_of_3<S>(mut setup: impl FnMut() -> S, mut run: impl FnMut(&mut S)) -> f64 {
    (0..3)
        .map(|_| {
            let mut state = setup();
            let t = Instant::now();
            run(&mut state);
            t.elapsed().as_secs_f64() * 1000.0 / frames() as f64
        })
        .fold(f64::MAX, f64::min)
}

/// Runs ffmpeg quietly, failing the bench if it fails.
fn ffmpeg(args: &[&str]) {
    let st = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("ffmpeg (scripts/install-deps.sh test)");
    assert!(st.success(), "ffmpeg {args:?} failed");
}

/// One table row: ours, the peer's, and the ratio.
fn row(w: usize, h: usize, ours_ms: f64, ff_ms: f64) {
    println!(
        "| {w}x{h} | {ours_ms:.2} ms/frame ({:.0} fps) | {ff_ms:.2} ms/frame ({:.0} fps) | {:.2} |",
        1000.0 / ours_ms,
        1000.0 / ff_ms,
        ours_ms / ff_ms
    );
    let _ = std::io::stdout().flush();
}
