//! What each route does, once the request passed the checks of `dispatch.rs`. Work
//! that reads files or the index runs on the blocking pool ([`super::Pool`]).

use super::auth::{Principal, Role, Via};
use super::body::read_json;
use super::exports::{camera_id, export};
use super::manage;
use super::respond::Reply;
use super::route::Route;
use super::session::{clear_cookie, set_cookie};
use super::session::{role_of, Caller};
use super::state::Change;
use super::{json, lists, query::Query, App};
use crate::error::{Error, ErrorKind, Result};
use crate::export::{Format, RawFile};
use crate::time::{parse_yyyymmdd_hhmm, US_PER_MIN};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, SET_COOKIE};
use std::sync::Arc;

const PLAYER_HTML: &str = include_str!("player.html");

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

fn not_found(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::NotFound, msg)
}

fn json(status: u16, body: Vec<u8>) -> Reply {
    Reply::Json(status, body, Vec::new())
}

/// Runs the handler of `route`.
pub(crate) async fn run(
    app: &Arc<App>,
    route: Route<'_>,
    q: &Query,
    caller: &Caller,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Reply> {
    let state = &app.state;
    match route {
        Route::Player => Ok(Reply::Html(PLAYER_HTML)),
        Route::Ui(name) => {
            super::ui::find(name).map(Reply::Ui).ok_or_else(|| not_found(format!("no UI file {name:?}")))
        }
        Route::Health => {
            let s = state.clone();
            let (healthy, doc) = app.pool.run_health(move || document2(|b| json::health(&s, b))).await??;
            Ok(json(if healthy { 200 } else { 503 }, doc))
        }
        Route::Status => {
            let s = state.clone();
            Ok(json(200, app.pool.run(move || document(|b| json::status(&s, b))).await??))
        }
        Route::Cameras => {
            let (s, role) = (state.clone(), role_of(caller));
            Ok(json(200, app.pool.run(move || document(|b| json::cameras(&s, &role, b))).await??))
        }
        Route::Recordings(id) => {
            let id = camera_id(app, id).await?;
            let (from, to) = q.range(false)?;
            Ok(Reply::Stream(lists::recordings(state.clone(), id, from, to, q.limit()?)))
        }
        Route::Chunks(id) => {
            let id = camera_id(app, id).await?;
            let (from, to) = q.range(false)?;
            Ok(Reply::Stream(lists::chunks(state.clone(), id, from, to, q.cursor()?, q.limit()?)))
        }
        Route::Export(id, format) => {
            let id = camera_id(app, id).await?;
            let (from, to) = q.range(true)?;
            export(app, id, from, to, format).await
        }
        Route::Chunk(id) => chunk(app, id, caller).await,
        Route::PynvrRange(spec) => {
            let (camera, from, to) = pynvr_range(spec)?;
            let id = camera_id(app, camera).await?;
            export(app, id, from, to, Format::Mp4).await
        }
        Route::StartEvent(id) => {
            let id = camera_id(app, id).await?;
            super::events::start(app, id, headers, body).await
        }
        Route::EndEvent(id) => super::events::end(app, id, headers, body).await,
        Route::Events => super::events::list_route(app, q, caller),
        Route::Event(id) => super::events::one(app, id, caller).await,
        Route::AddCamera => table_change(app, headers, body, None).await,
        Route::ReplaceCamera(id) => table_change(app, headers, body, Some(id)).await,
        Route::RemoveCamera(id) => manage::change(app, Change::Remove(id.to_owned())).await,
        Route::SetEnabled(id, on) => manage::change(app, Change::SetEnabled(id.to_owned(), on)).await,
        Route::Discover => manage::discover(app, q, headers).await,
        Route::Live(id) => super::live::live_mp4(app, id).await,
        Route::HlsPlaylist(id) => super::live::playlist(app, id, caller, q).await,
        Route::HlsPart(id, part) => super::live::part(app, id, part),
        Route::Thumbnail(id) => super::footage::thumbnail(app, id, q).await,
        Route::Keyframe(id) => super::footage::keyframe(app, id, q).await,
        Route::Days(id) => super::footage::days(app, id, q).await,
        Route::PynvrCamera(spec) => super::footage::pynvr_camera(app, spec).await,
        Route::PynvrDay(day) => super::footage::pynvr_day(app, day, q, caller).await,
        Route::Session => Ok(session_doc(caller)),
        Route::Login => login(app, headers, body).await,
        Route::Logout => {
            if let Some((id, _)) = &caller.session {
                state.sessions.remove(id);
            }
            Ok(Reply::Json(200, b"{\"ok\":true}".to_vec(), vec![(SET_COOKIE, clear_cookie())]))
        }
    }
}

/// `POST /api/v1/cameras` (no `id`) or `PUT /api/v1/cameras/{id}`: the body's camera table,
/// checked and applied (or the reply that refuses the body).
async fn table_change(app: &Arc<App>, headers: &HeaderMap, body: Incoming, id: Option<&str>) -> Result<Reply> {
    match manage::table(app, headers, body, id).await {
        Ok(t) => manage::change(app, if id.is_some() { Change::Replace(t) } else { Change::Add(t) }).await,
        Err(reply) => Ok(reply),
    }
}

/// Serialises a fixed-shape document into a [`json::DOC_BYTES`] buffer.
fn document(write: impl FnOnce(&mut [u8]) -> Result<usize>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; json::DOC_BYTES];
    let n = write(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// [`document`] for a writer that also returns a flag.
fn document2(write: impl FnOnce(&mut [u8]) -> Result<(bool, usize)>) -> Result<(bool, Vec<u8>)> {
    let mut buf = vec![0u8; json::DOC_BYTES];
    let (flag, n) = write(&mut buf)?;
    buf.truncate(n);
    Ok((flag, buf))
}

async fn chunk(app: &Arc<App>, id: &str, caller: &Caller) -> Result<Reply> {
    let id: i64 = id.parse().map_err(|_| bad(format!("chunk id {id:?} is not a number")))?;
    let state = app.state.clone();
    let row = app.pool.run(move || state.readers.chunk(id)).await??;
    let row = row.ok_or_else(|| not_found(format!("no chunk {id}")))?;
    // A viewer limited to some cameras learns nothing of other cameras' chunks.
    if !role_of(caller).may_see(&row.camera) {
        return Err(not_found(format!("no chunk {id}")));
    }
    if row.state == crate::index::ChunkState::Archived {
        return Err(not_found(format!(
            "chunk {id} is only in the archive (the reaper removed it here); export its range to fetch it back"
        )));
    }
    if row.state != crate::index::ChunkState::Sealed {
        return Err(not_found(format!("chunk {id} is still being written or being deleted")));
    }
    let root = app
        .state
        .storage
        .root(row.root_id)
        .ok_or_else(|| not_found(format!("chunk {id}'s storage root is not configured")))?;
    let name = row.rel_path.file_name().and_then(|n| n.to_str()).unwrap_or("chunk").to_owned();
    let path = root.path().join(&row.rel_path);
    crate::export::plan::check_file(&row, &path)?;
    let file = RawFile::new(path, row.bytes, format!("\"chunk-{id}-{}\"", row.bytes));
    Ok(Reply::File(Box::new(file), name))
}

/// PyNVR's `{camera}.{YYYYMMDD.HHMM}.to.{YYYYMMDD.HHMM}.mp4`, minutes inclusive.
fn pynvr_range(spec: &str) -> Result<(&str, i64, i64)> {
    let spec = spec.strip_suffix(".mp4").ok_or_else(|| not_found("PyNVR ranges end in .mp4"))?;
    let (head, end) =
        spec.split_once(".to.").ok_or_else(|| bad("expected CAMERA.YYYYMMDD.HHMM.to.YYYYMMDD.HHMM.mp4"))?;
    let (camera, start) = head.split_once('.').ok_or_else(|| bad("expected CAMERA.YYYYMMDD.HHMM"))?;
    let from = parse_yyyymmdd_hhmm(start).ok_or_else(|| bad(format!("{start:?} is not YYYYMMDD.HHMM")))?;
    let to = parse_yyyymmdd_hhmm(end).ok_or_else(|| bad(format!("{end:?} is not YYYYMMDD.HHMM")))? + US_PER_MIN;
    if from >= to {
        return Err(bad("the range ends before it starts"));
    }
    Ok((camera, from, to))
}

/// `GET /api/v1/session`: `{"role", "cameras", "via", "csrf_token"}`.
fn session_doc(caller: &Caller) -> Reply {
    let (role, via) = match &caller.principal {
        Some(Principal { role, via }) => (role.clone(), *via),
        None => (Role::Viewer(Some(Vec::new())), Via::Bearer),
    };
    let doc = serde_json::json!({
        "role": role.as_str(),
        "cameras": match &role { Role::Viewer(Some(c)) => serde_json::json!(c), _ => serde_json::Value::Null },
        "via": match via {
            Via::NoTokenConfigured => "none",
            Via::Bearer => "bearer",
            Via::Cookie => "cookie",
            Via::Query => "query",
        },
        "csrf_token": caller.session.as_ref().map(|(_, s)| s.csrf.clone()),
    });
    json(200, doc.to_string().into_bytes())
}

/// `POST /api/v1/login` with `{"token": "..."}`: a session cookie for that token's role.
async fn login(app: &Arc<App>, headers: &HeaderMap, body: Incoming) -> Result<Reply> {
    let raw = match read_json(headers, body, app.limits.body_timeout).await {
        Ok(b) => b,
        Err(e) => {
            let (status, msg) = e.reply();
            return Ok(json(status, json::error(&msg)));
        }
    };
    #[derive(serde::Deserialize)]
    struct Login {
        token: String,
    }
    let login: Login = serde_json::from_slice(&raw).map_err(|_| bad("expected {\"token\": \"...\"}"))?;
    let Some(role) = app.state.tokens().role_for(&login.token) else {
        return Ok(json(401, json::error("the token is not valid")));
    };
    let (id, csrf) = app.state.sessions.create(role.clone())?;
    let doc = serde_json::json!({ "role": role.as_str(), "csrf_token": csrf });
    Ok(Reply::Json(200, doc.to_string().into_bytes(), vec![(SET_COOKIE, set_cookie(&id))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pynvr_ranges() {
        let (c, from, to) = pynvr_range("door.20261121.1456.to.20261121.1457.mp4").unwrap();
        assert_eq!((c, to - from), ("door", 2 * US_PER_MIN));
        assert_eq!(pynvr_range("door.20261121.1456.to.20261121.1457").unwrap_err().kind(), ErrorKind::NotFound);
        for bad in ["door.2026x121.1456.to.20261121.1457.mp4", "door.20261121.1500.to.20261121.1456.mp4", "x.mp4"] {
            assert_eq!(pynvr_range(bad).unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
