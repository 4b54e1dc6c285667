//! The fixed-shape JSON documents (status, health, cameras), serialised with serde-json-core
//! into a fixed-size buffer: their memory does not grow with input. The config caps cameras
//! and roots ([`MAX_CAMERAS`], [`MAX_ROOTS`]) so every document fits in [`DOC_BYTES`].

use super::auth::Role;
use super::state::AppState;
use crate::config::{SourceConfig, MAX_CAMERAS, MAX_ROOTS};
use crate::err;
use crate::service::status::CameraState;
use crate::time::{format_rfc3339, now_us};
use heapless::{String as HString, Vec as HVec};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;

/// Size of the buffer a document is serialised into.
pub const DOC_BYTES: usize = 48 * 1024;

type Time = HString<32>;
type Msg = HString<200>;

fn time(us: i64) -> Time {
    let mut s = Time::new();
    let _ = s.push_str(&format_rfc3339(us));
    s
}

/// Copies a message into a bounded string, cutting it (at a character boundary) if long.
fn msg(m: &str) -> Msg {
    let mut s = Msg::new();
    for c in m.chars() {
        if s.push(c).is_err() {
            break;
        }
    }
    s
}

#[derive(Serialize)]
struct CameraDoc<'a> {
    id: &'a str,
    enabled: bool,
    source: &'a str,
    state: &'a str,
    since: Option<Time>,
    last_frame: Option<Time>,
    last_frame_age_ms: Option<u64>,
    bitrate_bps: u64,
    frames: u64,
    frames_dropped: u64,
    gaps: u64,
    connects: u64,
    chunks: u64,
    encoder: &'a str,
    last_error: Option<Msg>,
    /// The live view's counters (none for a camera without one).
    live: Option<LiveDoc>,
    /// Audio recorded beside the video (`docs/design/audio.md`); none while no audio came.
    audio: Option<AudioDoc>,
}

/// A camera's audio: frames and payload bytes written, frames dropped.
#[derive(Serialize)]
struct AudioDoc {
    frames: u64,
    bytes: u64,
    dropped: u64,
}

/// A camera's live view: viewers now and in total, refused at the cap, skips to a keyframe
/// and viewers dropped for not reading (`crate::live::hub`, rule 3), bytes held.
#[derive(Serialize)]
struct LiveDoc {
    viewers: u64,
    viewers_total: u64,
    refused: u64,
    skips: u64,
    dropped: u64,
    held_bytes: u64,
}

fn live_doc(hub: &crate::live::hub::LiveHub) -> LiveDoc {
    let s = &hub.stats;
    LiveDoc {
        viewers: s.viewers.load(Relaxed),
        viewers_total: s.viewers_total.load(Relaxed),
        refused: s.refused.load(Relaxed),
        skips: s.skips.load(Relaxed),
        dropped: s.dropped.load(Relaxed),
        held_bytes: hub.held_bytes() as u64,
    }
}

#[derive(Serialize)]
struct RootDoc<'a> {
    path: &'a str,
    present: bool,
    writable: bool,
    total_bytes: u64,
    free_bytes: u64,
    min_free_bytes: u64,
    used_bytes: u64,
    oldest: Option<Time>,
    chunks_reaped: u64,
    bytes_reaped: u64,
    failures: u64,
    last_error: Option<Msg>,
}

#[derive(Serialize)]
struct ReaperDoc {
    runs: u64,
    last_run: Option<Time>,
    chunks_deleted: u64,
    bytes_deleted: u64,
    last_error: Option<Msg>,
}

/// One `[[archive]]` target (`docs/design/archive.md`).
#[derive(Serialize)]
struct ArchiveDoc {
    location: Msg,
    /// `all` or `events`: what the target takes (and its backlog counts).
    send: &'static str,
    objects_sent: u64,
    bytes_sent: u64,
    backlog_chunks: u64,
    backlog_bytes: u64,
    oldest_unsent: Option<Time>,
    reaped_unsent: u64,
    /// Chunks archived without their audio sibling because it vanished or was damaged.
    audio_skipped: u64,
    last_upload: Option<Time>,
    last_error: Option<Msg>,
    last_error_at: Option<Time>,
}

