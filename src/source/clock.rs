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
//! 6. A source-clock discontinuity (RTP time jumping back, or forward by more than
//!    [`MAX_SOURCE_JUMP_US`]) re-anchors at the wall clock, still monotonic.

use crate::time::now_us;

/// Wall-clock lead beyond which the stream jumps forward.
pub const MAX_DRIFT_US: i64 = 1_000_000;

/// Source-clock step treated as a discontinuity rather than elapsed time.
pub const MAX_SOURCE_JUMP_US: i64 = 10_000_000;

/// Offset at which slewing reaches its full ±1 %.
const SLEW_FULL_US: f64 = 1_000_000.0;

/// Offsets smaller than this are left alone, so wall-clock jitter never bends frame spacing.
const SLEW_DEAD_BAND_US: i64 = 50_000;

/// Maps a source clock to wall-clock µs for one stream.
pub struct StreamClock {
    /// Whether to follow the wall clock at all (false for the sped-up test camera).
    follow_wall: bool,
    floor_us: Option<i64>,
    /// The previous frame: (source µs, output µs).
    last: Option<(i64, i64)>,
    /// A backward wall-clock step was already logged.
    warned_behind: bool,
}

impl StreamClock {
    /// A clock for a stream that starts now, no earlier than `floor_us + 1`.
    pub fn new(floor_us: Option<i64>, follow_wall: bool) -> StreamClock {
        StreamClock { follow_wall, floor_us, last: None, warned_behind: false }
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
        let ts = if !(0..=MAX_SOURCE_JUMP_US).contains(&step) {
            log::info!("source clock jumped {step} µs; re-anchoring to the wall clock");
            wall_us.max(last_ts + 1)
        } else if !self.follow_wall {
            last_ts + step.max(1)
        } else {
            let offset = last_ts + step - wall_us;
            if offset < -MAX_DRIFT_US {
                log::info!("wall clock is {} ms ahead of the stream; jumping forward", -offset / 1000);
                wall_us
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
        c.ts_at_wall(1_000_000, W);
        let t = c.ts_at_wall(0, W - 5_000_000); // RTP restarted, wall clock stepped back too
        assert_eq!(t, W + 1);
    }

    #[test]
    fn unfollowed_clock_is_pure_source_time() {
        let mut c = StreamClock::new(None, false);
        let a = c.ts_at_wall(0, W);
        assert_eq!(c.ts_at_wall(10_000_000, W), a + 10_000_000);
    }
}
