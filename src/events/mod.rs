//! Events: footage that matters, marked by the API, the CLI, MQTT or a camera
//! (`docs/design/events.md`).
//!
//! [`Events`] is the one way in: it checks a request (camera known, label, note, times),
//! fills in the camera's pre and post capture, writes the index (which marks the chunks
//! holding the footage, `crate::index::events`) and tells its listeners (MQTT) what
//! changed. It also closes events left open past the camera's `max_duration`; the service
//! calls [`Events::close_overdue`] from its main thread every [`CLOSE_CHECK`], so no thread
//! is added for it.

use crate::config::{Config, Retention};
use crate::error::Result;
use crate::index::events::{EventFilter, EventRow, NewEvent, MAX_SPAN_US};
use crate::index::Index;
use crate::{bail, err};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the service looks for events past their `max_duration`.
pub const CLOSE_CHECK: Duration = Duration::from_secs(5);
/// Longest label, bytes.
pub const MAX_LABEL: usize = 64;
/// Longest note, bytes.
pub const MAX_NOTE: usize = 256;
/// How far in the future a start or end may be (clocks of the callers differ a little).
const FUTURE_SLACK_US: i64 = 60_000_000;
/// Most listeners (MQTT, and room for one more).
const MAX_LISTENERS: usize = 4;

/// Who made an event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `POST /api/v1/cameras/{id}/events`.
    Api,
    /// `edgenvr event start` (through the API).
    Cli,
    /// An MQTT command topic.
    Mqtt,
    /// The camera's own motion events (ONVIF).
    Camera,
}

impl Source {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Cli => "cli",
            Source::Mqtt => "mqtt",
            Source::Camera => "camera",
        }
    }
}

/// A request to start an event, or to record one that is already over.
#[derive(Clone, Debug)]
pub struct StartEvent {
    /// Camera id.
    pub camera: String,
    /// What happened.
    pub label: String,
    /// Who asks.
    pub source: Source,
    /// Start, µs; `None` = now.
    pub start_us: Option<i64>,
    /// End, µs, for a finished event.
    pub end_us: Option<i64>,
    /// Optional free text.
    pub note: Option<String>,
}

/// What changed, for listeners.
#[derive(Clone, Debug)]
pub enum Change {
    /// An event began (or a finished one was recorded: its `end_us` is set).
    Started(EventRow),
    /// An open event ended.
    Ended(EventRow),
}

/// Told of every change, on the caller's thread: must not block (MQTT queues it).
pub type Listener = Box<dyn Fn(&Change) + Send + Sync>;

/// The events of every configured camera.
pub struct Events {
    index: Arc<Index>,
    /// Each configured camera's capture settings.
    cameras: Vec<(String, Retention)>,
    listeners: Mutex<Vec<Listener>>,
    /// What "now" is.
    clock: crate::time::WallClock,
}

/// Checks a label: 1 to [`MAX_LABEL`] bytes of `A-Z a-z 0-9 - _ . :`.
pub fn check_label(label: &str) -> Result<()> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.:".contains(&b);
    if label.is_empty() || label.len() > MAX_LABEL || !label.bytes().all(ok) {
        bail!(InvalidArgument, "label: must be 1-{MAX_LABEL} characters of A-Z a-z 0-9 - _ . :");
    }
    Ok(())
}

/// Checks a note: at most [`MAX_NOTE`] bytes, no control characters.
pub fn check_note(note: &str) -> Result<()> {
    if note.len() > MAX_NOTE || note.chars().any(char::is_control) {
        bail!(InvalidArgument, "note: must be at most {MAX_NOTE} bytes without control characters");
    }
    Ok(())
}

impl Events {
    /// The events of `config`'s cameras, telling the time by `clock`.
    pub fn new(index: Arc<Index>, config: &Config, clock: crate::time::WallClock) -> Events {
        let cameras = config.cameras.iter().map(|c| (c.id.clone(), c.retention.clone())).collect();
        Events { index, cameras, listeners: Mutex::new(Vec::new()), clock }
    }

    /// Adds a listener (at most a few; the rest are refused with `Busy`).
    pub fn subscribe(&self, f: Listener) -> Result<()> {
        let mut l = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() >= MAX_LISTENERS {
            bail!(Busy, "too many event listeners");
        }
        l.push(f);
        Ok(())
    }

