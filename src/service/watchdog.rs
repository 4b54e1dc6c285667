//! Feeds systemd's watchdog only while recording is healthy.
//!
//! Healthy means: every enabled camera's writer loop and source loop made progress within
//! its limit ([`limits`]). A camera that is down and retrying makes progress (each retry
//! beats); a loop that is stuck (a deadlock, a blocked syscall) does not, the watchdog
//! starves, and systemd restarts the service (`Restart=on-failure`). Only the cameras whose
//! loops run are watched ([`watched`]).

use crate::config::{CameraConfig, SourceConfig};
use crate::service::notify::Notifier;
use crate::service::status::{mono_ms, CameraStats};
use crate::shutdown::Shutdown;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Time a loop may go without progress before it is considered stuck: (source, writer), ms.
pub fn limits(cam: &CameraConfig, sync_interval: Duration) -> (u64, u64) {
    let source = match &cam.source {
        // A session may legitimately wait first_frame_timeout for its first frame.
        SourceConfig::Rtsp(r) => (r.first_frame_timeout + r.frame_timeout).as_millis() as u64 + 15_000,
        _ => 15_000,
    };
    (source, sync_interval.as_millis() as u64 * 2 + 15_000)
}

/// The cameras to watch: those whose loops run, with their counters (`started` gives them
/// for a camera that started). A camera that is disabled, or whose start failed, runs no
/// loops; watched, it would starve the watchdog into restarting the service for ever.
pub fn watched(
    cameras: &[CameraConfig],
    started: impl Fn(&str) -> Option<Arc<CameraStats>>,
) -> Vec<(CameraConfig, Arc<CameraStats>)> {
    cameras.iter().filter(|c| c.enabled).filter_map(|c| Some((c.clone(), started(&c.id)?))).collect()
}

/// Reasons recording is not healthy (empty when it is). Loops that never beat are given
/// `grace_ms` after start-up.
pub fn stale_loops(
    cams: &[(CameraConfig, Arc<CameraStats>)],
    sync_interval: Duration,
    now_ms: u64,
    grace_ms: u64,
) -> Vec<String> {
    let mut why = Vec::new();
    for (cam, s) in cams.iter().filter(|(c, _)| c.enabled) {
        let (src_limit, wr_limit) = limits(cam, sync_interval);
        for (name, beat, limit) in [
            ("source", s.source_beat_ms.load(Relaxed), src_limit),
            ("writer", s.writer_beat_ms.load(Relaxed), wr_limit),
        ] {
            let last = if beat == 0 { grace_ms } else { beat };
            if now_ms.saturating_sub(last) > limit {
                why.push(format!(
                    "camera {}: {name} loop has made no progress for {} s",
                    cam.id,
                    (now_ms - last) / 1000
                ));
            }
        }
    }
    why
}

/// Pings the watchdog every `interval / 2` while [`stale_loops`] is empty. `cams` gives the
/// cameras to watch at each check: the list changes while the service runs.
pub fn spawn(
    notifier: Notifier,
    interval: Duration,
    cams: impl Fn() -> Vec<(CameraConfig, Arc<CameraStats>)> + Send + 'static,
    sync_interval: Duration,
    shutdown: Shutdown,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let grace_ms = mono_ms() + 60_000;
    std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let mut starving = false;
        while !shutdown.wait_timeout(interval / 2) {
            let why = stale_loops(&cams(), sync_interval, mono_ms(), grace_ms);
            if why.is_empty() {
                if starving {
                    log::info!("watchdog: recording is healthy again");
                }
                starving = false;
                if let Err(e) = notifier.notify("WATCHDOG=1") {
                    log::warn!("watchdog: cannot notify systemd: {e}");
                }
            } else if !starving {
                starving = true;
                log::error!("watchdog: not feeding systemd's watchdog: {}", why.join("; "));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_stuck_loop_starves_the_watchdog_and_a_retrying_one_does_not() {
        let cfg = Config::parse(
            "[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"a\"\nsource = \"testsrc\"\n\
             [[camera]]\nid = \"b\"\nurl = \"rtsp://h/s\"\n[[camera]]\nid = \"c\"\nsource = \"testsrc\"\nenabled = false\n",
        )
        .unwrap();
        let cams: Vec<_> = cfg.cameras.iter().map(|c| (c.clone(), Arc::new(CameraStats::default()))).collect();
        let sync = Duration::from_secs(2);
        let now = 1_000_000;
        // Within the start-up grace period, silence is fine.
        assert!(stale_loops(&cams, sync, now, now).is_empty());
        // Everyone beat just now: healthy (the disabled camera never counts).
        for (_, s) in &cams[..2] {
            s.source_beat_ms.store(now - 1_000, Relaxed);
            s.writer_beat_ms.store(now - 1_000, Relaxed);
        }
        assert!(stale_loops(&cams, sync, now, 0).is_empty());
        // The RTSP source may wait out first_frame_timeout (30 s) + frame_timeout (5 s).
        cams[1].1.source_beat_ms.store(now - 45_000, Relaxed);
        assert!(stale_loops(&cams, sync, now, 0).is_empty());
        // A testsrc source stuck for 20 s is not healthy; neither is a stuck writer.
        cams[0].1.source_beat_ms.store(now - 20_000, Relaxed);
        cams[1].1.writer_beat_ms.store(now - 60_000, Relaxed);
        let why = stale_loops(&cams, sync, now, 0);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("camera a: source") && why[1].contains("camera b: writer"), "{why:?}");
    }

    /// Regression: a camera whose start failed (or that is disabled) runs no loops; watched,
    /// its silence would starve the watchdog into restarting the service for ever.
    #[test]
    fn only_cameras_that_started_are_watched() {
        let cfg = Config::parse(
            "[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"ok\"\nsource = \"testsrc\"\n\
             [[camera]]\nid = \"usb\"\ndevice = \"/dev/video0\"\n\
             [[camera]]\nid = \"off\"\nsource = \"testsrc\"\nenabled = false\n",
        )
        .unwrap();
        let ok = Arc::new(CameraStats::default());
        // "usb" failed to start; "off" has counters (the API shows it) but no loops.
        let started = |id: &str| (id != "usb").then(|| ok.clone());
        let cams = watched(&cfg.cameras, started);
        assert_eq!(cams.iter().map(|(c, _)| c.id.as_str()).collect::<Vec<_>>(), ["ok"]);
        ok.source_beat_ms.store(10_000_000, Relaxed);
        ok.writer_beat_ms.store(10_000_000, Relaxed);
        assert!(stale_loops(&cams, Duration::from_secs(2), 10_000_000, 0).is_empty());
    }
}
