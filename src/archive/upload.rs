//! The uploader: one thread (`archive`) that copies sealed chunks to every `[[archive]]`
//! target in turn, beside recording and never in its way.
//!
//! Rules (`docs/design/archive.md`):
//! 1. Recording never waits for it: it only reads sealed chunk files and writes its own
//!    index rows, a short transaction per chunk. Nothing queues in memory: the backlog is
//!    the set of sealed chunks without an `archive_object` row, so a reboot or an outage
//!    resumes where it stopped.
//! 2. A chunk is sent `delay` after it is sealed, streamed from the file at most
//!    `max_rate` bytes per second; memory is ureq's two 64 KiB buffers.
//! 3. An upload counts only when the store's ETag equals the MD5 of the bytes read. The key
//!    is chosen before the upload from the index alone, so a retry after a crash or an
//!    outage overwrites the same object with the same bytes: each chunk is one object.
//! 4. A failing store is retried with a back-off (5 s doubling to 5 min); its error is shown
//!    in status and written to the index only when it changes.
//! 5. Once the backlog is empty and `manifest_interval` has passed, the manifests of the
//!    camera-days that gained chunks are rewritten.
//! 6. `send = "events"` takes only chunks marked as event footage. A sealed chunk is marked
//!    later only by an event added later (its pre capture reaching back, or an event
//!    recorded after the fact), so each pass first looks at the events added since the last
//!    one and moves the cursor back to the first unsent chunk they marked.

use super::layout;
use super::s3::Store;
use super::settings::{read_login, ArchiveConfig, Send};
use super::throttle::PacedReader;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::index::{ChunkRow, Index};
use crate::shutdown::Shutdown;
use crate::storage::Storage;
use crate::time::now_us;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Chunks fetched from the index per look.
const BATCH: usize = 16;
/// How often an idle uploader looks for sealed chunks.
const POLL: Duration = Duration::from_secs(5);
/// Longest back-off after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What status shows of a target while the service runs (the rest is in the index).
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// The current error, cleared by the next success.
    pub error: Option<String>,
}

/// A target's live state, shared with status.
pub type LiveState = Arc<Mutex<Live>>;

struct Target {
    cfg: ArchiveConfig,
    id: i64,
    location: String,
    object_prefix: String,
    store: Option<Store>,
    /// Lowest chunk id that may still need sending.
    cursor: i64,
    /// The newest event id looked at (rule 6).
    events_seen: i64,
    /// When each pending chunk of the current batch was first seen sealed (at most
    /// [`BATCH`] entries).
    sealed_seen: std::collections::HashMap<i64, Instant>,
    next_manifest: Instant,
    backoff: Duration,
    retry_at: Instant,
    live: LiveState,
}

/// A running uploader.
pub struct Uploader {
    /// Its thread.
    pub thread: JoinHandle<()>,
    /// Every target's live state (location, state), in config order.
    pub live: Vec<(String, LiveState)>,
}

/// Starts the uploader when the config has `[[archive]]` targets.
pub fn start(
    config: &Config,
    index: &Arc<Index>,
    storage: &Arc<Storage>,
    shutdown: &Shutdown,
) -> Result<Option<Uploader>> {
    if config.archive.is_empty() {
        return Ok(None);
    }
    let mut targets = Vec::new();
    for cfg in &config.archive {
        let location = cfg.location(&config.server.box_id);
        let id = index.archive_target_id(&location, super::takes(cfg.send))?;
        // The cursor starts at 0, so events already in the index need no look (rule 6).
        let events_seen = index.archive_events_since(id, i64::MAX)?.1;
        targets.push(Target {
            object_prefix: cfg.object_prefix(&config.server.box_id),
            cfg: cfg.clone(),
            id,
            location,
            store: None,
            cursor: 0,
            events_seen,
            sealed_seen: Default::default(),
            next_manifest: Instant::now(),
            backoff: Duration::ZERO,
            retry_at: Instant::now(),
            live: LiveState::default(),
        });
    }
    let live = targets.iter().map(|t| (t.location.clone(), t.live.clone())).collect();
    let (index, storage, stop) = (index.clone(), storage.clone(), shutdown.clone());
    let box_id = config.server.box_id.clone();
    let thread = std::thread::Builder::new()
        .name("archive".into())
        .spawn(move || run(targets, &index, &storage, &stop, &box_id))
        .map_err(|e| Error::io("spawning the archive uploader", e))?;
    Ok(Some(Uploader { thread, live }))
}

