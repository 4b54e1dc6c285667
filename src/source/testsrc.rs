//! The built-in synthetic camera: a moving test pattern with the frame's timestamp burned in,
//! encoded by openh264 and paced in real time (or `speed` times real time).
//!
//! It is the embedded default and the test source, so it feeds exactly the same writer path
//! as a real camera. The burned-in clock lets a person scrubbing an export see that the
//! stored timestamps match the picture. A band of noise at the bottom stands in for sensor
//! noise, so the encoder's bitrate behaves like a real camera's instead of collapsing on a
//! flat picture.

use super::supervisor::{Policy, Reset, ThreadSource};
use super::{FrameSender, Sent};
use crate::config::TestsrcConfig;
use crate::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
use crate::encode::yuv::I420;
use crate::encode::EncoderLabel;
use crate::error::Result;
use crate::service::status::{CameraState, CameraStats};
use crate::shutdown::Shutdown;
use crate::source::clock::StreamClock;
use crate::time::format_rfc3339;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the synthetic camera is retried. It fails only when its encoder cannot start, which
/// a retry rarely cures: the wait grows to a minute and never resets.
pub const RETRY: Policy = Policy {
    min: Duration::from_secs(1),
    max: Duration::from_secs(60),
    reset: Reset::Never,
    attempt_state: CameraState::Recording,
};

/// The synthetic camera as a [`Source`](super::Source): one thread, `src-{camera}`.
pub fn source(config: TestsrcConfig) -> ThreadSource<TestsrcConfig> {
    ThreadSource { prefix: "src", policy: RETRY, encoder: EncoderLabel::Openh264, config, attempt: run }
}

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        '-' => [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
        _ => [0; 7],
    }
}

/// Draws the pattern for frame `n` with `text` burned in at the top left.
pub fn draw(pic: &mut I420, n: u64, text: &str, noise_seed: &mut u64) {
    let (w, h) = (pic.width, pic.height);
    let (y, u, v) = pic.planes_mut();
    // Luma: a diagonal ramp scrolling right, built once per row pattern and copied.
    let shift = (n * 4) as usize;
    for row in 0..h {
        let line = &mut y[row * w..(row + 1) * w];
        for (x, p) in line.iter_mut().enumerate() {
            *p = 16 + ((x + row / 2 + shift) % 220) as u8;
        }
    }
    // Chroma: eight vertical colour bars.
    let (cw, ch) = (w / 2, h / 2);
    const BARS: [(u8, u8); 8] =
        [(128, 128), (16, 146), (166, 16), (54, 34), (202, 222), (90, 240), (240, 110), (128, 128)];
    for row in 0..ch {
        for x in 0..cw {
            let (bu, bv) = BARS[x * 8 / cw];
            u[row * cw + x] = bu;
            v[row * cw + x] = bv;
        }
    }
    // A white box bouncing left-right.
    let size = (h / 6).max(4);
    let span = (w - size) as u64;
    let pos = n * 6 % (2 * span.max(1));
    let bx = if pos < span { pos } else { 2 * span - pos } as usize;
    let by = h / 2 - size / 2;
    for row in by..by + size {
        y[row * w + bx..row * w + bx + size].fill(235);
    }
    // Noise band at the bottom eighth: mid-grey with +-12 levels of grain.
    for p in &mut y[(h - h / 8) * w..] {
        *noise_seed ^= *noise_seed << 13;
        *noise_seed ^= *noise_seed >> 7;
        *noise_seed ^= *noise_seed << 17;
        *p = 116 + (*noise_seed % 25) as u8;
    }
    // The clock: black box, white glyphs, scaled to the picture.
    let scale = (h / 160).max(1);
    let (gw, gh) = (6 * scale, 9 * scale);
    let box_w = (text.len() * gw + 2 * scale).min(w);
    let box_h = gh.min(h);
    for row in 0..box_h {
        y[row * w..row * w + box_w].fill(16);
    }
    for row in 0..box_h.div_ceil(2).min(ch) {
        u[row * cw..row * cw + box_w.div_ceil(2).min(cw)].fill(128);
        v[row * cw..row * cw + box_w.div_ceil(2).min(cw)].fill(128);
    }
    for (i, c) in text.chars().enumerate() {
        let g = glyph(c);
        let x0 = scale + i * gw;
        for (gy, bits) in g.iter().enumerate() {
            for gx in 0..5 {
                if bits & (0x10 >> gx) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    let yy = scale + gy * scale + dy;
                    let xx = x0 + gx * scale;
                    if yy < h && xx + scale <= w {
                        y[yy * w + xx..yy * w + xx + scale].fill(235);
                    }
                }
            }
        }
    }
}

