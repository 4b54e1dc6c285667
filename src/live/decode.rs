//! Decode times for the live fMP4, derived as frames arrive (`docs/design/time.md` rule 7).
//!
//! Frames come in decode order stamped with presentation times; a B-frame is presented
//! before frames decoded earlier. A fragment leaves before the next frame arrives, so the
//! export's method (sort a segment's presentation times) cannot be used: the decode time
//! is estimated from what came before, with these rules:
//!
//! 1. Until a frame is presented before the frontier (the latest presentation time so
//!    far), decode time is presentation time and a frame lasts until the next one, as
//!    before B-frames were handled: streams without reordering are unchanged.
//! 2. Once reordering was seen, decode times advance by the frame step (the smallest gap
//!    between the presentation times of successive frames, learned as they come) and steer towards the frontier
//!    less the reorder lag (the furthest a frame fell behind the frontier) less one step, by at most half a
//!    step per frame. Each step lies between half and one and a half frame steps, so decode
//!    times rise strictly and never jump by more than twice a frame's duration (what Media
//!    Source Extensions take for a discontinuity), and settle at or before each frame's
//!    presentation time; the `trun` carries the difference as a signed composition offset.
//!
//! Memory: six integers per camera.

use crate::media::frame::MAX_REORDER_US;

/// The decode-time estimator of one live stream; a new one for each stream.
#[derive(Debug, Default)]
pub struct DecodeClock {
    /// The previous frame's decode time, µs.
    last_dts: Option<i64>,
    /// The latest presentation time so far, µs.
    frontier: i64,
    /// The previous frame's presentation time, µs.
    last_pts: i64,
    /// The frame step, µs (0 until known): the smallest gap between the presentation times
    /// of frames decoded one after the other (in IBBP that is the two B-frames), rising
    /// slowly (1/64 of the difference per frame) towards larger gaps, so a lower frame rate
    /// is learned too.
    step: i64,
    /// The furthest a frame was presented before the frontier, µs (0: no reordering).
    lag: i64,
}

/// A frame step is taken to lie between these (1 ms and 1 s, the range of `trun` durations
/// a live player is given).
const STEP_RANGE_US: (i64, i64) = (1_000, 1_000_000);

impl DecodeClock {
    /// The decode time and duration (µs) of the frame presented at `pts_us`, the next in
    /// decode order.
    pub fn next(&mut self, pts_us: i64) -> (i64, i64) {
        let Some(last) = self.last_dts else {
            (self.last_dts, self.frontier, self.last_pts) = (Some(pts_us), pts_us, pts_us);
            return (pts_us, self.step.max(STEP_RANGE_US.0));
        };
        let gap = (pts_us - self.last_pts).abs().clamp(STEP_RANGE_US.0, STEP_RANGE_US.1);
        self.step = if self.step == 0 || gap < self.step { gap } else { self.step + (gap - self.step) / 64 };
        self.last_pts = pts_us;
        if pts_us > self.frontier {
            self.frontier = pts_us;
        } else {
            self.lag = self.lag.max(self.frontier - pts_us).min(MAX_REORDER_US);
        }
        let step = self.step.max(STEP_RANGE_US.0);
        let dts = if self.lag == 0 {
            pts_us.max(last + 1)
        } else {
            // One step of margin: decode times settle a frame before the earliest a frame
            // can be presented, so the steering's ripple never crosses it.
            let error = (self.frontier - self.lag - step) - (last + step);
            last + step + (error / 4).clamp(-step / 2, step / 2)
        };
        self.last_dts = Some(dts);
        (dts, step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_reordering_decode_time_is_presentation_time() {
        let mut c = DecodeClock::default();
        for i in 0..100 {
            assert_eq!(c.next(i * 40_000).0, i * 40_000);
        }
        assert_eq!(c.next(100 * 40_000).1, 40_000);
    }

    /// IBBP at 30 fps (decode order I0 P3 B1 B2 P6 B4 B5 ...): decode times rise by between
    /// half and one and a half frames, and after the first GOP lie at or before every
    /// frame's presentation time, within a few frames of it.
    #[test]
    fn b_frames_get_smooth_decode_times_before_their_presentation() {
        let d = 33_333;
        let mut c = DecodeClock::default();
        let mut order = vec![0i64];
        for g in 0..300i64 {
            order.extend([3 * g + 3, 3 * g + 1, 3 * g + 2]);
        }
        let mut last = None;
        for (i, p) in order.iter().enumerate() {
            let (dts, dur) = c.next(p * d);
            // From the first B-frame on (before it, rule 1: nothing says the stream reorders).
            if let Some(l) = last.filter(|_| i >= 3) {
                assert!(dts - l >= d / 2 - 1 && dts - l <= 3 * d / 2 + 1, "frame {i}: step {}", dts - l);
            }
            if i > 30 {
                assert!(dur >= d && dur <= d * 11 / 10, "frame {i}: duration {dur}");
                assert!(dts <= p * d && p * d - dts <= 4 * d, "frame {i}: dts {dts}, pts {}", p * d);
            }
            last = Some(dts);
        }
    }

    /// Real x264/x265 B-frame streams as live fragments (init segment + one fragment per
    /// frame, as a viewer receives them): ffmpeg decodes them without an error or warning and
    /// presents every frame at its recorded wall-clock time, in order. The viewer joins at
    /// the second keyframe: in the first GOP of a stream, before a B-frame shows the
    /// reordering, decode times can pass presentation times (negative offsets, which ffmpeg
    /// reading a file answers by shifting the whole track).
    #[test]
    fn live_b_frame_fragments_decode_in_presentation_order() {
        use crate::live::fmp4::{fragment, init_segment, StreamParams};
        use crate::media::h26x::Codec;
        const T0: i64 = 1_795_273_010_000_000;
        let dir = tempfile::tempdir().unwrap();
        for codec in [Codec::H264, Codec::H265] {
            let frames = crate::testutil::bframe_frames(dir.path(), codec, 25, 4, T0);
            let params = StreamParams::from_keyframe(&frames[0]).unwrap();
            let mut file = init_segment(&params).unwrap().to_vec();
            let mut clock = DecodeClock::default();
            let mut joined = false;
            for (i, f) in frames.iter().enumerate() {
                let (dts, duration) = clock.next(f.ts_us);
                joined |= f.keyframe && i > 0;
                if joined {
                    file.extend_from_slice(&fragment(i as u32 + 1, f, dts, duration));
                }
            }
            let path = dir.path().join("live.mp4");
            std::fs::write(&path, &file).unwrap();
            let pts = crate::testutil::decoded_presentation_times(&path);
            assert_eq!(pts.len(), 75, "{codec:?}: {pts:?}");
            for (i, p) in pts.iter().enumerate() {
                let want = T0 as f64 / 1e6 + 1.0 + i as f64 * 0.04;
                assert!((p - want).abs() < 0.001, "{codec:?}: frame {i} presented at {p}, recorded at {want}: {pts:?}");
            }
        }
    }
}