fn run(mut targets: Vec<Target>, index: &Index, storage: &Storage, shutdown: &Shutdown, box_id: &str) {
    log::info!("archive: uploading to {}", targets.iter().map(|t| t.location.as_str()).collect::<Vec<_>>().join(", "));
    while !shutdown.is_triggered() {
        let mut more = false;
        for t in targets.iter_mut().filter(|t| Instant::now() >= t.retry_at) {
            match t.pass(index, storage, shutdown, box_id) {
                Ok(busy) => {
                    more |= busy;
                    t.succeeded();
                }
                Err(e) if shutdown.is_triggered() => log::debug!("archive {}: stopped: {e}", t.location),
                Err(e) => t.failed(index, &e),
            }
        }
        // Idle: look again after POLL, or sooner when a failed target's back-off ends.
        let now = Instant::now();
        let retry = targets.iter().map(|t| t.retry_at).filter(|&r| r > now).min();
        let wait = match (more, retry) {
            (true, _) => Duration::ZERO,
            (false, Some(r)) => POLL.min(r - now),
            (false, None) => POLL,
        };
        if shutdown.wait_timeout(wait) {
            break;
        }
    }
}

impl Target {
    /// Sends up to [`BATCH`] chunks; true when there may be more to send right away.
    fn pass(&mut self, index: &Index, storage: &Storage, shutdown: &Shutdown, box_id: &str) -> Result<bool> {
        if self.store.is_none() {
            let login = read_login(&self.cfg.credentials_file)?;
            self.store = Some(Store::new(&self.cfg, &login)?);
        }
        if self.cfg.send == Send::Events {
            self.follow_events(index)?;
        }
        let rows = index.archive_pending(self.id, super::takes(self.cfg.send), self.cursor, BATCH)?;
        self.sealed_seen.retain(|id, _| rows.iter().any(|r| r.id == *id));
        let mut sent = 0;
        for row in &rows {
            if shutdown.is_triggered() {
                return Ok(false);
            }
            if !self.due(row) {
                continue;
            }
            let Some(file) = self.open_local(storage, row) else { continue };
            self.send(index, row, file, shutdown)?;
            sent += 1;
        }
        // The cursor moves to the first chunk still unsent or still being written.
        self.cursor =
            index.archive_first_unsent(self.id, super::takes(self.cfg.send), self.cursor)?.unwrap_or(self.cursor);
        if rows.len() < BATCH && Instant::now() >= self.next_manifest {
            self.write_manifests(index, box_id)?;
            self.next_manifest = Instant::now() + self.cfg.units.manifest_interval;
        }
        Ok(sent > 0 && rows.len() == BATCH)
    }

    /// Rule 6: the cursor goes back to the first unsent chunk that events added since the
    /// last look have marked. Read before the pass's queries, so an event added during the
    /// pass is looked at by the next one.
    fn follow_events(&mut self, index: &Index) -> Result<()> {
        let (rewind, newest) = index.archive_events_since(self.id, self.events_seen)?;
        if let Some(id) = rewind.filter(|&id| id < self.cursor) {
            log::debug!("archive {}: a new event marked chunk {id}; looking again from there", self.location);
            self.cursor = id;
        }
        self.events_seen = newest;
        Ok(())
    }

    /// Rule 2: `delay` after the seal. A chunk whose last frame is older than `delay` is due
    /// at once; otherwise `delay` after this uploader first saw it sealed (a clock that runs
    /// ahead of the wall clock cannot hold a chunk back for good).
    fn due(&mut self, row: &ChunkRow) -> bool {
        let delay = self.cfg.units.delay;
        let seen = *self.sealed_seen.entry(row.id).or_insert_with(Instant::now);
        row.end_us.saturating_add(delay.as_micros() as i64) <= now_us() || seen.elapsed() >= delay
    }

