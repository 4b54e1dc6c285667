//! The routes that find footage (`docs/design/live.md`): thumbnails and the one-keyframe
//! MP4 (H.265's thumbnail), the timeline summary per local day, and PyNVR's preview and day
//! routes (`crate::pynvr`). All of their work runs on the blocking pool and reads the index
//! through the API's read-only readers (never the recorder's connection); thumbnails decode
//! in a child process (`crate::thumb`), one at a time.

use super::exports::{camera_id, export};
use super::query::Query;
use super::respond::Reply;
use super::session::{role_of, Caller};
use super::App;
use crate::error::{Error, ErrorKind, Result};
use crate::export::{mp4::Mp4File, plan::make_plan, Format};
use crate::index::timeline::{self, parse_date};
use crate::pynvr::{self, CameraAsset};
use crate::thumb::locate::{find_keyframe, Pick};
use crate::thumb::WIDTHS;
use crate::time::{format_rfc3339_us, now_us, Civil, US_PER_MIN};
use crate::tz::Zone;
use hyper::header::{HeaderName, CACHE_CONTROL};
use std::sync::atomic::Ordering::Relaxed;

/// `thumbnail.jpg`'s width when the request names none (a timeline tile).
pub const DEFAULT_WIDTH: usize = 320;

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// `at` (RFC 3339 or Unix seconds; absent: now).
fn at(q: &Query) -> Result<i64> {
    Ok(q.time("at")?.unwrap_or_else(now_us))
}

/// The newest frame of `camera` the recorder has seen (the end of the chunk being written).
fn live_end(app: &App, camera: &str) -> i64 {
    app.state.camera(camera).map_or(0, |c| c.stats.last_frame_us.load(Relaxed))
}

/// `GET .../thumbnail.jpg?at=&width=`: the keyframe at or before `at` as a JPEG.
pub(crate) async fn thumbnail(app: &App, id: &str, q: &Query) -> Result<Reply> {
    let camera = camera_id(app, id).await?;
    let width = match q.get("width") {
        None | Some("") => DEFAULT_WIDTH,
        Some(w) => w.parse().map_err(|_| bad(format!("width must be a number of pixels, not {w:?}")))?,
    };
    jpeg(app, camera, Pick::AtOrBefore(at(q)?), width).await
}

/// The JPEG of the keyframe `pick` names; `X-Frame-Time` says when it was taken, to the
/// microsecond, so `?at=` that time names the same keyframe.
async fn jpeg(app: &App, camera: String, pick: Pick, width: usize) -> Result<Reply> {
    let s = app.state.clone();
    let j = app.pool.run(move || s.thumbs.jpeg(&s.readers, &s.storage, &camera, pick, width)).await??;
    let h = vec![
        (CACHE_CONTROL, "private, max-age=60".to_owned()),
        (HeaderName::from_static("x-frame-time"), format_rfc3339_us(j.ts_us)),
    ];
    Ok(Reply::Media("image/jpeg".into(), vec![j.bytes], h))
}

/// `GET .../keyframe.mp4?at=`: the keyframe at or before `at` as a one-frame MP4, which a
/// browser decodes where the box cannot (H.265; see the README).
pub(crate) async fn keyframe(app: &App, id: &str, q: &Query) -> Result<Reply> {
    let camera = camera_id(app, id).await?;
    let at = at(q)?;
    let s = app.state.clone();
    app.pool
        .run(move || {
            let k = find_keyframe(&s.readers, &s.storage, &camera, Pick::AtOrBefore(at))?;
            let plan = make_plan(&s.readers, &s.storage, &camera, k.ts_us, k.ts_us + 1)?;
            let c = Civil::from_us(k.ts_us);
            let name = format!("{camera}-{}-{}{:02}-keyframe.mp4", c.yyyymmdd(), c.hhmm(), c.second);
            Ok(Reply::File(Box::new(Mp4File::new(plan)?), name))
        })
        .await?
}

