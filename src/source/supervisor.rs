//! One supervisor for every camera's source loop, whether the loop is a thread (testsrc,
//! V4L2: a [`ThreadSource`]) or a task on the RTSP runtime (which drives a [`Supervisor`]
//! itself, since it waits with tokio). A source kind brings only its [`Policy`], as data.
//!
//! Rules, for every kind:
//! 1. Before each attempt the source loop beats (the watchdog sees progress) and status shows
//!    the policy's `attempt_state`.
//! 2. An attempt's timestamps start after the camera's newest written frame, or after the
//!    floor the camera started with if it has written none (`docs/design/time.md`, rule 2).
//! 3. A failed attempt shows `retrying` and its error in status. The error is logged as a
//!    warning when it differs from the one before, at debug level while it repeats, so a
//!    camera left unplugged for a week does not fill the journal; an attempt the policy
//!    calls healthy forgets the error, so the next outage is logged again.
//! 4. The wait before the next attempt starts at `min`, doubles after each failure up to
//!    `max`, and goes back to `min` after an attempt the policy's [`Reset`] rule calls
//!    healthy.
//! 5. Shutdown ends the loop at once, without logging the error it caused; so does the
//!    writer going away (an attempt returning `Ok`).

use super::{Feed, FrameSender, Source};
use crate::encode::EncoderLabel;
use crate::error::{Error, Result};
use crate::service::status::{CameraState, CameraStats};
use crate::shutdown::Shutdown;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a source kind is retried: data, not code, so every kind runs the same loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The first wait after a failure.
    pub min: Duration,
    /// The longest wait: a camera that comes back records again within about this long.
    pub max: Duration,
    /// When the wait goes back to `min`.
    pub reset: Reset,
    /// What status shows while an attempt runs, until the source says otherwise.
    pub attempt_state: CameraState,
}

/// When an attempt counts as healthy, which sets the back-off back to its minimum.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reset {
    /// Never: the wait only grows (a source that fails only when it cannot start at all).
    Never,
    /// When the attempt reached streaming (the source counted a connect in
    /// [`CameraStats::connects`]).
    WhenStreamed,
    /// When the attempt lasted longer than this.
    After(Duration),
}

/// The state of one camera's retry loop. Sync on purpose: thread loops and the RTSP task
/// call the same two methods around each attempt.
pub struct Supervisor {
    camera: String,
    policy: Policy,
    stats: Arc<CameraStats>,
    /// Timestamps of the next attempt start after this.
    floor_us: Option<i64>,
    /// The wait after the next failure, unless the attempt was healthy.
    backoff: Duration,
    /// The last error logged as a warning.
    last_error: Option<String>,
    /// When the current attempt started, and the connect count then.
    attempt: (Instant, u64),
    /// Errors logged as warnings, for the tests of rule 3.
    #[cfg(test)]
    warnings: usize,
}

impl Supervisor {
    /// A supervisor for `camera`, whose first attempt starts after `floor_us`.
    pub fn new(camera: &str, policy: Policy, stats: Arc<CameraStats>, floor_us: Option<i64>) -> Supervisor {
        Supervisor {
            camera: camera.to_owned(),
            backoff: policy.min,
            policy,
            stats,
            floor_us,
            last_error: None,
            attempt: (Instant::now(), 0),
            #[cfg(test)]
            warnings: 0,
        }
    }

    /// Call before each attempt (rules 1 and 2); returns where its timestamps must start.
    pub fn start_attempt(&mut self) -> Option<i64> {
        self.stats.set_state(self.policy.attempt_state);
        self.stats.beat_source();
        self.attempt = (Instant::now(), self.stats.connects.load(Relaxed));
        let last = self.stats.last_frame_us.load(Relaxed);
        if last > 0 {
            self.floor_us = Some(self.floor_us.map_or(last, |f| f.max(last)));
        }
        self.floor_us
    }

