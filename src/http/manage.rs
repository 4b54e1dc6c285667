//! Cameras managed over the API (admin only; `decide` in [`super::auth`] refuses every
//! state change to viewers, to tokens in URLs and to cookies without the CSRF header):
//!
//! - `POST /api/v1/cameras` (a `[[camera]]` table as JSON), `PUT /api/v1/cameras/{id}` (the
//!   whole table again; `id` may be left out), `DELETE /api/v1/cameras/{id}`,
//!   `POST /api/v1/cameras/{id}/enable` and `/disable`: handed to the service's
//!   [`CameraControl`](super::state::CameraControl), which checks the new list with the config file's code, persists it
//!   and restarts only the changed camera (`src/service/cameras.rs`).
//! - `GET /api/v1/discover[?timeout=3s&username=U]` (the password, if any, in the header
//!   `X-ONVIF-Password`, never in the URL): [`crate::onvif::scan()`] on the blocking pool, one
//!   scan at a time (a second one is refused with 503 while one runs), its wait at most
//!   [`MAX_DISCOVER_WAIT`].

use super::body::read_json;
use super::respond::Reply;
use super::state::Change;
use super::App;
use crate::config::CameraTable;
use crate::error::Result;
use crate::onvif::{Credentials, ScanOptions};
use crate::{bail, err};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Longest discovery wait a request may ask for (each device found then costs at most
/// `onvif::scan::DEVICE_BUDGET` more, four devices at a time).
pub const MAX_DISCOVER_WAIT: Duration = Duration::from_secs(10);
/// The discovery wait when the request names none.
const DEFAULT_DISCOVER_WAIT: Duration = Duration::from_secs(3);

/// Runs a change on the blocking pool and answers `{"ok": true, "id": ...}` (201 for a new
/// camera).
pub(super) async fn change(app: &Arc<App>, change: Change) -> Result<Reply> {
    let control =
        app.state.control.clone().ok_or_else(|| err!(NotFound, "cameras cannot be changed in this process"))?;
    let (status, id) = match &change {
        Change::Add(t) => (201, t.id().to_owned()),
        Change::Replace(t) => (200, t.id().to_owned()),
        Change::Remove(id) | Change::SetEnabled(id, _) => (200, id.clone()),
    };
    app.pool.run(move || control.apply(change)).await??;
    let doc = serde_json::json!({ "ok": true, "id": id });
    Ok(Reply::Json(status, doc.to_string().into_bytes(), Vec::new()))
}

/// Reads a camera table from the request body (`id` from the path for PUT).
pub(super) async fn table(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Incoming,
    id: Option<&str>,
) -> std::result::Result<CameraTable, Reply> {
    let raw = read_json(headers, body, app.limits.body_timeout).await.map_err(|e| {
        let (status, msg) = e.reply();
        Reply::Json(status, super::json::error(&msg), Vec::new())
    })?;
    CameraTable::from_json(&raw, id).map_err(|e| Reply::Json(400, super::json::error(&e.to_string()), Vec::new()))
}

/// `GET /api/v1/discover`: the scan `edgenvr discover --json` prints.
pub(super) async fn discover(app: &Arc<App>, q: &super::query::Query, headers: &HeaderMap) -> Result<Reply> {
    let mut opts = ScanOptions::default();
    if let Some(t) = q.get("timeout") {
        let d = crate::config::parse_duration(t).map_err(|e| err!(InvalidArgument, "timeout: {e}"))?;
        if d < Duration::from_millis(100) || d > MAX_DISCOVER_WAIT {
            bail!(InvalidArgument, "timeout: must be between 100ms and {}s", MAX_DISCOVER_WAIT.as_secs());
        }
        opts.probe.wait = d;
    } else {
        opts.probe.wait = DEFAULT_DISCOVER_WAIT;
    }
    let password = headers.get("x-onvif-password").and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Some(u) = q.get("username") {
        opts.credentials = Some(Credentials::new(u.to_owned(), password));
    }
    opts.taken_ids = app.state.cameras.snapshot().iter().map(|c| c.config.id.clone()).collect();
    let state = app.state.clone();
    if state.scanning.swap(true, Ordering::AcqRel) {
        bail!(Busy, "a discovery scan is running; try again when it is done");
    }
    let scan = app
        .pool
        .run(move || {
            let r = crate::onvif::scan(&opts);
            state.scanning.store(false, Ordering::Release);
            r
        })
        .await;
    if scan.is_err() {
        // The pool refused the work: it never ran, so it cannot clear the flag.
        app.state.scanning.store(false, Ordering::Release);
    }
    let scan = scan??;
    let doc = serde_json::to_vec(&scan).map_err(|e| err!(Internal, "cannot write the scan").with_source(e))?;
    Ok(Reply::Json(200, doc, Vec::new()))
}