/// Runs the synthetic camera until shutdown or until the writer goes away.
pub fn run(
    cfg: &TestsrcConfig,
    floor_us: Option<i64>,
    out: &mut FrameSender,
    stats: &Arc<CameraStats>,
    shutdown: &Shutdown,
) -> Result<()> {
    let mut enc = SoftwareEncoder::new(SoftwareEncoderConfig {
        bitrate: cfg.bitrate,
        fps: cfg.fps,
        keyframe_interval: cfg.keyframe_interval,
    })?;
    let mut pic = I420::new(cfg.width as usize, cfg.height as usize);
    let mut clock = StreamClock::new(floor_us, cfg.speed == 1.0);
    let origin = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / (cfg.fps as f64 * cfg.speed));
    let mut next = Instant::now();
    let mut n = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    loop {
        let now = Instant::now();
        if next > now && shutdown.wait_timeout(next - now) {
            return Ok(());
        }
        if shutdown.is_triggered() {
            return Ok(());
        }
        let now = Instant::now();
        // Fell more than a second behind (CPU starved): skip the missed frames, counted.
        let behind = now.saturating_duration_since(next);
        if behind > Duration::from_secs(1) {
            let missed = (behind.as_secs_f64() / interval.as_secs_f64()) as u64;
            log::warn!("testsrc fell {} ms behind; skipping {missed} frames", behind.as_millis());
            stats.add_dropped(missed, true);
            next = now;
            enc.force_keyframe();
        }
        stats.beat_source();
        let at = next;
        let src_us = (at.saturating_duration_since(origin).as_nanos() as f64 * cfg.speed / 1000.0) as i64;
        let ts = clock.ts(src_us);
        draw(&mut pic, n, &format_rfc3339(ts), &mut seed);
        if let Some(frame) = enc.encode(&pic, ts)? {
            match out.send(frame) {
                Sent::Queued => {}
                Sent::Dropped => enc.force_keyframe(),
                Sent::Closed => return Ok(()),
            }
        }
        n += 1;
        next = at + interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_render_inside_the_picture() {
        let mut pic = I420::new(64, 32);
        let mut seed = 1;
        draw(&mut pic, 3, "2026-11-21T14:56:03.123Z", &mut seed);
        // The clock box is black with some white glyph pixels in its first rows.
        let (y, _, _) = pic.planes();
        let top = &y[..64 * 8];
        assert!(top.contains(&235) && top.contains(&16));
        // Deterministic for the same inputs.
        let mut pic2 = I420::new(64, 32);
        let mut seed2 = 1;
        draw(&mut pic2, 3, "2026-11-21T14:56:03.123Z", &mut seed2);
        assert_eq!(pic.data, pic2.data);
        // Different frames differ (the pattern moves).
        draw(&mut pic2, 4, "2026-11-21T14:56:03.123Z", &mut 1);
        assert_ne!(pic.data, pic2.data);
    }

    #[test]
    fn every_clock_character_has_a_glyph() {
        for c in "0123456789-:.TZ".chars() {
            assert_ne!(glyph(c), [0; 7], "{c}");
        }
    }
}
