//! Encode cost of the V4L2 software path: YUYV → I420 conversion + openh264, in ms per
//! frame at 640x480 and 1280x720, next to `ffmpeg -c:v libx264 -preset ultrafast` on the
//! same raw YUYV frames in the same run (ffmpeg converts to yuv420p itself, as we do).
//!
//!     cargo bench --bench encode
//!
//! Frames are the testsrc pattern (moving ramp, bars, box, clock, noise band).

use edgenvr::encode::convert::{i420_to_yuyv, yuyv_to_i420};
use edgenvr::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
use edgenvr::encode::yuv::I420;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

const FRAMES: usize = 300;
const FPS: u32 = 15;

fn main() {
    println!("| size | edgenvr: convert + openh264 | ffmpeg libx264 ultrafast | ratio |");
    println!("|---|---|---|---|");
    for (w, h, bitrate) in [(640usize, 480usize, 1_000_000u32), (1280, 720, 2_000_000)] {
        // The camera's frames, prepared before timing.
        let mut pic = I420::new(w, h);
        let mut seed = 1;
        let frames: Vec<Vec<u8>> = (0..FRAMES)
            .map(|i| {
                edgenvr::source::testsrc::draw(&mut pic, i as u64, "2026-11-21T14:56:03.000Z", &mut seed);
                let mut y = Vec::new();
                i420_to_yuyv(&pic, &mut y);
                y
            })
            .collect();

        // Best of three runs each: single runs on a shared machine vary by tens of percent.
        let ours_ms = (0..3)
            .map(|_| {
                let mut enc =
                    SoftwareEncoder::new(SoftwareEncoderConfig { bitrate, fps: FPS, keyframe_interval: FPS * 2 })
                        .unwrap();
                let mut i420 = I420::new(w, h);
                let t = Instant::now();
                for (i, f) in frames.iter().enumerate() {
                    yuyv_to_i420(f, w * 2, &mut i420);
                    enc.encode(&i420, i as i64 * 66_667).unwrap();
                }
                t.elapsed().as_secs_f64() * 1000.0 / FRAMES as f64
            })
            .fold(f64::MAX, f64::min);

        let raw = std::env::temp_dir().join(format!("edgenvr-bench-{w}x{h}-{}.yuv", std::process::id()));
        std::fs::write(&raw, frames.concat()).unwrap();
        let ff_ms = (0..3)
            .map(|_| {
                let t = Instant::now();
                let st = Command::new("ffmpeg")
                    .args([
                        "-v",
                        "error",
                        "-f",
                        "rawvideo",
                        "-pix_fmt",
                        "yuyv422",
                        "-s",
                        &format!("{w}x{h}"),
                        "-r",
                        "15",
                        "-i",
                    ])
                    .arg(&raw)
                    .args(["-c:v", "libx264", "-preset", "ultrafast", "-b:v", &bitrate.to_string(), "-threads", "1"])
                    .args(["-f", "null", "-"])
                    .stdin(Stdio::null())
                    .status()
                    .expect("ffmpeg (scripts/install-deps.sh test)");
                assert!(st.success());
                t.elapsed().as_secs_f64() * 1000.0 / FRAMES as f64
            })
            .fold(f64::MAX, f64::min);
        let _ = std::fs::remove_file(&raw);
        println!(
            "| {w}x{h} | {ours_ms:.2} ms/frame ({:.0} fps) | {ff_ms:.2} ms/frame ({:.0} fps) | {:.2} |",
            1000.0 / ours_ms,
            1000.0 / ff_ms,
            ours_ms / ff_ms
        );
        let _ = std::io::stdout().flush();
    }
    println!("({FRAMES} frames, best of 3 runs each; both single-threaded; ffmpeg's time includes process start and reading the raw file)");
}
