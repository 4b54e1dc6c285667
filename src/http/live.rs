//! The live routes (`docs/design/live.md`, "Routes"): `live.mp4` is one viewer of the
//! camera's [`LiveHub`] as one endless fMP4 response; `live.m3u8`, `live.{seq}.m4s` and
//! `live.init-{generation}.mp4` are HLS from the hub's ring.
//!
//! How a `live.mp4` response ends, and who frees what:
//! 1. The client closes: hyper drops the body, the forwarding task's next send fails and it
//!    drops its [`Viewer`], which leaves the hub: the slot is free at once.
//! 2. The client stops reading: its socket buffer (capped at `limits::LIVE_SEND_BUFFER`
//!    for a live stream, so this takes seconds, not minutes) fills, hyper stops taking
//!    pieces, the body's queue (`limits::STREAM_QUEUE` pieces) fills and the forwarding
//!    task waits, so it takes nothing from the hub. Fragments wait in the hub's queue for
//!    it (at most 1 MiB; when full it skips to keyframes, `live.skips` in status); after
//!    `hub::STALL_TIMEOUT` (10 s) of taking nothing the hub drops it (`live.dropped`),
//!    freeing its slot. The connection is then
//!    closed by the server's write-stall sweep once its writes made no progress for
//!    `Limits::write_stall` (30 s). The recorder never waits for any of this.
//! 3. While frames flow and the client reads, every write makes progress, so the
//!    write-stall sweep never closes a live stream, however long it lasts (it measures a
//!    refused write, not a response's age); hyper's head timer does not run while a
//!    response is being written.
//! 4. The camera stops: the hub ends the stream at the next frame after a pause (its rule
//!    4); if no frame comes at all for [`LIVE_IDLE`], the forwarding task ends the response
//!    so a dead camera does not hold viewer slots (the player reconnects).

use super::auth::Via;
use super::body::{Body, Sender};
use super::query::Query;
use super::respond::Reply;
use super::session::Caller;
use super::App;
use crate::error::Result;
use crate::live::hub::{LiveHub, Viewer};
use crate::{bail, err};
use bytes::Bytes;
use hyper::header::CACHE_CONTROL;
use std::sync::Arc;
use std::time::Duration;

/// A live response ends when no piece came for this long (rule 4).
pub const LIVE_IDLE: Duration = Duration::from_secs(20);
/// How long a new viewer waits for its first piece (the init segment: at once while the
/// hub is active, else at the camera's next keyframe) before the request is refused (503).
pub const FIRST_PIECE_WAIT: Duration = Duration::from_secs(10);
/// How long the first playlist request waits for a finished HLS segment (one GOP).
pub const HLS_FIRST_WAIT: Duration = Duration::from_secs(10);

/// The prefix of HLS URIs in the playlist, relative to `.../cameras/{id}/live.m3u8`.
const HLS_PREFIX: &str = "live.";

/// The body of a live response: a task forwards the viewer's pieces, each sent as soon as
/// it comes (rules 1-4 above).
fn live_body(viewer: Viewer, first: Bytes) -> Body {
    let (tx, body) = Body::channel(None);
    tokio::spawn(forward(viewer, first, tx));
    body
}

/// Sends `first`, then the viewer's pieces, until the stream ends, the client leaves or no
/// piece came for [`LIVE_IDLE`]; dropping the viewer leaves the hub.
async fn forward(mut viewer: Viewer, first: Bytes, tx: Sender) {
    if tx.send(Ok(first)).await.is_err() {
        return;
    }
    while let Ok(Some(piece)) = tokio::time::timeout(LIVE_IDLE, viewer.next()).await {
        if tx.send(Ok(piece)).await.is_err() {
            return;
        }
    }
}

/// The live hub of camera `id` (404 for an unknown camera or one without a live view).
fn hub_of(app: &App, id: &str) -> Result<Arc<LiveHub>> {
    let cam = app.state.camera(id).ok_or_else(|| err!(NotFound, "no camera {id:?}"))?;
    cam.live.ok_or_else(|| err!(NotFound, "camera {id} has no live view (it is disabled, or server.max_viewers is 0)"))
}

