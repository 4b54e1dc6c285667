//! The events routes' documents and bodies (`docs/design/events.md`):
//!
//! - `POST /api/v1/cameras/{id}/events` `{"label", "start"?, "end"?, "note"?, "source"?}`:
//!   starts an event now (or at `start`), or records a finished one (with `end`); 201 and
//!   the event;
//! - `POST /api/v1/events/{event}/end` `{"end"?}`: ends an open one; 200 and the event;
//! - `GET /api/v1/events?camera=&from=&to=&label=&limit=&after=`: `{"events": [...],
//!   "next"}`, streamed a page at a time like the other lists;
//! - `GET /api/v1/events/{event}`: the event with links to its MP4 and thumbnail.
//!
//! Times are RFC 3339 strings or Unix seconds (numbers or strings). A body's error names its
//! field (`label: must be a string`); unknown fields are refused, so a misspelt key is not
//! silently ignored.

use super::body::read_json;
use super::lists::{end_page, JsonStream, PAGE};
use super::query::Query;
use super::respond::Reply;
use super::session::{role_of, Caller};
use super::App;
use crate::error::Result;
use crate::events::{Source, StartEvent};
use crate::index::events::{EventFilter, EventRow};
use crate::time::{format_rfc3339, format_rfc3339_us, parse_time};
use crate::{bail, err};
use hyper::body::Incoming;
use hyper::HeaderMap;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// A JSON reply.
fn reply(status: u16, v: &Value) -> Reply {
    Reply::Json(status, v.to_string().into_bytes(), Vec::new())
}

/// The request's JSON body; an empty POST (no `Content-Type`, no length) is an empty body.
/// `Err` is the reply refusing it (415, 413, 408).
async fn body_of(app: &App, headers: &HeaderMap, body: Incoming) -> std::result::Result<Vec<u8>, Reply> {
    let no_type = headers.get(hyper::header::CONTENT_TYPE).is_none();
    if no_type && hyper::body::Body::size_hint(&body).upper() == Some(0) {
        return Ok(Vec::new());
    }
    read_json(headers, body, app.limits.body_timeout).await.map_err(|e| {
        let (status, msg) = e.reply();
        Reply::Json(status, super::json::error(&msg), Vec::new())
    })
}

/// `POST /api/v1/cameras/{camera}/events`: 201 and the event.
pub(crate) async fn start(app: &Arc<App>, camera: String, headers: &HeaderMap, body: Incoming) -> Result<Reply> {
    let raw = match body_of(app, headers, body).await {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let req = parse_start(&camera, &raw)?;
    let events = app.state.events.clone();
    let row = app.pool.run(move || events.start(&req)).await??;
    Ok(reply(201, &event_doc(&row, true)))
}

/// `POST /api/v1/events/{event}/end`: 200 and the ended event.
pub(crate) async fn end(app: &Arc<App>, id: &str, headers: &HeaderMap, body: Incoming) -> Result<Reply> {
    let id = crate::index::events::parse_event_id(id)?;
    let raw = match body_of(app, headers, body).await {
        Ok(b) => b,
        Err(r) => return Ok(r),
    };
    let at = parse_end(&raw)?;
    let events = app.state.events.clone();
    let row = app.pool.run(move || events.end(id, at)).await??;
    Ok(reply(200, &event_doc(&row, true)))
}

/// `GET /api/v1/events/{event}`: the event with links; 404 also for an event of a camera
/// the caller may not see (it learns nothing of other cameras).
pub(crate) async fn one(app: &Arc<App>, id: &str, caller: &Caller) -> Result<Reply> {
    let id = crate::index::events::parse_event_id(id)?;
    let state = app.state.clone();
    let row = app.pool.run(move || state.readers.event(id)).await??;
    match row {
        Some(e) if role_of(caller).may_see(&e.camera) => Ok(reply(200, &event_doc(&e, true))),
        _ => bail!(NotFound, "no event {id}"),
    }
}

/// `GET /api/v1/events?camera=&from=&to=&label=&limit=&after=`.
pub(crate) fn list_route(app: &Arc<App>, q: &Query, caller: &Caller) -> Result<Reply> {
    let role = role_of(caller);
    let camera = q.get("camera").map(str::to_owned);
    if let Some(c) = &camera {
        if app.state.camera(c).is_none() || !role.may_see(c) {
            bail!(NotFound, "no camera {c:?}");
        }
    }
    let label = q.get("label").map(str::to_owned);
    if let Some(l) = &label {
        crate::events::check_label(l)?;
    }
    let filter = EventFilter {
        camera,
        label,
        from_us: q.time("from")?.unwrap_or(i64::MIN / 2),
        to_us: q.time("to")?.unwrap_or(i64::MAX),
    };
    let state = app.state.clone();
    let source = move |f: &EventFilter, after: (i64, i64), n: usize| {
        crate::index::ReadChunks::events_page(&state.readers, f, after, n)
    };
    Ok(Reply::Stream(list(source, filter, q.cursor()?, q.limit()?, move |c| role.may_see(c))))
}

/// The body as a JSON object whose keys are all in `allowed`.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| err!(InvalidArgument, "the body is not JSON").with_source(e))?
    };
    let Value::Object(map) = v else { bail!(InvalidArgument, "the body must be a JSON object") };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        bail!(InvalidArgument, "{k}: unknown field (expected one of {})", allowed.join(", "));
    }
    Ok(map)
}

fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => bail!(InvalidArgument, "{key}: must be a string"),
    }
}

fn time(map: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    let text = match map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => bail!(InvalidArgument, "{key}: must be an RFC 3339 time or Unix seconds"),
    };
    parse_time(&text)
        .map(Some)
        .ok_or_else(|| err!(InvalidArgument, "{key}: {text:?} is not an RFC 3339 time or Unix seconds"))
}

/// The body of `POST /api/v1/cameras/{camera}/events`.
pub fn parse_start(camera: &str, body: &[u8]) -> Result<StartEvent> {
    let map = object(body, &["label", "start", "end", "note", "source"])?;
    let label = string(&map, "label")?.ok_or_else(|| err!(InvalidArgument, "label: is required"))?;
    let source = match string(&map, "source")? {
        None | Some("api") => Source::Api,
        Some("cli") => Source::Cli,
        Some(_) => bail!(InvalidArgument, "source: must be \"api\" or \"cli\""),
    };
    Ok(StartEvent {
        camera: camera.to_owned(),
        label: label.to_owned(),
        source,
        start_us: time(&map, "start")?,
        end_us: time(&map, "end")?,
        note: string(&map, "note")?.map(str::to_owned),
    })
}

/// The body of `POST /api/v1/events/{event}/end`: the end time, if given.
pub fn parse_end(body: &[u8]) -> Result<Option<i64>> {
    time(&object(body, &["end"])?, "end")
}

/// An event as the API shows it; with `links`, where its footage and picture are.
pub fn event_doc(e: &EventRow, links: bool) -> Value {
    let mut doc = json!({
        "id": e.id,
        "camera": e.camera,
        "label": e.label,
        "source": e.source,
        "start": format_rfc3339(e.start_us),
        "start_us": e.start_us,
        "end": e.end_us.map(format_rfc3339),
        "end_us": e.end_us,
        "active": e.end_us.is_none(),
        "pre_capture_s": e.pre_us as f64 / 1e6,
        "post_capture_s": e.post_us as f64 / 1e6,
        "note": e.note,
    });
    if links {
        // The footage the event keeps; an open event's reaches to now.
        let (from, to) = e.window(crate::time::now_us());
        let cam = &e.camera;
        doc["links"] = json!({
            "mp4": format!("/api/v1/cameras/{cam}/export.mp4?from={}&to={}", format_rfc3339(from), format_rfc3339(to)),
            "thumbnail": format!("/api/v1/cameras/{cam}/thumbnail.jpg?at={}", format_rfc3339_us(e.start_us)),
        });
    }
    doc
}