    /// Call after a failed attempt with its error, as it may be shown (rules 3 and 4);
    /// returns how long to wait before the next one.
    pub fn after_failure(&mut self, error: &str) -> Duration {
        self.stats.set_error(error);
        self.stats.set_state(CameraState::Retrying);
        if self.was_healthy() {
            self.backoff = self.policy.min;
            self.last_error = None;
        }
        let delay = self.backoff;
        self.backoff = (delay * 2).min(self.policy.max);
        if self.first_time(error) {
            log::warn!("camera {}: {error}; retrying in {}", self.camera, human(delay));
            #[cfg(test)]
            {
                self.warnings += 1;
            }
        } else {
            log::debug!("camera {}: {error}; retrying in {}", self.camera, human(delay));
        }
        delay
    }

    /// Whether `error` differs from the last one logged as a warning (and is now that one).
    fn first_time(&mut self, error: &str) -> bool {
        if self.last_error.as_deref() == Some(error) {
            return false;
        }
        self.last_error = Some(error.to_owned());
        true
    }

    /// Whether the attempt that just ended was healthy by the policy's [`Reset`] rule.
    fn was_healthy(&self) -> bool {
        match self.policy.reset {
            Reset::Never => false,
            Reset::WhenStreamed => self.stats.connects.load(Relaxed) != self.attempt.1,
            Reset::After(d) => self.attempt.0.elapsed() > d,
        }
    }
}

/// `500 ms`, `2 s`: a wait as a person reads it.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// One attempt of a thread-based source with settings `C`: records from the floor on
/// until an error, shutdown, or the writer going away (`Ok`).
pub type Attempt<C> = fn(&C, Option<i64>, &mut FrameSender, &Arc<CameraStats>, &Shutdown) -> Result<()>;

/// A source that records on a thread of its own, `{prefix}-{camera}`, calling `attempt`
/// again and again under a [`Supervisor`] until shutdown or the writer goes away.
pub struct ThreadSource<C> {
    /// The thread's name before the camera's id (`src`, `v4l`).
    pub prefix: &'static str,
    /// How it is retried.
    pub policy: Policy,
    /// What encodes its video, until a session knows better.
    pub encoder: EncoderLabel,
    /// Its settings.
    pub config: C,
    /// One attempt.
    pub attempt: Attempt<C>,
}

