//! Cost of the live tap in the source thread: `LiveHub::publish` per frame while nobody
//! watches (the price every camera pays always), and with 1 and 10 viewers that keep up
//! (each drains its queue after every frame, as a socket writer would), for 1080p30
//! frames of ~4 Mbit/s (a 100 KB keyframe every 30 frames, 14 KB otherwise). CPU per
//! frame and per second of video, and bytes held.
//!
//!     cargo bench --bench live
//!
//! This measures the hub only (fragmenting, queueing, waking); the socket side is measured
//! against ffmpeg once the HTTP routes exist.

use edgenvr::live::hub::LiveHub;
use edgenvr::media::frame::EncodedFrame;
use edgenvr::media::h26x::Codec;
use std::time::Instant;

mod common;

fn frames() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        30 * 120
    } else {
        60
    }
}

/// A keyframe with openh264's real parameter sets, or a P frame, of `len` bytes.
fn frame(params: &[Vec<u8>], i: usize) -> EncodedFrame {
    let key = i % 30 == 0;
    let mut f = EncodedFrame::new(1_795_273_010_000_000 + i as i64 * 33_333, Codec::H264);
    if key {
        for p in params {
            f.push_nal(p);
        }
    }
    let mut slice = vec![if key { 0x65 } else { 0x41 }; if key { 100_000 } else { 14_000 }];
    slice[1..].iter_mut().enumerate().for_each(|(j, b)| *b = (j * 7 + i) as u8);
    f.push_nal(&slice);
    f
}

fn main() {
    let params = common::openh264_parameter_sets();
    let input: Vec<EncodedFrame> = (0..frames()).map(|i| frame(&params, i)).collect();
    println!("| viewers | µs per frame | CPU ms per second of video | bytes held (max) |");
    println!("|---|---|---|---|");
    for viewers in [0usize, 1, 10] {
        let hub = LiveHub::new("cam", 16);
        let mut vs: Vec<_> = (0..viewers).map(|_| hub.subscribe().unwrap()).collect();
        let mut held = 0;
        let t = Instant::now();
        for f in &input {
            hub.publish(f);
            for v in vs.iter_mut() {
                while let Ok(Some(b)) = v.try_next() {
                    std::hint::black_box(b);
                }
            }
            held = held.max(hub.held_bytes());
        }
        let per_frame = t.elapsed().as_secs_f64() * 1e6 / input.len() as f64;
        println!("| {viewers} | {per_frame:.2} | {:.2} | {held} |", per_frame * 30.0 / 1000.0);
    }
}