/// `GET .../days?from=YYYY-MM-DD&to=YYYY-MM-DD&tz=Area/City`: per local day and hour, the
/// seconds recorded and the gaps (`to` defaults to `from`, `tz` to UTC).
pub(crate) async fn days(app: &App, id: &str, q: &Query) -> Result<Reply> {
    let camera = camera_id(app, id).await?;
    let date = |k: &str, v: &str| parse_date(v).ok_or_else(|| bad(format!("{k}: {v:?} is not YYYY-MM-DD")));
    let from = date("from", q.get("from").ok_or_else(|| bad("from (YYYY-MM-DD) is required"))?)?;
    let to = match q.get("to") {
        None | Some("") => from,
        Some(v) => date("to", v)?,
    };
    let tz = q.get("tz").filter(|t| !t.is_empty()).unwrap_or("UTC").to_owned();
    let (s, end) = (app.state.clone(), live_end(app, &camera));
    let doc = app
        .pool
        .run(move || {
            let zone = Zone::load(&tz)?;
            let doc = timeline::days(&s.readers, &camera, &zone, from, to, now_us(), end)?;
            serde_json::to_vec(&doc).map_err(|e| Error::new(ErrorKind::Internal, "writing days").with_source(e))
        })
        .await??;
    Ok(Reply::Json(200, doc, Vec::new()))
}

/// PyNVR's `GET /api/1/camera/{id}.preview|thumbnail.{date}.{HHMM}.jpg|mp4`: the minute's
/// first keyframe (full size, or 320 wide) or the minute as MP4.
pub(crate) async fn pynvr_camera(app: &App, spec: &str) -> Result<Reply> {
    match pynvr::parse_camera_asset(spec)? {
        CameraAsset::Jpeg { camera, minute_us, width } => {
            let camera = camera_id(app, &camera).await?;
            jpeg(app, camera, Pick::FirstInMinute(minute_us), width.unwrap_or(*WIDTHS.end())).await
        }
        CameraAsset::Mp4 { camera, minute_us } => {
            let camera = camera_id(app, &camera).await?;
            export(app, camera, minute_us, minute_us + US_PER_MIN, Format::Mp4).await
        }
    }
}

/// PyNVR's `GET /api/1/cameras/{YYYYMMDD}?camera_ids=a,b`: the minutes recorded that UTC
/// day per camera (no `camera_ids`: every camera the caller may see). A camera the caller
/// may not see is answered as unknown.
pub(crate) async fn pynvr_day(app: &App, day: &str, q: &Query, caller: &Caller) -> Result<Reply> {
    let role = role_of(caller);
    let ids: Vec<String> = match q.get("camera_ids").filter(|l| !l.is_empty()) {
        Some(list) => {
            if list.split(',').count() > pynvr::MAX_CAMERAS {
                return Err(bad(format!("camera_ids names more than {} cameras", pynvr::MAX_CAMERAS)));
            }
            // Configured cameras only (a removed camera's minutes are in its recordings list).
            let known = |id: &str| app.state.camera(id).map(|c| c.config.id.clone()).filter(|c| role.may_see(c));
            let ids = list.split(',').filter(|id| !id.is_empty());
            ids.map(|id| known(id).ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no camera {id:?}"))))
                .collect::<Result<_>>()?
        }
        None => app.state.cameras.snapshot().iter().map(|c| c.config.id.clone()).filter(|c| role.may_see(c)).collect(),
    };
    let (s, day) = (app.state.clone(), day.to_owned());
    let doc = app
        .pool
        .run(move || {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let last = |c: &str| s.camera(c).map_or(0, |e| e.stats.last_frame_us.load(Relaxed));
            let doc = pynvr::day_document(&s.readers, &day, &refs, now_us(), last)?;
            serde_json::to_vec(&doc).map_err(|e| Error::new(ErrorKind::Internal, "writing the day").with_source(e))
        })
        .await??;
    Ok(Reply::Json(200, doc, Vec::new()))
}
