//! Frame timestamps: maps a source's own clock (the monotonic clock for testsrc and V4L2,
//! RTP time for RTSP) onto wall-clock µs, by the rules in `docs/design/time.md`:
//!
//! 1. Frame spacing comes from the source clock, so timestamps are smooth (no scheduling or
//!    network jitter).
//! 2. The stream starts at the wall clock, but no earlier than a floor (the camera's newest
//!    recorded frame), so a restart after a backward clock step never overlaps the past.
//! 3. Small disagreement with the wall clock (a camera clock running fast or slow) is slewed
//!    away: past a 50 ms dead band, each step is scaled by up to ±1 %, in proportion to the
//!    offset.
//! 4. If the wall clock is more than [`MAX_DRIFT_US`] **ahead** (NTP stepped forward after
//!    boot, frames were lost), the stream jumps forward to it: a gap.
//! 5. Timestamps never go backwards and never repeat. A wall clock stepped back is only
//!    slewed towards (1 %), so chunks never overlap.
//! 6. A source-clock discontinuity (RTP time jumping back by more than
//!    [`MAX_REORDER_US`], or forward by more than [`MAX_SOURCE_JUMP_US`]) re-anchors at the
//!    wall clock, still monotonic.
//! 7. Reordering (B-frames): frames arrive in decode order and carry their presentation
//!    time. Rules 1-6 apply to the *frontier*, the latest presentation time seen so far,
//!    which never goes back; a frame presented before the frontier (by at most
//!    [`MAX_REORDER_US`]) is stamped at the frontier's timestamp minus the same source
//!    interval, so its presentation time stays true and the frontier is not pushed. More
//!    than [`MAX_REORDER_FRAMES`] frames in a row before the frontier is no reordering (the
//!    codecs allow 16) but a source clock that stepped back: rule 6.
//! 8. (The chunk writer's last line of monotonicity: `src/chunk/writer.rs`.)
//! 9. Audio of an RTSP camera is stamped on its video's clock, not a clock of its own: its
//!    RTP time after PLAY (RTP-Info puts both streams on the same origin) minus the video
//!    frontier's, added to the frontier's timestamp, so audio follows every slew and jump
//!    of the video. Audio more than 1 s off the frontier is dropped and counted
//!    (`src/source/audio.rs`); audio never moves video timestamps.

use crate::media::frame::MAX_REORDER_US;
use crate::time::now_us;

/// Wall-clock lead beyond which the stream jumps forward.
pub const MAX_DRIFT_US: i64 = 1_000_000;

/// Source-clock step treated as a discontinuity rather than elapsed time.
pub const MAX_SOURCE_JUMP_US: i64 = 10_000_000;

/// Frames in a row presented before the frontier beyond which the source clock is taken to
/// have stepped back (H.264 and H.265 reorder at most 16 frames), so a small step back of RTP
/// time overlaps at most this many frames before it re-anchors (rule 6).
pub const MAX_REORDER_FRAMES: u32 = 16;

/// Offset at which slewing reaches its full ±1 %.
const SLEW_FULL_US: f64 = 1_000_000.0;

/// Offsets smaller than this are left alone, so wall-clock jitter never bends frame spacing.
const SLEW_DEAD_BAND_US: i64 = 50_000;

/// Maps a source clock to wall-clock µs for one stream.
pub struct StreamClock {
    /// Whether to follow the wall clock at all (false for the sped-up test camera).
    follow_wall: bool,
    floor_us: Option<i64>,
    /// The frontier (rule 7): the latest-presented frame so far, (source µs, output µs).
    last: Option<(i64, i64)>,
    /// A backward wall-clock step was already logged.
    warned_behind: bool,
    /// The furthest a frame was presented before the frontier (rule 7): how far the
    /// frontier runs ahead of the frame being decoded, which is what arrives by the wall
    /// clock; the wall clock is compared with the frontier less this.
    reorder_lag_us: i64,
    /// Frames in a row presented before the frontier.
    behind: u32,
    /// The furthest back of those frames: it becomes the reorder lag once the frontier
    /// moves on within [`MAX_REORDER_FRAMES`] (a step back of the source clock must not
    /// teach a lag).
    behind_lag_us: i64,
}