/// `GET .../live.mp4`: subscribes, waits for the init segment, answers with the stream.
pub(crate) async fn live_mp4(app: &App, id: &str) -> Result<Reply> {
    let hub = hub_of(app, id)?;
    let mut viewer = hub.subscribe().map_err(|f| {
        err!(Busy, "camera {id} has {} live viewers already (server.max_viewers); retry later", f.max_viewers)
    })?;
    let first = match tokio::time::timeout(FIRST_PIECE_WAIT, viewer.next()).await {
        Ok(Some(b)) => b,
        _ => bail!(Busy, "camera {id} sends no frames now; retry shortly"),
    };
    let content_type = match hub.params() {
        Some(p) => format!("video/mp4; codecs=\"{}\"", p.rfc6381()),
        None => "video/mp4".to_owned(),
    };
    Ok(Reply::Live(content_type, live_body(viewer, first)))
}

/// `GET .../live.m3u8`: the playlist of the ring (segment URIs carry the caller's
/// `?token=` when that is how it authenticated, since a player requests them bare).
pub(crate) async fn playlist(app: &App, id: &str, caller: &Caller, q: &Query) -> Result<Reply> {
    let hub = hub_of(app, id)?;
    let Some(mut p) = hub.hls_playlist(HLS_PREFIX, HLS_FIRST_WAIT).await else {
        bail!(Busy, "camera {id} has no live segment yet; retry shortly");
    };
    let via_query = caller.principal.as_ref().is_some_and(|p| p.via == Via::Query);
    if let Some(t) = q.get("token").filter(|_| via_query) {
        p = with_token(&p, t);
    }
    let h = vec![(CACHE_CONTROL, "no-store".to_owned())];
    Ok(Reply::Media("application/vnd.apple.mpegurl".into(), vec![Bytes::from(p)], h))
}

/// `GET .../live.{part}`: `{seq}.m4s` (a segment) or `init-{generation}.mp4`.
pub(crate) fn part(app: &App, id: &str, part: &str) -> Result<Reply> {
    let hub = hub_of(app, id)?;
    let gone = || err!(NotFound, "live.{part} is not in the live ring (any more); reload the playlist");
    let cache = vec![(CACHE_CONTROL, "private, max-age=30".to_owned())];
    if let Some(g) = part.strip_prefix("init-").and_then(|r| r.strip_suffix(".mp4")) {
        let g: u64 = g.parse().map_err(|_| gone())?;
        let init = hub.hls_init(g).ok_or_else(gone)?;
        return Ok(Reply::Media("video/mp4".into(), vec![init], cache));
    }
    let seq: u64 = part.strip_suffix(".m4s").and_then(|s| s.parse().ok()).ok_or_else(gone)?;
    let seg = hub.hls_segment(seq).ok_or_else(gone)?;
    Ok(Reply::Media("video/iso.segment".into(), seg.parts, cache))
}

/// The playlist with `?token=T` on every URI (segment lines and `EXT-X-MAP`).
fn with_token(playlist: &str, token: &str) -> String {
    let t = percent_encode(token);
    let mut out = String::with_capacity(playlist.len() + 64 * (t.len() + 7));
    for line in playlist.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"").and_then(|r| r.strip_suffix('"')) {
            out.push_str(&format!("#EXT-X-MAP:URI=\"{uri}?token={t}\""));
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push_str(&format!("{line}?token={t}"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_uris_carry_the_token() {
        let p = "#EXTM3U\n#EXT-X-MAP:URI=\"live.init-1.mp4\"\n#EXTINF:1.000,\nlive.4.m4s\n";
        assert_eq!(
            with_token(p, "a b/c"),
            "#EXTM3U\n#EXT-X-MAP:URI=\"live.init-1.mp4?token=a%20b%2Fc\"\n#EXTINF:1.000,\nlive.4.m4s?token=a%20b%2Fc\n"
        );
    }
}