#[derive(Serialize)]
struct StatusDoc<'a> {
    version: &'a str,
    now: Time,
    uptime_s: u64,
    cameras: HVec<CameraDoc<'a>, MAX_CAMERAS>,
    storage: HVec<RootDoc<'a>, MAX_ROOTS>,
    reaper: ReaperDoc,
    /// Problems of the setup (e.g. the API open to the network with no token).
    warnings: HVec<Msg, 4>,
    /// The MQTT client, when `[mqtt]` is configured (`null` otherwise).
    mqtt: Option<MqttDoc>,
    /// The off-box archive targets (`docs/design/archive.md`).
    archive: HVec<ArchiveDoc, { crate::archive::settings::MAX_TARGETS }>,
}

/// The MQTT client's counters: fixed size like the rest of status.
#[derive(Serialize)]
struct MqttDoc {
    connected: bool,
    /// Since when the broker is down (absent while connected).
    down_since: Option<Time>,
    /// Messages handed to the broker (state and events).
    published: u64,
    /// Events the broker acknowledged.
    events_acked: u64,
    /// State messages dropped by the full outgoing queue.
    dropped_state: u64,
    /// Events dropped by a queue full of events.
    dropped_events: u64,
    /// Connections after the first.
    reconnects: u64,
}

fn mqtt_doc(m: &crate::mqtt::MqttStats) -> MqttDoc {
    let down = m.down_since_us.load(Relaxed);
    let connected = m.connected.load(Relaxed);
    MqttDoc {
        connected,
        down_since: (!connected && down > 0).then(|| time(down)),
        published: m.published.load(Relaxed),
        events_acked: m.events_sent.load(Relaxed),
        dropped_state: m.dropped_state.load(Relaxed),
        dropped_events: m.dropped_events.load(Relaxed),
        reconnects: m.connects.load(Relaxed).saturating_sub(1),
    }
}

fn archive_docs(state: &AppState) -> crate::error::Result<HVec<ArchiveDoc, { crate::archive::settings::MAX_TARGETS }>> {
    let mut out = HVec::new();
    for t in crate::archive::status::targets(&state.index, &state.archive, &state.box_id)? {
        let _ = out.push(ArchiveDoc {
            location: msg(&t.location),
            send: t.send.as_str(),
            objects_sent: t.row.objects_sent,
            bytes_sent: t.row.bytes_sent,
            backlog_chunks: t.backlog.chunks,
            backlog_bytes: t.backlog.bytes,
            oldest_unsent: t.backlog.oldest_end_us.map(time),
            reaped_unsent: t.row.reaped_unsent,
            audio_skipped: t.row.audio_skipped,
            last_upload: t.row.last_ok_us.map(time),
            last_error: t.row.last_error.as_ref().map(|(e, _)| msg(e)),
            last_error_at: t.row.last_error.as_ref().map(|(_, at)| time(*at)),
        });
    }
    Ok(out)
}

fn source_kind(s: &SourceConfig) -> &'static str {
    match s {
        SourceConfig::Testsrc(_) => "testsrc",
        SourceConfig::Rtsp(_) => "rtsp",
        SourceConfig::V4l2(_) => "v4l2",
    }
}

fn camera_doc<'a>(c: &'a super::state::CameraEntry, now: i64) -> CameraDoc<'a> {
    let s = &c.stats;
    let last = s.last_frame_us.load(Relaxed);
    let since = s.state_since_us.load(Relaxed);
    CameraDoc {
        id: &c.config.id,
        enabled: c.config.enabled,
        source: source_kind(&c.config.source),
        state: s.state().as_str(),
        since: (since > 0).then(|| time(since)),
        last_frame: (last > 0).then(|| time(last)),
        last_frame_age_ms: (last > 0).then(|| ((now - last).max(0) / 1000) as u64),
        bitrate_bps: s.bitrate_bps.load(Relaxed),
        frames: s.frames_written.load(Relaxed),
        frames_dropped: s.frames_dropped.load(Relaxed),
        gaps: s.gaps.load(Relaxed),
        connects: s.connects.load(Relaxed),
        chunks: s.chunks_sealed.load(Relaxed),
        encoder: s.encoder().map_or("", |e| e.as_str()),
        last_error: s.last_error().map(|e| msg(&e)),
        live: c.live.as_deref().map(live_doc),
        audio: audio_doc(s),
    }
}

fn audio_doc(s: &crate::service::status::CameraStats) -> Option<AudioDoc> {
    let d = AudioDoc {
        frames: s.audio_frames.load(Relaxed),
        bytes: s.audio_bytes.load(Relaxed),
        dropped: s.audio_dropped.load(Relaxed),
    };
    (d.frames + d.dropped > 0).then_some(d)
}