impl StreamClock {
    /// A clock for a stream that starts now, no earlier than `floor_us + 1`.
    pub fn new(floor_us: Option<i64>, follow_wall: bool) -> StreamClock {
        StreamClock {
            follow_wall,
            floor_us,
            last: None,
            warned_behind: false,
            reorder_lag_us: 0,
            behind: 0,
            behind_lag_us: 0,
        }
    }

    /// The frontier (rule 7) as (source µs, timestamp): what another stream of the same
    /// session (audio, rule 9) is stamped against. `None` before the first frame.
    pub fn frontier(&self) -> Option<(i64, i64)> {
        self.last
    }

    /// The timestamp of a frame whose source-clock time is `src_us` (any origin).
    pub fn ts(&mut self, src_us: i64) -> i64 {
        self.ts_at_wall(src_us, now_us())
    }

    /// [`ts`](Self::ts) with the wall clock given, for tests.
    pub fn ts_at_wall(&mut self, src_us: i64, wall_us: i64) -> i64 {
        let floor = self.floor_us.map_or(i64::MIN, |f| f + 1);
        let Some((last_src, last_ts)) = self.last else {
            let ts = wall_us.max(floor);
            self.last = Some((src_us, ts));
            return ts;
        };
        let step = src_us - last_src;
        if step < 0 {
            self.behind += 1;
            if -step <= MAX_REORDER_US && self.behind <= MAX_REORDER_FRAMES {
                // Rule 7: presented before the frontier (a B-frame); the frontier stays.
                self.behind_lag_us = self.behind_lag_us.max(-step);
                return (last_ts + step).max(floor);
            }
        } else if self.behind <= MAX_REORDER_FRAMES {
            self.reorder_lag_us = self.reorder_lag_us.max(self.behind_lag_us);
        }
        (self.behind, self.behind_lag_us) = (0, 0);
        let ts = if !(0..=MAX_SOURCE_JUMP_US).contains(&step) {
            log::info!("source clock jumped {step} µs; re-anchoring to the wall clock");
            wall_us.max(last_ts + 1)
        } else if !self.follow_wall {
            last_ts + step.max(1)
        } else {
            let offset = last_ts + step - self.reorder_lag_us - wall_us;
            if offset < -MAX_DRIFT_US {
                log::info!("wall clock is {} ms ahead of the stream; jumping forward", -offset / 1000);
                wall_us + self.reorder_lag_us
            } else {
                if offset > MAX_DRIFT_US && !self.warned_behind {
                    log::warn!(
                        "wall clock is {} ms behind the stream; slewing, timestamps stay monotonic",
                        offset / 1000
                    );
                    self.warned_behind = true;
                } else if offset <= MAX_DRIFT_US {
                    self.warned_behind = false;
                }
                let slew = if offset.abs() < SLEW_DEAD_BAND_US {
                    0.0
                } else {
                    (offset as f64 / SLEW_FULL_US).clamp(-1.0, 1.0) * 0.01
                };
                last_ts + ((step as f64 * (1.0 - slew)) as i64).max(1)
            }
        };
        self.last = Some((src_us, ts));
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 1_795_272_960_000_000;

    #[test]
    fn smooth_when_clocks_agree() {
        let mut c = StreamClock::new(None, true);
        assert_eq!(c.ts_at_wall(0, W), W);
        // Frames every 40 ms; the wall clock jitters by ±5 ms: output spacing stays 40 ms.
        for i in 1..100 {
            let jitter = if i % 2 == 0 { 5_000 } else { -5_000 };
            assert_eq!(c.ts_at_wall(i * 40_000, W + i * 40_000 + jitter), W + i * 40_000);
        }
    }

    #[test]
    fn floor_keeps_a_restart_after_recorded_footage() {
        let mut c = StreamClock::new(Some(W + 3_600_000_000), true);
        assert_eq!(c.ts_at_wall(0, W), W + 3_600_000_001);
    }

    #[test]
    fn forward_wall_step_jumps_and_backward_step_slews_monotonically() {
        let mut c = StreamClock::new(None, true);
        c.ts_at_wall(0, W);
        // NTP steps the wall clock forward by an hour.
        assert_eq!(c.ts_at_wall(40_000, W + 3_600_000_000), W + 3_600_000_000);
        // Then back by an hour: timestamps keep rising, 1 % slower than the source.
        let mut prev = W + 3_600_000_000;
        for i in 2..50 {
            let t = c.ts_at_wall(i * 40_000, W + i * 40_000);
            assert!(t > prev);
            assert_eq!(t - prev, 39_600);
            prev = t;
        }
    }

    #[test]
    fn a_fast_camera_clock_is_slewed_back() {
        let mut c = StreamClock::new(None, true);
        c.ts_at_wall(0, W);
        // The camera's clock runs 0.5 % fast; after 10 minutes the offset stays small.
        let mut ts = 0;
        for i in 1..=15_000 {
            ts = c.ts_at_wall(i * 40_200, W + i * 40_000);
        }
        let offset = ts - (W + 15_000 * 40_000);
        assert!(offset.abs() < 600_000, "offset {offset} µs");
    }

    #[test]
    fn source_discontinuity_reanchors_without_going_back() {
        let mut c = StreamClock::new(None, true);
        // RTP time goes back further than any reordering (rule 7), and the wall clock
        // stepped back too.
        c.ts_at_wall(1_000_000 + MAX_REORDER_US, W);
        let t = c.ts_at_wall(0, W - 5_000_000);
        assert_eq!(t, W + 1);
    }

    /// An IBBP stream at 30 fps for a minute: decode order I0 P3 B1 B2 P6 B4 B5 ...; every
    /// frame keeps its presentation time, the wall clock is tracked and the frontier never
    /// goes back (on main, each B-frame re-anchored and the clock ran 63 % fast).
    #[test]
    fn b_frames_keep_their_presentation_times() {
        let mut c = StreamClock::new(None, true);
        let d = 33_333;
        let mut order = vec![0i64];
        for g in 0..600i64 {
            order.extend([3 * g + 3, 3 * g + 1, 3 * g + 2]);
        }
        let mut frontier = i64::MIN;
        let mut by_pts = std::collections::BTreeMap::new();
        for (i, &p) in order.iter().enumerate() {
            // Frames arrive in decode order, one frame time apart.
            let t = c.ts_at_wall(p * d, W + i as i64 * d);
            // Within a millisecond: the frontier runs up to two frames ahead of arrival,
            // inside the slew dead band, so nothing bends it.
            assert!((t - W - p * d).abs() < 1_000, "frame presented at {p}: {} µs", t - W - p * d);
            assert!(by_pts.insert(p, t).is_none());
            if t > frontier {
                frontier = t;
            } else {
                assert!(frontier - t <= 2 * d, "a B-frame is at most two frames before the frontier");
            }
        }
        let ts: Vec<i64> = by_pts.values().copied().collect();
        assert!(ts.windows(2).all(|w| w[1] - w[0] > 30_000), "presentation order and spacing are kept");
    }

    /// RTP time stepping back 1.5 s (a camera's encoder restarting) looks like
    /// reordering for 16 frames, then re-anchors: later frames are stamped after the
    /// frontier again, never overlapping the past for longer.
    #[test]
    fn a_small_step_back_reanchors_after_sixteen_frames() {
        let mut c = StreamClock::new(None, true);
        let d = 40_000;
        for i in 0..50 {
            c.ts_at_wall(i * d, W + i * d);
        }
        let frontier = W + 49 * d;
        let ts: Vec<i64> = (0..40).map(|i| c.ts_at_wall(49 * d - 1_500_000 + i * d, W + (50 + i) * d)).collect();
        assert!(ts[..16].iter().all(|&t| t < frontier));
        assert!(ts[16] > frontier, "re-anchored at the 17th frame");
        assert!(ts[16..].windows(2).all(|w| w[1] - w[0] == d), "and smooth after");
    }

    #[test]
    fn unfollowed_clock_is_pure_source_time() {
        let mut c = StreamClock::new(None, false);
        let a = c.ts_at_wall(0, W);
        assert_eq!(c.ts_at_wall(10_000_000, W), a + 10_000_000);
    }
}