    /// The chunk's file, or `None` (logged) when it cannot be sent: the reaper removed it
    /// meanwhile, its root is gone, or it is shorter than indexed. Later chunks go on; this
    /// one is tried again at the next pass while its row says it is sealed.
    fn open_local(&self, storage: &Storage, row: &ChunkRow) -> Option<std::fs::File> {
        let root = storage.root(row.root_id)?;
        let path = root.path().join(&row.rel_path);
        let opened = std::fs::File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len())));
        match opened {
            Ok((f, len)) if len >= row.bytes => Some(f),
            Ok((_, len)) => {
                log::warn!(
                    "archive {}: {} is shorter than indexed ({len} < {})",
                    self.location,
                    path.display(),
                    row.bytes
                );
                None
            }
            Err(e) => {
                log::warn!("archive {}: {}: {e}", self.location, path.display());
                None
            }
        }
    }

    /// Uploads one chunk and records it (rule 3).
    fn send(&self, index: &Index, row: &ChunkRow, file: std::fs::File, shutdown: &Shutdown) -> Result<()> {
        let store = self.store.as_ref().expect("a pass makes the store first");
        let key = self.key_for(index, row)?;
        let mut body = PacedReader::new(file.take(row.bytes), self.cfg.units.max_rate, shutdown.clone());
        let floor = self.cfg.units.max_rate.unwrap_or(u64::MAX).min(256 * 1024);
        let send_time = Duration::from_secs(60 + row.bytes / floor);
        let etag = store.put(&key, &mut body, row.bytes, send_time)?;
        if body.passed() != row.bytes {
            crate::bail!(Io, "PUT {key}: read {} of {} bytes of the chunk", body.passed(), row.bytes);
        }
        let md5 = body.md5_hex();
        if !etag.eq_ignore_ascii_case(&md5) {
            crate::bail!(
                Io,
                "PUT {key}: the store's ETag {etag:?} is not the MD5 of what was sent ({md5}); will resend"
            );
        }
        index.archive_record(self.id, row, &key, &md5, now_us())?;
        log::debug!("archive {}: {key} ({} bytes)", self.location, row.bytes);
        Ok(())
    }

    /// The chunk's own name, or the next free `.n` when another chunk holds it.
    fn key_for(&self, index: &Index, row: &ChunkRow) -> Result<String> {
        for extra in 0..100 {
            let key = layout::chunk_key(&self.object_prefix, &row.rel_path, extra)
                .ok_or_else(|| crate::err!(DataLoss, "{} is not a chunk path", row.rel_path.display()))?;
            if !index.archive_key_taken(self.id, &key, row.id)? {
                return Ok(key);
            }
        }
        Err(crate::err!(DataLoss, "{}: no free object name", row.rel_path.display()))
    }

    /// Rewrites the manifests of the camera-days that gained chunks (rule 5).
    fn write_manifests(&self, index: &Index, box_id: &str) -> Result<()> {
        let store = self.store.as_ref().expect("a pass makes the store first");
        for (camera, day) in index.archive_unlisted_days(self.id)? {
            let rows = index.archive_day(self.id, &camera, &day)?;
            let bytes = layout::manifest(box_id, &camera, &day, &rows)?;
            let key = layout::manifest_key(&self.object_prefix, &camera, &day);
            let mut body = PacedReader::new(&bytes[..], self.cfg.units.max_rate, Shutdown::new());
            let etag = store.put(&key, &mut body, bytes.len() as u64, Duration::from_secs(120))?;
            if !etag.eq_ignore_ascii_case(&body.md5_hex()) {
                crate::bail!(Io, "PUT {key}: the store's ETag does not match the manifest sent");
            }
            index.archive_mark_listed(self.id, &camera, &day)?;
            log::debug!("archive {}: manifest {key} ({} chunks)", self.location, rows.len());
        }
        Ok(())
    }

    fn succeeded(&mut self) {
        self.backoff = Duration::ZERO;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.error.take().is_some() {
            log::info!("archive {}: uploads resumed", self.location);
        }
    }

    /// Rule 4: back off, show the error, store it when it changed.
    fn failed(&mut self, index: &Index, e: &Error) {
        self.backoff = (self.backoff * 2).clamp(POLL, MAX_BACKOFF);
        self.retry_at = Instant::now() + self.backoff;
        if e.kind() == ErrorKind::InvalidArgument {
            self.store = None; // read the login again next time: it may have been fixed
        }
        let msg = e.to_string();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.error.as_deref() != Some(msg.as_str()) {
            log::warn!("archive {}: {msg}; retrying in {} s", self.location, self.backoff.as_secs());
            if let Err(db) = index.archive_error(self.id, &msg, now_us()) {
                log::warn!("archive {}: {db}", self.location);
            }
            live.error = Some(msg);
        }
    }
}