/// `GET /api/v1/status` into `buf`; returns the length.
pub fn status(state: &AppState, buf: &mut [u8]) -> crate::error::Result<usize> {
    let now = now_us();
    let paths: Vec<String> = state.storage.roots().iter().map(|r| r.path().display().to_string()).collect();
    let per_root = state.reaper.per_root.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let cameras = state.cameras.snapshot();
    let mut doc = StatusDoc {
        version: env!("CARGO_PKG_VERSION"),
        now: time(now),
        uptime_s: state.started.elapsed().as_secs(),
        cameras: HVec::new(),
        storage: HVec::new(),
        reaper: ReaperDoc {
            runs: state.reaper.runs.load(Relaxed),
            last_run: Some(state.reaper.last_run_us.load(Relaxed)).filter(|&t| t > 0).map(time),
            chunks_deleted: state.reaper.chunks_deleted.load(Relaxed),
            bytes_deleted: state.reaper.bytes_deleted.load(Relaxed),
            last_error: state.reaper.last_error.lock().unwrap_or_else(|p| p.into_inner()).as_deref().map(msg),
        },
        warnings: state.warnings.iter().take(4).map(|w| msg(w)).collect(),
        mqtt: state.mqtt.as_deref().map(mqtt_doc),
        archive: archive_docs(state)?,
    };
    for c in cameras.iter().take(MAX_CAMERAS) {
        let _ = doc.cameras.push(camera_doc(c, now));
    }
    for (root, path) in state.storage.roots().iter().zip(&paths).take(MAX_ROOTS) {
        let present = root.path().is_dir();
        let usable = root.check_usable();
        // A usable root's check already read its space; a read-only one still has a size.
        let space = match &usable {
            Ok(s) => Some(*s),
            Err(_) => crate::storage::statvfs(root.path()).ok().filter(|_| present),
        };
        let health = root.health();
        let reaped = per_root.iter().find(|e| e.0 == root.id).map_or((0, 0), |e| (e.1, e.2));
        // Running totals kept by the index: no sum over every row per call.
        let totals = state.index.root_totals(root.id);
        let _ = doc.storage.push(RootDoc {
            path,
            present,
            writable: usable.is_ok() && !root.is_failed(),
            total_bytes: space.map_or(0, |s| s.total),
            free_bytes: space.map_or(0, |s| s.free),
            min_free_bytes: space.map_or(0, |s| root.min_free_bytes(s.total)),
            used_bytes: totals.bytes,
            oldest: totals.oldest_us.map(time),
            chunks_reaped: reaped.0,
            bytes_reaped: reaped.1,
            failures: health.failures,
            last_error: health.last_error.as_deref().or(usable.as_ref().err().map(|e| e.msg())).map(msg),
        });
    }
    serde_json_core::to_slice(&doc, buf).map_err(|e| err!(Internal, "status document too large").with_source(e))
}

#[derive(Serialize)]
struct HealthDoc {
    healthy: bool,
    reasons: HVec<Msg, 40>,
}

/// `GET /api/v1/health`: (healthy, length). Healthy when every enabled camera is recording
/// with a fresh frame, a storage root is writable, a configured MQTT broker has not been
/// out of reach longer than [`crate::mqtt::DOWN_UNHEALTHY`], and no archive's backlog is
/// older than its `max_backlog_age`.
pub fn health(state: &AppState, buf: &mut [u8]) -> crate::error::Result<(bool, usize)> {
    let now = now_us();
    let mut reasons: HVec<Msg, 40> = HVec::new();
    for c in state.cameras.snapshot().iter().filter(|c| c.config.enabled) {
        let s = &c.stats;
        let last = s.last_frame_us.load(Relaxed);
        let why = if s.state() != CameraState::Recording {
            Some(format!("camera {} is {}", c.config.id, s.state().as_str()))
        } else if last == 0 || now - last > 15_000_000 {
            Some(format!("camera {} has sent no frame for over 15 s", c.config.id))
        } else {
            None
        };
        if let Some(w) = why {
            let _ = reasons.push(msg(&w));
        }
    }
    if !state.storage.roots().iter().any(|r| !r.is_failed() && r.check_usable().is_ok()) {
        let _ = reasons.push(msg("no storage root is writable"));
    }
    if let Some(down) = state.mqtt.as_deref().and_then(|m| m.down_for(now)) {
        if down > crate::mqtt::DOWN_UNHEALTHY {
            let _ = reasons.push(msg(&format!("the MQTT broker has been out of reach for {} s", down.as_secs())));
        }
    }
    // An archive whose backlog passed max_backlog_age (docs/design/archive.md).
    for t in crate::archive::status::targets(&state.index, &state.archive, &state.box_id)? {
        if let Some(why) = t.unhealthy(now) {
            let _ = reasons.push(msg(&why));
        }
    }
    let doc = HealthDoc { healthy: reasons.is_empty(), reasons };
    let n =
        serde_json_core::to_slice(&doc, buf).map_err(|e| err!(Internal, "health document too large").with_source(e))?;
    Ok((doc.healthy, n))
}