/// `GET /api/v1/events`: `{"events": [...], "next": "START_US:ID"|null}`, a page of the
/// index at a time, only events of cameras `may_see` allows.
pub fn list(
    page: impl Fn(&EventFilter, (i64, i64), usize) -> Result<Vec<EventRow>> + Send + 'static,
    filter: EventFilter,
    after: (i64, i64),
    limit: usize,
    may_see: impl Fn(&str) -> bool + Send + 'static,
) -> JsonStream {
    let mut cursor = after;
    let mut left = limit;
    let mut started = false;
    let mut first = true;
    JsonStream::new(move |out| {
        if !started {
            started = true;
            out.extend_from_slice(b"{\"events\":[");
        }
        let want = PAGE.min(left + 1);
        let rows = page(&filter, cursor, want)?;
        let more = rows.len() == want;
        for e in rows.iter().take(left.min(PAGE)) {
            cursor = (e.start_us, e.id);
            if !may_see(&e.camera) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(event_doc(e, false).to_string().as_bytes());
            left -= 1;
        }
        if left == 0 || !more {
            end_page(out, (more && left == 0).then_some(cursor));
            return Ok(false);
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::events::Events;
    use crate::index::Index;
    use std::io::Read;

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse_start("door", br#"{"label":"bell","start":"2026-11-21T14:56:03Z","end":1795272970,"note":"x"}"#)
            .unwrap();
        assert_eq!((ok.start_us, ok.end_us), (Some(1_795_272_963_000_000), Some(1_795_272_970_000_000)));
        assert_eq!(ok.source, Source::Api);
        for (body, prefix) in [
            (&b"{}"[..], "label: is required"),
            (br#"{"label":3}"#, "label: must be a string"),
            (br#"{"label":"a","start":"yesterday"}"#, "start: \"yesterday\""),
            (br#"{"label":"a","colour":"red"}"#, "colour: unknown field"),
            (br#"{"label":"a","source":"mqtt"}"#, "source:"),
            (b"[1]", "the body must be a JSON object"),
            (b"{", "the body is not JSON"),
        ] {
            let e = parse_start("door", body).unwrap_err().to_string();
            assert!(e.starts_with(prefix), "{}: {e}", String::from_utf8_lossy(body));
        }
        assert_eq!(parse_end(b"").unwrap(), None);
        assert_eq!(parse_end(br#"{"end":"1795272970"}"#).unwrap(), Some(1_795_272_970_000_000));
        assert!(parse_end(br#"{"at":1}"#).unwrap_err().to_string().starts_with("at: unknown field"));
    }

    #[test]
    fn the_list_pages_with_next_and_hides_cameras_a_viewer_may_not_see() {
        let c = Config::parse(
            "[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"a\"\nsource = \"testsrc\"\n[[camera]]\nid = \"b\"\nsource = \"testsrc\"\n",
        )
        .unwrap();
        let ev = Arc::new(Events::new(Arc::new(Index::open_in_memory().unwrap()), &c, || 2_000_000_000_000_000));
        for i in 0..5 {
            let cam = if i % 2 == 0 { "a" } else { "b" };
            let r = StartEvent {
                camera: cam.into(),
                label: "x".into(),
                source: Source::Api,
                start_us: Some(1_000_000_000_000_000 + i),
                end_us: None,
                note: None,
            };
            ev.start(&r).unwrap();
        }
        let read = |s: JsonStream| -> Value {
            let mut t = String::new();
            let mut s = s;
            s.read_to_string(&mut t).unwrap();
            serde_json::from_str(&t).unwrap()
        };
        let all = EventFilter { from_us: 0, to_us: i64::MAX, ..Default::default() };
        let page = |ev: &Arc<Events>| {
            let ev = ev.clone();
            move |f: &EventFilter, a: (i64, i64), n: usize| ev.page(f, a, n)
        };
        let p1 = read(list(page(&ev), all.clone(), (i64::MIN, 0), 3, |_| true));
        assert_eq!(p1["events"].as_array().unwrap().len(), 3);
        let next = p1["next"].as_str().unwrap();
        let (s, id) = next.split_once(':').unwrap();
        let p2 = read(list(page(&ev), all.clone(), (s.parse().unwrap(), id.parse().unwrap()), 3, |_| true));
        assert_eq!(p2["events"].as_array().unwrap().len(), 2);
        assert!(p2["next"].is_null());
        let only_a = read(list(page(&ev), all, (i64::MIN, 0), 10, |c| c == "a"));
        let cams: Vec<&str> =
            only_a["events"].as_array().unwrap().iter().map(|e| e["camera"].as_str().unwrap()).collect();
        assert_eq!(cams, ["a", "a", "a"]);
        let one = event_doc(&ev.get(1).unwrap(), true);
        assert!(one["links"]["mp4"].as_str().unwrap().starts_with("/api/v1/cameras/a/export.mp4?from="), "{one}");
        assert_eq!(one["active"], true);
    }
}
