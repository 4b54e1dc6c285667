//! Cameras' own motion detection → events. For a camera with `onvif_events = true`, one
//! thread (`motion-{id}`) holds an ONVIF PullPoint subscription ([`watch_motion`]: blocked
//! in a pull most of the time, at most one reply of `soap::MAX_REPLY_BYTES` in memory) and
//! turns each motion change into an event through the one events entry point, so it is
//! marked, kept by its retention class (`events_max_age`), told over MQTT and listed like any
//! other event.
//!
//! Rules:
//! 1. Motion starts an event labelled [`MOTION_LABEL`], source `camera`, at the camera's
//!    time on our clock (`onvif::events`), unless one is open already (cameras repeat
//!    `IsMotion=true`, e.g. in the `Initialized` message of every new subscription).
//! 2. Motion ends the open one at the camera's time (never before its start). A stop the
//!    camera never sends is covered by the camera's `max_duration`.
//! 3. The thread stops with its camera's stop signal (noticed within `PULL_WAIT` plus the
//!    network's delay) and unsubscribes; nobody waits for it but the service's end.
//!
//! Cost: one thread and a few KiB per camera that asks for it; nothing otherwise.

use crate::config::CameraConfig;
use crate::error::{Error, Result};
use crate::events::{Events, Source, StartEvent};
use crate::onvif::events::{watch_motion, MotionEvent, MotionSource};
use crate::onvif::soap::Client;
use crate::onvif::wsse::Credentials;
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The label of events a camera's motion detection starts.
pub const MOTION_LABEL: &str = "motion";

/// Where motion changes go (the service passes [`into_events`]).
pub type MotionSink = Arc<dyn Fn(&MotionEvent) + Send + Sync>;

/// Starts the motion thread of `cam` when it asks for one; it ends when `stop` fires.
pub fn spawn(cam: &CameraConfig, sink: MotionSink, stop: &Shutdown) -> Result<Option<JoinHandle<()>>> {
    let Some(m) = &cam.motion else { return Ok(None) };
    let creds = m.username.clone().map(|u| Credentials::new(u, m.password.clone().unwrap_or_default()));
    let src = MotionSource { camera: cam.id.clone(), device_url: m.device_url.clone(), events_url: None };
    let stop = stop.clone();
    let t = std::thread::Builder::new()
        .name(format!("motion-{}", cam.id))
        .spawn(move || watch_motion(&src, &Client::new(creds), &stop, |e| sink(&e)))
        .map_err(|e| Error::io("spawning a motion thread", e))?;
    Ok(Some(t))
}

/// Motion changes as events (rules 1 and 2); a refusal (an unknown camera, a time the
/// events reject) is logged.
pub fn into_events(events: Arc<Events>) -> MotionSink {
    Arc::new(move |m: &MotionEvent| {
        if let Err(e) = apply(&events, m) {
            log::warn!("camera {}: motion event: {e}", m.camera);
        }
    })
}

fn apply(events: &Events, m: &MotionEvent) -> Result<()> {
    let open = events.open_with_label(&m.camera, MOTION_LABEL)?;
    match (m.active, open) {
        (true, None) => {
            let req = StartEvent {
                camera: m.camera.clone(),
                label: MOTION_LABEL.into(),
                source: Source::Camera,
                start_us: Some(m.time_us.min(crate::time::now_us())),
                end_us: None,
                note: Some(m.topic.chars().filter(|c| !c.is_control()).take(64).collect()),
            };
            events.start(&req).map(|_| ())
        }
        (false, Some(e)) => {
            let at = m.time_us.clamp(e.start_us, crate::time::now_us());
            events.end(e.id, Some(at)).map(|_| ())
        }
        (true, Some(_)) | (false, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules 1 and 2: a start opens one event (repeats do not), a stop ends it at the
    /// camera's time but never before its start, a stop with nothing open does nothing.
    #[test]
    fn motion_opens_and_closes_one_event() {
        let config = crate::config::Config::parse(
            "[[storage]]\npath = \"/tmp/x\"\n[[camera]]\nid = \"door\"\nsource = \"testsrc\"\n",
        )
        .unwrap();
        let index = Arc::new(crate::index::Index::open_in_memory().unwrap());
        let events = Events::new(index, &config, crate::time::now_us);
        let now = crate::time::now_us();
        let m = |active, time_us| MotionEvent {
            camera: "door".into(),
            active,
            time_us,
            topic: "RuleEngine/CellMotionDetector/Motion".into(),
            source: None,
        };
        apply(&events, &m(false, now)).unwrap();
        apply(&events, &m(true, now - 3_000_000)).unwrap();
        apply(&events, &m(true, now - 2_000_000)).unwrap();
        let open = events.open_with_label("door", MOTION_LABEL).unwrap().unwrap();
        assert_eq!((open.start_us, open.source.as_str()), (now - 3_000_000, "camera"));
        apply(&events, &m(false, now - 9_000_000)).unwrap();
        let ended = events.get(open.id).unwrap();
        assert_eq!(ended.end_us, Some(ended.start_us), "never ends before it started");
        assert!(events.open_with_label("door", MOTION_LABEL).unwrap().is_none());
    }
}