#[derive(Serialize)]
struct CamerasDoc<'a> {
    cameras: HVec<CameraDoc<'a>, MAX_CAMERAS>,
}

/// `GET /api/v1/cameras`: the cameras `role` may see.
pub fn cameras(state: &AppState, role: &Role, buf: &mut [u8]) -> crate::error::Result<usize> {
    let now = now_us();
    let cameras = state.cameras.snapshot();
    let mut doc = CamerasDoc { cameras: HVec::new() };
    for c in cameras.iter().filter(|c| role.may_see(&c.config.id)).take(MAX_CAMERAS) {
        let _ = doc.cameras.push(camera_doc(c, now));
    }
    serde_json_core::to_slice(&doc, buf).map_err(|e| err!(Internal, "camera list too large").with_source(e))
}

#[derive(Serialize)]
struct ErrorDoc {
    error: Msg,
}

/// `{"error": "..."}`.
pub fn error(message: &str) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = serde_json_core::to_slice(&ErrorDoc { error: msg(message) }, &mut buf).unwrap_or(0);
    buf[..n].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::state::{CameraList, Parts};
    use std::sync::Arc;

    /// Status shows the MQTT counters; health turns bad only once the broker has been out
    /// of reach longer than `DOWN_UNHEALTHY` (a broker restart does not flap it).
    #[test]
    fn status_shows_mqtt_and_health_reports_a_broker_down_for_long() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!("[[storage]]\npath = \"{}\"\nmin_free = \"0\"\n", dir.path().join("data").display());
        let config = crate::config::Config::parse(&cfg).unwrap();
        let index = Arc::new(crate::index::Index::open(&config.index_path).unwrap());
        let storage = Arc::new(crate::storage::Storage::open(&config.storage, &index).unwrap());
        let mqtt = Arc::new(crate::mqtt::MqttStats::default());
        let parts = Parts {
            index: index.clone(),
            storage,
            cameras: Arc::new(CameraList::new(Vec::new())),
            reaper: Arc::default(),
            control: None,
            events: Arc::new(crate::events::Events::new(index, &config, now_us)),
            mqtt: Some(mqtt.clone()),
        };
        let state = AppState::new(&config, parts).unwrap();
        let mut buf = vec![0u8; DOC_BYTES];
        let health_now = |buf: &mut [u8]| {
            let (ok, n) = health(&state, buf).unwrap();
            (ok, String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        mqtt.connected.store(true, Relaxed);
        mqtt.connects.store(3, Relaxed);
        mqtt.published.store(42, Relaxed);
        mqtt.dropped_state.store(5, Relaxed);
        assert!(health_now(&mut buf).0);
        let n = status(&state, &mut buf).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        let m = &doc["mqtt"];
        assert_eq!((m["connected"].as_bool(), m["reconnects"].as_u64()), (Some(true), Some(2)), "{doc}");
        assert_eq!((m["published"].as_u64(), m["dropped_state"].as_u64()), (Some(42), Some(5)), "{doc}");
        assert!(m["down_since"].is_null(), "{doc}");

        mqtt.connected.store(false, Relaxed);
        mqtt.down_since_us.store(now_us() - 10_000_000, Relaxed);
        assert!(health_now(&mut buf).0, "10 s down is a restart, not a fault");
        mqtt.down_since_us.store(now_us() - 1_000_000 * (crate::mqtt::DOWN_UNHEALTHY.as_secs() as i64 + 5), Relaxed);
        let (ok, text) = health_now(&mut buf);
        assert!(!ok && text.contains("MQTT broker has been out of reach"), "{text}");
        let n = status(&state, &mut buf).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert!(doc["mqtt"]["down_since"].is_string(), "{doc}");
    }
}
