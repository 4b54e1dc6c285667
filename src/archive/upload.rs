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
//!    A chunk's audio sibling (`docs/design/audio.md`) is its own object beside it (the
//!    chunk's key with `.audio`), sent and verified the same way before the chunk counts
//!    as archived. A sibling that is gone or damaged never holds its chunk back: the chunk
//!    is archived without it, logged and counted (`audio_skipped`).
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
use crate::chunk::audio::{sibling_path, whole_records};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::index::archive::{audio_key, AudioCopy, SiblingSent};
use crate::index::{ChunkRow, Index};
use crate::shutdown::Shutdown;
use crate::storage::confined::{self, Access};
use crate::storage::Storage;
use crate::time::now_us;
use std::io::{Read, Seek};
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
            self.send(index, storage, row, file, shutdown)?;
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

    /// Uploads one chunk and its audio sibling, and records them (rule 3).
    fn send(
        &self,
        index: &Index,
        storage: &Storage,
        row: &ChunkRow,
        file: std::fs::File,
        shutdown: &Shutdown,
    ) -> Result<()> {
        let key = self.key_for(index, row)?;
        let mut local = LocalReads::new(file.take(row.bytes));
        let md5 = self.put_verified(&key, &mut local, row.bytes, shutdown).map_err(|(e, _)| e)?;
        let sibling = self.send_sibling(storage, row, &key, shutdown)?;
        index.archive_record(self.id, row, (&key, &md5), &sibling, now_us())?;
        log::debug!("archive {}: {key} ({} bytes, audio {sibling:?})", self.location, row.bytes);
        Ok(())
    }

    /// PUTs `len` bytes of `src` as `key`, paced; the MD5 of what was sent when the store's
    /// ETag matches it. On failure, whether the fault was the local file's (a read error or
    /// fewer bytes than `len`) rather than the store's.
    fn put_verified<R: Read>(
        &self,
        key: &str,
        src: &mut LocalReads<R>,
        len: u64,
        shutdown: &Shutdown,
    ) -> std::result::Result<String, (Error, bool)> {
        let store = self.store.as_ref().expect("a pass makes the store first");
        let mut body = PacedReader::new(&mut *src, self.cfg.units.max_rate, shutdown.clone());
        let floor = self.cfg.units.max_rate.unwrap_or(u64::MAX).min(256 * 1024);
        let send_time = Duration::from_secs(60 + len / floor);
        let put = store.put(key, &mut body, len, send_time);
        let passed = body.passed();
        let md5 = body.md5_hex();
        let local = src.failed.take();
        if let Some(e) = local {
            return Err((Error::io(format!("PUT {key}: reading the file"), e), true));
        }
        let etag = put.map_err(|e| (e, false))?;
        if passed != len {
            return Err((crate::err!(Io, "PUT {key}: read {passed} of {len} bytes of the file"), true));
        }
        if !etag.eq_ignore_ascii_case(&md5) {
            let e = crate::err!(
                Io,
                "PUT {key}: the store's ETag {etag:?} is not the MD5 of what was sent ({md5}); will resend"
            );
            return Err((e, false));
        }
        Ok(md5)
    }

    /// Sends the audio sibling of `row` (archived as `chunk_key`) when it has one. A store
    /// failure is the pass's error (the chunk is sent again later); a sibling that is gone or
    /// damaged is logged and the chunk goes without it (rule 3).
    fn send_sibling(
        &self,
        storage: &Storage,
        row: &ChunkRow,
        chunk_key: &str,
        shutdown: &Shutdown,
    ) -> Result<SiblingSent> {
        let skip = |why: &dyn std::fmt::Display| {
            log::warn!("archive {}: {chunk_key} goes without its audio: {why}", self.location);
            Ok(SiblingSent::Skipped)
        };
        let (file, len) = match open_sibling(storage, row) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(SiblingSent::Absent),
            Err(why) => return skip(&why),
        };
        let key = audio_key(chunk_key).ok_or_else(|| crate::err!(Internal, "{chunk_key} is not a chunk's key"))?;
        let mut local = LocalReads::new(file.take(len));
        match self.put_verified(&key, &mut local, len, shutdown) {
            Ok(md5) => Ok(SiblingSent::Sent(AudioCopy { bytes: len, md5 })),
            Err((e, true)) => skip(&e),
            Err((e, false)) => Err(e),
        }
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

/// The audio sibling of a sealed chunk and its length, `Ok(None)` when it has none (no
/// audio was recorded), or why it cannot be sent: unreadable (a symlink is never followed),
/// or not whole records from end to end (recovery and repair cut torn tails, so a sealed
/// chunk's sibling reads clean).
fn open_sibling(storage: &Storage, row: &ChunkRow) -> std::result::Result<Option<(std::fs::File, u64)>, String> {
    let Some(root) = storage.root(row.root_id) else { return Err("its storage root is gone".into()) };
    let Some(rel) = sibling_path(&row.rel_path) else { return Ok(None) };
    let path = root.path().join(&rel);
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut f = match confined::open_chunk(root.path(), &rel, Access::Read) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(&e)),
        Ok(f) => f,
    };
    // Checked through the same open file that is then sent from its start.
    let len = match whole_records(&f) {
        Ok((good, len, None)) if good == len && len > 0 => len,
        Ok((good, len, why)) => {
            let why = why.unwrap_or_else(|| "no record".into());
            return Err(format!("{} is damaged at byte {good} of {len}: {why}", path.display()));
        }
        Err(e) => return Err(err(&e)),
    };
    f.rewind().map_err(|e| err(&e))?;
    Ok(Some((f, len)))
}

/// A file read for an upload that keeps its read error, so a failed PUT can tell a local
/// fault (the file) from the store's.
struct LocalReads<R> {
    inner: R,
    failed: Option<std::io::Error>,
}

impl<R> LocalReads<R> {
    fn new(inner: R) -> LocalReads<R> {
        LocalReads { inner, failed: None }
    }
}

impl<R: Read> Read for LocalReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if self.failed.is_none() {
                self.failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::{AudioCodec, AudioFrame, AudioParams};
    use crate::media::frame::EncodedFrame;
    use crate::media::h26x::Codec;
    use std::io::Write;

    /// The sibling a chunk is archived with: absent (no audio), sent whole, or refused with
    /// a reason when its tail is torn (so the chunk goes without it instead of waiting).
    #[test]
    fn siblings_are_checked_before_they_are_sent() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture(d.path());
        let params = Arc::new(AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] });
        let t0 = 1_795_272_960_000_000;
        for i in 0..3 {
            let mut f = EncodedFrame::new(t0 + i * 100_000, Codec::H264);
            f.push_nal(if i == 0 { &[0x65, 1] } else { &[0x41, 1] });
            w.write_frame(&f);
            w.write_audio(&AudioFrame { ts_us: t0 + i * 100_000 + 1, params: params.clone(), data: vec![0xff; 160] });
        }
        w.close();
        let row = index.chunks_for_camera("cam", 0, i64::MAX).unwrap().remove(0);
        let sib = sibling_path(&d.path().join(&row.rel_path)).unwrap();
        let (_, len) = open_sibling(&storage, &row).unwrap().expect("a sibling");
        assert_eq!(len, std::fs::metadata(&sib).unwrap().len());
        std::fs::OpenOptions::new().append(true).open(&sib).unwrap().write_all(&[0, 0, 0]).unwrap();
        let why = open_sibling(&storage, &row).unwrap_err();
        assert!(why.contains("damaged"), "{why}");
        std::fs::remove_file(&sib).unwrap();
        assert!(open_sibling(&storage, &row).unwrap().is_none());
    }
}