impl<C: Send + 'static> Source for ThreadSource<C> {
    fn encoder(&self) -> EncoderLabel {
        self.encoder
    }

    fn start(self: Box<Self>, feed: Feed) -> Result<Option<JoinHandle<()>>> {
        let Feed { camera, mut out, floor_us, stats, shutdown } = feed;
        let mut sup = Supervisor::new(&camera, self.policy, stats.clone(), floor_us);
        let thread = std::thread::Builder::new().name(format!("{}-{camera}", self.prefix)).spawn(move || loop {
            let r = (self.attempt)(&self.config, sup.start_attempt(), &mut out, &stats, &shutdown);
            if shutdown.is_triggered() {
                return;
            }
            let Err(e) = r else { return };
            if shutdown.wait_timeout(sup.after_failure(&e.to_string())) {
                return;
            }
        });
        thread.map(Some).map_err(|e| Error::io("spawning source thread", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn policy(min: Duration, max: Duration, reset: Reset) -> Policy {
        Policy { min, max, reset, attempt_state: CameraState::Connecting }
    }

    /// Runs one failed attempt; `streamed` counts a connect during it.
    fn fail(s: &mut Supervisor, streamed: bool) -> Duration {
        s.start_attempt();
        if streamed {
            s.stats.connects.fetch_add(1, Relaxed);
        }
        s.after_failure("camera went away")
    }

    #[test]
    fn the_wait_doubles_up_to_the_maximum_and_never_resets_by_default() {
        let mut s = Supervisor::new("c", policy(SECOND, 60 * SECOND, Reset::Never), Arc::default(), None);
        let waits: Vec<u64> = (0..8).map(|_| fail(&mut s, true).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn a_session_that_streamed_starts_the_wait_over() {
        let mut s = Supervisor::new("c", policy(SECOND, 2 * SECOND, Reset::WhenStreamed), Arc::default(), None);
        let waits: Vec<u64> = [false, false, false, true, false].map(|st| fail(&mut s, st).as_secs()).to_vec();
        assert_eq!(waits, [1, 2, 2, 1, 2]);
    }

    #[test]
    fn only_a_long_enough_session_starts_the_wait_over() {
        let min = Duration::from_millis(500);
        let mut s = Supervisor::new("c", policy(min, 4 * SECOND, Reset::After(30 * SECOND)), Arc::default(), None);
        let waits: Vec<u128> = (0..5).map(|_| fail(&mut s, true).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000], "short sessions keep growing the wait");
        s.start_attempt();
        s.attempt.0 -= 31 * SECOND;
        assert_eq!(s.after_failure("camera went away"), min, "a 31 s session was healthy");
    }

    #[test]
    fn status_follows_the_attempts() {
        let stats = Arc::new(CameraStats::default());
        let mut s = Supervisor::new("c", policy(SECOND, SECOND, Reset::Never), stats.clone(), None);
        s.start_attempt();
        assert_eq!(stats.state(), CameraState::Connecting);
        assert!(stats.source_beat_ms.load(Relaxed) > 0, "an attempt is progress for the watchdog");
        s.after_failure("no such device");
        assert_eq!(stats.state(), CameraState::Retrying);
        assert_eq!(stats.last_error().as_deref(), Some("no such device"));
    }

    #[test]
    fn an_error_is_a_warning_once_until_a_healthy_session() {
        let mut s = Supervisor::new("c", policy(SECOND, SECOND, Reset::WhenStreamed), Arc::default(), None);
        let fail_with = |s: &mut Supervisor, error: &str, streamed: bool| {
            s.start_attempt();
            if streamed {
                s.stats.connects.fetch_add(1, Relaxed);
            }
            s.after_failure(error);
            s.warnings
        };
        assert_eq!(fail_with(&mut s, "no such device", false), 1);
        assert_eq!(fail_with(&mut s, "no such device", false), 1, "a repeat is not a warning");
        assert_eq!(fail_with(&mut s, "device error (unplugged?)", false), 2, "a different error is");
        assert_eq!(fail_with(&mut s, "device error (unplugged?)", false), 2);
        assert_eq!(fail_with(&mut s, "device error (unplugged?)", true), 3, "the next outage is");
    }

    #[test]
    fn attempts_resume_after_the_newest_written_frame() {
        let stats = Arc::new(CameraStats::default());
        let mut s = Supervisor::new("c", policy(SECOND, SECOND, Reset::Never), stats.clone(), Some(1_000));
        assert_eq!(s.start_attempt(), Some(1_000), "nothing written yet: the camera's floor");
        stats.last_frame_us.store(5_000, Relaxed);
        s.after_failure("x");
        assert_eq!(s.start_attempt(), Some(5_000));
    }

    /// The thread loop: fails twice, then the writer is gone (`Ok`): three attempts, then
    /// the thread ends; shutdown ends a loop that would retry for ever.
    #[test]
    fn a_thread_source_retries_until_the_writer_goes_away_or_shutdown() {
        use std::sync::atomic::AtomicUsize;
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn flaky(fail: &usize, _: Option<i64>, _: &mut FrameSender, _: &Arc<CameraStats>, _: &Shutdown) -> Result<()> {
            match CALLS.fetch_add(1, Relaxed) < *fail {
                true => Err(crate::err!(Media, "camera went away")),
                false => Ok(()),
            }
        }
        let start = |fail: usize, shutdown: &Shutdown| {
            let stats = Arc::new(CameraStats::default());
            let (tx, _rx) = std::sync::mpsc::sync_channel(1);
            let feed = Feed {
                camera: "c".into(),
                out: FrameSender::new(tx, stats.clone()),
                floor_us: None,
                stats: stats.clone(),
                shutdown: shutdown.clone(),
            };
            let ms = Duration::from_millis(1);
            let src = ThreadSource {
                prefix: "t",
                policy: policy(ms, ms, Reset::Never),
                encoder: EncoderLabel::None,
                config: fail,
                attempt: flaky,
            };
            (Box::new(src).start(feed).unwrap().unwrap(), stats)
        };
        let (thread, stats) = start(2, &Shutdown::new());
        thread.join().unwrap();
        assert_eq!(CALLS.load(Relaxed), 3);
        assert_eq!(stats.last_error().as_deref(), Some("camera went away"));
        let shutdown = Shutdown::new();
        let (thread, _) = start(usize::MAX, &shutdown);
        shutdown.trigger();
        thread.join().unwrap();
    }

    #[test]
    fn waits_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(500)), "500 ms");
        assert_eq!(human(2 * SECOND), "2 s");
    }
}
