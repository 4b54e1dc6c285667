//! Retention classes and event capture: the keys a camera may set and `[recording]` gives
//! defaults for (`max_age`, `events_max_age`, `pre_capture`, `post_capture`,
//! `max_duration`), and a storage root's `events_reserve`. The rules they feed are in
//! `docs/design/events.md`.

use super::check::invalid;
use super::units::{parse_duration, parse_free_space, FreeSpace};
use crate::error::Result;
use std::time::Duration;

/// Shortest age limit: a chunk is one minute, so anything shorter would delete the chunk
/// just sealed.
const MIN_AGE: Duration = Duration::from_secs(120);
/// Longest pre or post capture (the index's marking query relies on it:
/// `index::events::MAX_CAPTURE_US`).
pub const MAX_CAPTURE: Duration = Duration::from_secs(600);
/// Longest `max_duration` (the index's `MAX_SPAN_US`).
pub const MAX_EVENT_DURATION: Duration = Duration::from_secs(86_400);

/// How long one camera's footage is kept, by class, and how its events capture.
#[derive(Clone, Debug, PartialEq)]
pub struct Retention {
    /// Continuous (non-event) footage older than this is deleted (`max_age`).
    pub max_age: Option<Duration>,
    /// Event footage older than this is deleted (`events_max_age`; defaults to `max_age`).
    pub events_max_age: Option<Duration>,
    /// Footage kept before an event's start (`pre_capture`, default 5 s).
    pub pre_capture: Duration,
    /// Footage kept after an event's end (`post_capture`, default 15 s).
    pub post_capture: Duration,
    /// An event still open this long after its start is closed (`max_duration`, default 1 h).
    pub max_duration: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            max_age: None,
            events_max_age: None,
            pre_capture: Duration::from_secs(5),
            post_capture: Duration::from_secs(15),
            max_duration: Duration::from_secs(3600),
        }
    }
}

/// The retention keys as written (in `[recording]` or a `[[camera]]`).
#[derive(Default, Clone, Copy)]
pub(super) struct RawRetention<'a> {
    pub max_age: Option<&'a str>,
    pub events_max_age: Option<&'a str>,
    pub pre_capture: Option<&'a str>,
    pub post_capture: Option<&'a str>,
    pub max_duration: Option<&'a str>,
}

impl Retention {
    /// Checks `raw` (keys named `{prefix}.key` in errors) over `defaults`: a key not written
    /// keeps the default; `events_max_age` not written anywhere follows `max_age`.
    pub(super) fn resolve(prefix: &str, raw: RawRetention<'_>, defaults: &Retention) -> Result<Retention> {
        let key = |k: &str| format!("{prefix}.{k}");
        let dur = |k: &str, v: Option<&str>| -> Result<Option<Duration>> {
            v.map(|s| parse_duration(s).map_err(|why| invalid(&key(k), why))).transpose()
        };
        let age = |k: &str, v: Option<&str>| -> Result<Option<Duration>> {
            let d = dur(k, v)?;
            if d.is_some_and(|a| a < MIN_AGE) {
                return Err(invalid(&key(k), "must be at least 2m (a chunk is one minute)"));
            }
            Ok(d)
        };
        let capture = |k: &str, v: Option<&str>, default: Duration| -> Result<Duration> {
            let d = dur(k, v)?.unwrap_or(default);
            if d > MAX_CAPTURE {
                return Err(invalid(&key(k), "must be at most 10m"));
            }
            Ok(d)
        };
        let max_age = age("max_age", raw.max_age)?.or(defaults.max_age);
        let events_max_age = match age("events_max_age", raw.events_max_age)? {
            Some(a) => Some(a),
            None if raw.max_age.is_some() && defaults.events_max_age == defaults.max_age => max_age,
            None => defaults.events_max_age,
        };
        let max_duration = dur("max_duration", raw.max_duration)?.unwrap_or(defaults.max_duration);
        if max_duration < Duration::from_secs(1) || max_duration > MAX_EVENT_DURATION {
            return Err(invalid(&key("max_duration"), "must be between 1s and 24h"));
        }
        Ok(Retention {
            max_age,
            events_max_age,
            pre_capture: capture("pre_capture", raw.pre_capture, defaults.pre_capture)?,
            post_capture: capture("post_capture", raw.post_capture, defaults.post_capture)?,
            max_duration,
        })
    }
}

/// Checks a root's `events_reserve` (a size or a percentage of the file system, like
/// `min_free`): room continuous footage may not take, kept for events.
pub(super) fn events_reserve(key: &str, v: Option<&str>) -> Result<Option<FreeSpace>> {
    let Some(s) = v else { return Ok(None) };
    let r = parse_free_space(s).map_err(|why| invalid(key, why))?;
    if matches!(r, FreeSpace::Percent(p) if p > 90.0) {
        return Err(invalid(key, "must be at most 90%"));
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, FreeSpace};
    use std::time::Duration;

    const BASE: &str = "[[storage]]\npath = \"/x\"\n";

    fn parse(extra_recording: &str, camera: &str) -> crate::error::Result<Config> {
        Config::parse(&format!(
            "[recording]\n{extra_recording}\n{BASE}events_reserve = \"20%\"\n[[camera]]\nid = \"a\"\nsource = \"testsrc\"\n{camera}\n[[camera]]\nid = \"b\"\nsource = \"testsrc\"\n"
        ))
    }

    #[test]
    fn camera_keys_override_recording_defaults_and_events_follow_max_age() {
        let c =
            parse("max_age = \"7d\"\npre_capture = \"3s\"", "events_max_age = \"30d\"\npost_capture = \"1m\"").unwrap();
        let (a, b) = (&c.cameras[0].retention, &c.cameras[1].retention);
        let day = Duration::from_secs(86_400);
        assert_eq!((a.max_age, a.events_max_age), (Some(7 * day), Some(30 * day)));
        assert_eq!((a.pre_capture, a.post_capture), (Duration::from_secs(3), Duration::from_secs(60)));
        assert_eq!((b.max_age, b.events_max_age), (Some(7 * day), Some(7 * day)), "unset: follows max_age");
        assert_eq!(b.post_capture, Duration::from_secs(15));
        assert_eq!(b.max_duration, Duration::from_secs(3600));
        assert_eq!(c.storage[0].events_reserve, Some(FreeSpace::Percent(20.0)));
        let c = parse("max_age = \"7d\"\nevents_max_age = \"90d\"", "max_age = \"2d\"").unwrap();
        assert_eq!(c.cameras[0].retention.events_max_age, Some(90 * day), "an explicit default stays");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (rec, cam, key) in [
            ("pre_capture = \"11m\"", "", "recording.pre_capture"),
            ("", "post_capture = \"x\"", "camera[0].post_capture"),
            ("", "events_max_age = \"1m\"", "camera[0].events_max_age"),
            ("max_duration = \"2d\"", "", "recording.max_duration"),
            ("", "max_age = \"1s\"", "camera[0].max_age"),
        ] {
            let e = parse(rec, cam).unwrap_err().to_string();
            assert!(e.starts_with(key), "{key}: {e}");
        }
        let e = Config::parse(&format!("{BASE}events_reserve = \"95%\"\n")).unwrap_err().to_string();
        assert!(e.starts_with("storage[0].events_reserve"), "{e}");
    }
}
