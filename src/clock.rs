//! Frame timestamps for sources that have no clock of their own (testsrc, V4L2), by the
//! rule in `docs/design/time.md`:
//!
//! - Timestamps come from the monotonic clock, anchored to the wall clock at start, so frame
//!   spacing is smooth and immune to wall-clock steps between frames.
//! - If the wall clock and the anchored time drift apart by more than [`MAX_DRIFT_US`], the
//!   clock re-anchors **forwards** only (an NTP sync after boot moves time ahead: a gap).
//!   A backward step is not followed: timestamps stay monotonic, so chunks never overlap.
//! - A new stream starts no earlier than a floor (the camera's newest recorded frame), so a
//!   restart after a backward clock step does not write over the recorded past.

use crate::time::now_us;
use std::time::Instant;

/// Wall-clock disagreement that triggers a forward re-anchor.
pub const MAX_DRIFT_US: i64 = 1_000_000;

/// Maps monotonic instants to wall-clock µs for one stream.
pub struct StreamClock {
    anchor_mono: Instant,
    anchor_wall: i64,
    /// Rate of the stream clock relative to real time (testsrc `speed`; 1.0 otherwise).
    speed: f64,
    last: Option<i64>,
    /// A backward wall-clock step was already logged (log it once, not per frame).
    warned_behind: bool,
}

impl StreamClock {
    /// A clock anchored now at `max(wall clock, floor_us)`.
    pub fn new(speed: f64, floor_us: Option<i64>) -> StreamClock {
        let wall = now_us().max(floor_us.map_or(i64::MIN, |f| f + 1));
        StreamClock { anchor_mono: Instant::now(), anchor_wall: wall, speed, last: None, warned_behind: false }
    }

    /// The timestamp of an event at `mono`, monotonic non-decreasing across calls.
    pub fn ts_at(&mut self, mono: Instant) -> i64 {
        let elapsed = mono.saturating_duration_since(self.anchor_mono).as_nanos() as f64 * self.speed / 1000.0;
        let mut ts = self.anchor_wall + elapsed as i64;
        if self.speed == 1.0 {
            let wall = now_us();
            if wall - ts > MAX_DRIFT_US {
                log::info!("wall clock is {} ms ahead of the stream clock; re-anchoring", (wall - ts) / 1000);
                self.anchor_mono = mono;
                self.anchor_wall = wall;
                ts = wall;
            } else if ts - wall > MAX_DRIFT_US {
                if !self.warned_behind {
                    log::warn!(
                        "wall clock is {} ms behind the stream clock; keeping timestamps monotonic",
                        (ts - wall) / 1000
                    );
                    self.warned_behind = true;
                }
            } else {
                self.warned_behind = false;
            }
        }
        if let Some(l) = self.last {
            ts = ts.max(l);
        }
        self.last = Some(ts);
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn smooth_and_near_wall_clock() {
        let mut c = StreamClock::new(1.0, None);
        let t0 = Instant::now();
        let a = c.ts_at(t0);
        let b = c.ts_at(t0 + Duration::from_millis(40));
        assert_eq!(b - a, 40_000);
        assert!((a - now_us()).abs() < MAX_DRIFT_US);
    }

    #[test]
    fn floor_keeps_a_restart_after_recorded_footage() {
        let future = now_us() + 3_600_000_000;
        let mut c = StreamClock::new(1.0, Some(future));
        assert!(c.ts_at(Instant::now()) > future);
    }

    #[test]
    fn speed_scales_time() {
        let mut c = StreamClock::new(10.0, None);
        let t0 = Instant::now();
        let a = c.ts_at(t0);
        let b = c.ts_at(t0 + Duration::from_secs(1));
        assert_eq!(b - a, 10_000_000);
    }
}