    fn tell(&self, c: &Change) {
        for f in self.listeners.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            f(c);
        }
    }

    fn retention(&self, camera: &str) -> Result<&Retention> {
        self.cameras
            .iter()
            .find(|(id, _)| id == camera)
            .map(|(_, r)| r)
            .ok_or_else(|| err!(NotFound, "no camera {camera:?}"))
    }

    /// Whether `camera` is configured.
    pub fn knows(&self, camera: &str) -> bool {
        self.retention(camera).is_ok()
    }

    /// Starts an event (or records a finished one) after checking it; errors name the
    /// field (`label: ...`, `start: ...`).
    pub fn start(&self, req: &StartEvent) -> Result<EventRow> {
        let r = self.retention(&req.camera)?;
        check_label(&req.label)?;
        if let Some(n) = &req.note {
            check_note(n)?;
        }
        let now = (self.clock)();
        let start_us = req.start_us.unwrap_or(now);
        if start_us > now + FUTURE_SLACK_US {
            bail!(InvalidArgument, "start: is in the future");
        }
        if start_us < 0 {
            bail!(InvalidArgument, "start: is before 1970");
        }
        if let Some(end) = req.end_us {
            if end < start_us {
                bail!(InvalidArgument, "end: is before start");
            }
            if end > now + FUTURE_SLACK_US {
                bail!(InvalidArgument, "end: is in the future; start an open event and end it later");
            }
            if end - start_us > MAX_SPAN_US {
                bail!(InvalidArgument, "end: an event is at most 24h long");
            }
        }
        let new = NewEvent {
            camera: &req.camera,
            label: &req.label,
            source: req.source.as_str(),
            start_us,
            end_us: req.end_us,
            pre_us: r.pre_capture.as_micros() as i64,
            post_us: r.post_capture.as_micros() as i64,
            note: req.note.as_deref(),
        };
        let id = self.index.insert_event(&new)?;
        let row = self.index.event(id)?.ok_or_else(|| err!(Internal, "event {id} vanished after its insert"))?;
        log::info!("event {id} started: camera {} label {} ({})", row.camera, row.label, row.source);
        self.tell(&Change::Started(row.clone()));
        Ok(row)
    }

    /// Ends open event `id` at `at` (default now).
    pub fn end(&self, id: i64, at: Option<i64>) -> Result<EventRow> {
        let now = (self.clock)();
        let end = at.unwrap_or(now);
        if end > now + FUTURE_SLACK_US {
            bail!(InvalidArgument, "end: is in the future");
        }
        let row = self.index.end_event(id, end)?;
        log::info!("event {id} ended: camera {} label {}", row.camera, row.label);
        self.tell(&Change::Ended(row.clone()));
        Ok(row)
    }

    /// Ends every open event of `camera` with `label` (an MQTT "OFF"); returns how many.
    pub fn end_open(&self, camera: &str, label: &str) -> Result<usize> {
        let open = self.index.open_events()?;
        let mut n = 0;
        for e in open.iter().filter(|e| e.camera == camera && e.label == label) {
            self.end(e.id, None)?;
            n += 1;
        }
        Ok(n)
    }

    /// An open event of `camera` with `label`, if any (so a repeated MQTT "ON" starts
    /// nothing new).
    pub fn open_with_label(&self, camera: &str, label: &str) -> Result<Option<EventRow>> {
        Ok(self.index.open_events()?.into_iter().find(|e| e.camera == camera && e.label == label))
    }

    /// Cameras with an open event right now.
    pub fn active_cameras(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self.index.open_events()?.into_iter().map(|e| e.camera).collect();
        v.dedup();
        Ok(v)
    }

    /// Closes events open longer than their camera's `max_duration` (cameras no longer
    /// configured: 24 h), at start + max_duration. Run at startup (events a crash left
    /// open) and every [`CLOSE_CHECK`]. Returns how many it closed.
    pub fn close_overdue(&self) -> Result<usize> {
        let now = (self.clock)();
        let mut n = 0;
        for e in self.index.open_events()? {
            let max = self.retention(&e.camera).map_or(MAX_SPAN_US, |r| r.max_duration.as_micros() as i64);
            if now - e.start_us >= max {
                let row = self.index.end_event(e.id, e.start_us + max)?;
                log::info!("event {} closed after max_duration: camera {} label {}", row.id, row.camera, row.label);
                self.tell(&Change::Ended(row));
                n += 1;
            }
        }
        Ok(n)
    }

    /// A page of events (see [`Index::events_page`]).
    pub fn page(&self, f: &EventFilter, after: (i64, i64), limit: usize) -> Result<Vec<EventRow>> {
        self.index.events_page(f, after, limit)
    }

    /// One event.
    pub fn get(&self, id: i64) -> Result<EventRow> {
        self.index.event(id)?.ok_or_else(|| err!(NotFound, "no event {id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const NOW: i64 = 1_795_272_960_000_000;

    fn events() -> Events {
        let c = Config::parse(
            "[recording]\nmax_duration = \"10m\"\n[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"a\"\nsource = \"testsrc\"\npre_capture = \"2s\"\n",
        )
        .unwrap();
        Events::new(Arc::new(Index::open_in_memory().unwrap()), &c, || NOW)
    }

    fn req(label: &str) -> StartEvent {
        StartEvent {
            camera: "a".into(),
            label: label.into(),
            source: Source::Api,
            start_us: None,
            end_us: None,
            note: None,
        }
    }

    #[test]
    fn start_fills_in_capture_and_now_and_tells_listeners() {
        let ev = events();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        ev.subscribe(Box::new(move |c| s.lock().unwrap().push(format!("{c:?}").split('(').next().unwrap().to_owned())))
            .unwrap();
        let e = ev.start(&req("door")).unwrap();
        assert_eq!((e.start_us, e.end_us, e.pre_us, e.post_us), (NOW, None, 2_000_000, 15_000_000));
        ev.end(e.id, None).unwrap();
        assert_eq!(*seen.lock().unwrap(), ["Started", "Ended"]);
    }

    #[test]
    fn bad_requests_name_the_field_and_store_nothing() {
        let ev = events();
        let cases: Vec<(StartEvent, ErrorKind, &str)> = vec![
            (StartEvent { camera: "nope".into(), ..req("x") }, ErrorKind::NotFound, "no camera"),
            (req(""), ErrorKind::InvalidArgument, "label:"),
            (req("a b"), ErrorKind::InvalidArgument, "label:"),
            (StartEvent { note: Some("x\ny".into()), ..req("x") }, ErrorKind::InvalidArgument, "note:"),
            (StartEvent { start_us: Some(NOW + 3_600_000_000), ..req("x") }, ErrorKind::InvalidArgument, "start:"),
            (StartEvent { start_us: Some(NOW), end_us: Some(NOW - 1), ..req("x") }, ErrorKind::InvalidArgument, "end:"),
            (
                StartEvent { start_us: Some(NOW - 2 * MAX_SPAN_US), end_us: Some(NOW), ..req("x") },
                ErrorKind::InvalidArgument,
                "end:",
            ),
        ];
        for (r, kind, prefix) in cases {
            let e = ev.start(&r).unwrap_err();
            assert_eq!(e.kind(), kind, "{e}");
            assert!(e.to_string().starts_with(prefix), "{e}");
        }
        let all = EventFilter { from_us: 0, to_us: i64::MAX, ..Default::default() };
        assert!(ev.page(&all, (i64::MIN, 0), 10).unwrap().is_empty());
    }

    #[test]
    fn overdue_events_close_at_start_plus_max_duration() {
        let ev = events();
        let old = ev.start(&StartEvent { start_us: Some(NOW - 11 * 60_000_000), ..req("a") }).unwrap();
        let young = ev.start(&StartEvent { start_us: Some(NOW - 60_000_000), ..req("b") }).unwrap();
        assert_eq!(ev.close_overdue().unwrap(), 1);
        assert_eq!(ev.get(old.id).unwrap().end_us, Some(old.start_us + 10 * 60_000_000));
        assert_eq!(ev.get(young.id).unwrap().end_us, None);
        assert_eq!(ev.active_cameras().unwrap(), ["a"]);
    }
}
