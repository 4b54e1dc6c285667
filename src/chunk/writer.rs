//! Turns a camera's frames into chunk files.
//!
//! Invariants (see `docs/design/crash-safety.md`):
//! 1. A file starts at a keyframe, with the parameter sets written before it; in fact every
//!    keyframe in a file is preceded by the parameter sets, so any keyframe offset in the
//!    index is a place where decoding can start.
//! 2. A new file starts at the first keyframe at or after each UTC minute boundary, and
//!    also when the parameter sets or codec change, timestamps go backwards, the source
//!    reconnected, or the stream paused longer than [`MAX_FRAME_GAP_US`]: so every gap in
//!    the recording is a gap between index rows. "Backwards" and "paused" are measured
//!    against the frontier, the latest timestamp so far (`docs/design/time.md` rules 7-8).
//! 3. The index row of a chunk is committed (state open) before its file is created, so a
//!    crash never leaves a file the index cannot find from its open rows.
//! 4. Records are buffered and written once per GOP (or when the buffer reaches
//!    [`PENDING_LIMIT`]); the file is fdatasync'd every `sync_interval` and fsync'd at
//!    close; the directory is fsync'd when the file is created.
//! 5. Files are created with `O_EXCL` and never overwritten: a taken name gets a suffix.
//! 6. A failed write is cut back to the last whole record (`set_len`), so a file on disk
//!    never holds a torn record while the service runs. A full disk keeps the buffer (up to
//!    the limit) and asks the reaper for space; any other error moves recording to the next
//!    storage root, re-homing the buffered GOP there.

use super::audio::{sibling_path, AudioTrack, ChunkAt};
use super::format::{append_record, MAX_NAL_LEN};
use super::path::rel_path;
use crate::err;
use crate::error::{Error, ErrorKind};
use crate::index::{Index, NewChunk, Seal};
use crate::media::audio::AudioFrame;
use crate::media::frame::{EncodedFrame, MAX_REORDER_US};
use crate::media::h26x::{Codec, NalKind};
use crate::service::status::CameraStats;
use crate::storage::confined::{self, Access};
use crate::storage::{Root, Storage};
use crate::time::minute_of;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::{fs::File, io::Write};

/// A pause in a stream longer than this starts a new chunk at the next keyframe, so the index
/// shows the gap (chunk rows are the timeline's runs).
pub const MAX_FRAME_GAP_US: i64 = 2_000_000;

/// Most bytes buffered before a write even mid-GOP: bounds memory for high-bitrate cameras
/// and long GOPs.
pub const PENDING_LIMIT: usize = 4 << 20;

/// What a writer needs from the rest of the service.
#[derive(Clone)]
pub struct WriterContext {
    /// Roots to write to.
    pub storage: Arc<Storage>,
    /// The index.
    pub index: Arc<Index>,
    /// Called when a root runs short of space (wakes the reaper).
    pub on_space_pressure: Arc<dyn Fn() + Send + Sync>,
    /// How often to fdatasync.
    pub sync_interval: Duration,
}

/// Records buffered for the open chunk but not yet written.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    frames: u64,
    records: u64,
    /// `(ts, offset relative to the start of bytes)` of keyframes in the buffer.
    keyframes: Vec<(i64, u64)>,
    first_ts: Option<i64>,
    /// The latest timestamp in the buffer (B-frames come after later frames).
    max_frame_ts: i64,
    /// Whether the buffer begins at a keyframe (and so can start a new file).
    starts_with_key: bool,
}

impl Pending {
    fn clear(&mut self) {
        self.bytes.clear();
        self.frames = 0;
        self.records = 0;
        self.keyframes.clear();
        self.first_ts = None;
        self.starts_with_key = false;
    }
}

/// The chunk file being written.
struct OpenChunk {
    id: i64,
    root_id: i64,
    rel_path: PathBuf,
    abs_path: PathBuf,
    file: File,
    /// Bytes on disk: every byte before this offset is a whole record.
    written: u64,
    start_us: i64,
    end_us: i64,
    minute: i64,
    frames: u64,
    records: u64,
    keyframes: Vec<(i64, u64)>,
    last_sync: Instant,
    /// Data written since the last fdatasync.
    dirty: bool,
}

/// The latest parameter sets seen on the stream.
#[derive(Default, PartialEq, Eq, Clone)]
struct ParamSets {
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

/// Writes one camera's frames into chunk files. Owned by the camera's writer thread.
pub struct ChunkWriter {
    camera: String,
    codec: Codec,
    ctx: WriterContext,
    stats: Arc<CameraStats>,
    params: ParamSets,
    open: Option<OpenChunk>,
    pending: Pending,
    /// Drop frames until the next keyframe (after a loss, or before the first keyframe).
    need_keyframe: bool,
    /// Start a new file at the next keyframe even within the same minute.
    force_rotate: bool,
    /// The frontier: the latest timestamp accepted so far (a B-frame's is earlier).
    last_ts: Option<i64>,
    /// Whether the current drop run was already counted as a gap and logged.
    in_drop_run: bool,
    /// The open chunk's audio sibling (`docs/design/audio.md`).
    audio: AudioTrack,
}

impl ChunkWriter {
    /// A writer for `camera`; nothing is created until the first keyframe. `codec` is the
    /// expected codec; frames of another codec switch the writer (and start a new file).
    pub fn new(camera: &str, codec: Codec, ctx: WriterContext, stats: Arc<CameraStats>) -> ChunkWriter {
        ChunkWriter {
            camera: camera.to_owned(),
            codec,
            ctx,
            stats,
            params: ParamSets::default(),
            open: None,
            pending: Pending::default(),
            need_keyframe: true,
            force_rotate: false,
            last_ts: None,
            in_drop_run: false,
            audio: AudioTrack::default(),
        }
    }

    fn drop_frame(&mut self, why: &str) {
        let new_run = !self.in_drop_run && self.last_ts.is_some();
        if new_run {
            log::warn!("camera {}: dropping frames until the next keyframe: {why}", self.camera);
        }
        self.in_drop_run = true;
        self.stats.add_dropped(1, new_run);
    }

    /// Adds one frame. Errors are handled inside (dropping frames, failing over); the writer
    /// never stops a camera.
    pub fn write_frame(&mut self, f: &EncodedFrame) {
        if let Some(n) = f.nals().map(<[u8]>::len).find(|&n| n as u64 > MAX_NAL_LEN) {
            self.drop_oversized(n);
            return;
        }
        if f.codec != self.codec {
            // A camera reconfigured from H.264 to H.265 (or back): a new file, new params.
            log::info!("camera {}: codec changed to {}", self.camera, f.codec.as_str());
            self.flush();
            self.codec = f.codec;
            self.params = ParamSets::default();
            self.force_rotate = true;
            self.need_keyframe = true;
        }
        let param_change = self.learn_params(f);
        if let Some(last) = self.last_ts {
            if f.ts_us < last - MAX_REORDER_US || (f.keyframe && f.ts_us < last) {
                log::warn!(
                    "camera {}: timestamp went back {} µs; starting a new chunk at the next keyframe",
                    self.camera,
                    last - f.ts_us
                );
                self.force_rotate = true;
                if !f.keyframe {
                    self.need_keyframe = true;
                }
            }
        }
        if param_change && self.open.is_some() {
            self.force_rotate = true;
        }
        let gap = self.last_ts.is_some_and(|l| f.ts_us - l > MAX_FRAME_GAP_US);
        if (f.discontinuity || gap) && self.open.is_some() {
            self.force_rotate = true;
            if !f.keyframe {
                self.need_keyframe = true;
            }
        }
        if self.need_keyframe && !f.keyframe {
            self.drop_frame("waiting for a keyframe");
            return;
        }
        if f.keyframe {
            // Write the finished GOP in one go before starting the next one.
            self.flush();
            let rotate = match &self.open {
                None => true,
                Some(o) => self.force_rotate || minute_of(f.ts_us) != o.minute,
            };
            if rotate {
                self.rotate(f.ts_us);
                if self.open.is_none() {
                    self.drop_frame("no storage root is writable");
                    return;
                }
            }
            if self.in_drop_run {
                log::info!("camera {}: recording again", self.camera);
            }
            self.need_keyframe = false;
            self.force_rotate = false;
            self.in_drop_run = false;
        }
        self.append(f);
        self.last_ts = Some(self.last_ts.map_or(f.ts_us, |l| l.max(f.ts_us)));
        if self.pending.bytes.len() >= PENDING_LIMIT {
            self.flush();
        }
        self.sync_if_due();
    }

    /// A frame holding a NAL the chunk reader would refuse ([`MAX_NAL_LEN`]) is dropped, so
    /// it cannot make the rest of its chunk unreadable; the frames after it depend on it,
    /// so recording resumes at the next keyframe.
    fn drop_oversized(&mut self, n: usize) {
        if !self.in_drop_run {
            log::warn!(
                "camera {}: dropping a frame with a NAL of {n} bytes, over the chunk format's limit of {} MiB \
                 (docs/design/chunk-format.md); recording resumes at the next keyframe",
                self.camera,
                MAX_NAL_LEN >> 20
            );
        }
        let new_gap = !self.in_drop_run && self.last_ts.is_some();
        self.in_drop_run = true;
        self.need_keyframe = true;
        self.stats.add_dropped(1, new_gap);
    }

    /// Adds an audio frame to the open chunk's sibling; dropped (counted in status) when no
    /// chunk is open (before the first keyframe, or no root is writable).
    pub fn write_audio(&mut self, a: &AudioFrame) {
        let taken = match self.open.as_ref().and_then(|o| Some((o, self.ctx.storage.root(o.root_id)?))) {
            Some((o, root)) => {
                let at = ChunkAt { id: o.id, root: root.path(), rel: &o.rel_path };
                self.audio.write(at, a, &self.camera)
            }
            None => 0,
        };
        if taken == 0 {
            self.stats.audio_dropped.fetch_add(1, Relaxed);
        } else {
            self.stats.audio_frames.fetch_add(1, Relaxed);
            self.stats.audio_bytes.fetch_add(taken as u64, Relaxed);
        }
    }

    /// Periodic work when no frame arrives: keeps the fsync promise for a quiet camera.
    pub fn tick(&mut self) {
        self.sync_if_due();
    }

    /// Flushes, fsyncs and seals the open chunk (shutdown, or the source ended).
    pub fn close(&mut self) {
        self.flush();
        if let Some(seal) = self.finish_open() {
            if let Err(e) = self.ctx.index.seal(&seal) {
                log::error!("camera {}: {e}", self.camera);
            }
        }
        self.need_keyframe = true;
    }

    /// Remembers parameter sets; returns true if an SPS/PPS/VPS changed.
    fn learn_params(&mut self, f: &EncodedFrame) -> bool {
        let mut changed = false;
        for nal in f.nals() {
            let slot = match self.codec.classify(nal) {
                NalKind::Vps => &mut self.params.vps,
                NalKind::Sps => &mut self.params.sps,
                NalKind::Pps => &mut self.params.pps,
                _ => continue,
            };
            if slot.as_deref() != Some(nal) {
                changed |= slot.is_some();
                *slot = Some(nal.to_vec());
            }
        }
        changed
    }

    /// Appends a frame's records to the buffer, with parameter sets before a keyframe.
    fn append(&mut self, f: &EncodedFrame) {
        let p = &mut self.pending;
        if p.first_ts.is_none() {
            p.first_ts = Some(f.ts_us);
            p.starts_with_key = f.keyframe;
        }
        if f.keyframe {
            p.keyframes.push((f.ts_us, p.bytes.len() as u64));
            let has = |k: NalKind| f.nals().any(|n| self.codec.classify(n) == k);
            let missing: Vec<&Vec<u8>> =
                [(NalKind::Vps, &self.params.vps), (NalKind::Sps, &self.params.sps), (NalKind::Pps, &self.params.pps)]
                    .into_iter()
                    .filter(|(k, _)| !has(*k))
                    .filter_map(|(_, v)| v.as_ref())
                    .collect();
            for ps in missing {
                append_record(&mut p.bytes, f.ts_us, ps);
                p.records += 1;
            }
        }
        for nal in f.nals() {
            append_record(&mut p.bytes, f.ts_us, nal);
            p.records += 1;
        }
        p.frames += 1;
        p.max_frame_ts = if p.frames == 1 { f.ts_us } else { p.max_frame_ts.max(f.ts_us) };
        self.stats.last_frame_us.fetch_max(f.ts_us, Relaxed);
    }

    /// Writes the buffer to the open file. On a full disk the buffer is kept (up to the
    /// limit); on any other error the root is marked failed and the buffer re-homed.
    fn flush(&mut self) {
        self.audio.flush(&self.camera);
        loop {
            if self.pending.bytes.is_empty() {
                return;
            }
            let Some(o) = self.open.as_mut() else {
                self.discard_pending("no chunk is open");
                return;
            };
            match o.file.write_all(&self.pending.bytes) {
                Ok(()) => {
                    let p = &mut self.pending;
                    o.keyframes.extend(p.keyframes.iter().map(|&(ts, off)| (ts, o.written + off)));
                    o.written += p.bytes.len() as u64;
                    o.frames += p.frames;
                    o.records += p.records;
                    o.end_us = o.end_us.max(p.max_frame_ts);
                    o.dirty = true;
                    self.stats.frames_written.fetch_add(p.frames, Relaxed);
                    self.stats.bytes_written.fetch_add(p.bytes.len() as u64, Relaxed);
                    p.clear();
                    return;
                }
                Err(e) => {
                    // Cut any partial record off so the file stays whole.
                    let _ = o.file.set_len(o.written);
                    let e = Error::io(format!("writing {}", o.abs_path.display()), e);
                    if e.kind() == ErrorKind::NoSpace {
                        (self.ctx.on_space_pressure)();
                        if self.pending.bytes.len() >= PENDING_LIMIT {
                            self.discard_pending("disk full");
                        }
                        self.stats.set_error(&e);
                        return;
                    }
                    self.root_failed(&e);
                    if !self.pending.starts_with_key {
                        self.discard_pending("storage root failed mid-GOP");
                        return;
                    }
                    let ts = self.pending.first_ts.expect("non-empty pending has a first ts");
                    self.rotate(ts);
                    // Loop: write the buffered GOP to the new root's file.
                }
            }
        }
    }

    fn discard_pending(&mut self, why: &str) {
        let n = self.pending.frames;
        if n > 0 {
            log::warn!("camera {}: lost {n} frames: {why}", self.camera);
            self.stats.add_dropped(n, !self.in_drop_run);
            self.in_drop_run = true;
        }
        self.pending.clear();
        self.need_keyframe = true;
    }

    /// The failover steps, the same wherever a root fails: say so, show it in status, and
    /// mark the root failed so new chunks go to the next one.
    fn move_on(&self, root: Option<&Root>, e: &Error) {
        log::error!("camera {}: {e}; moving recording to the next storage root", self.camera);
        self.stats.set_error(e);
        if let Some(root) = root {
            root.mark_failed(e);
        }
    }

    /// A non-space write error: mark the root failed, abandon its chunk (sealed with what
    /// reached the disk), and let the next rotation pick another root.
    fn root_failed(&mut self, e: &Error) {
        self.audio.close(&self.camera);
        let Some(o) = self.open.take() else {
            self.move_on(None, e);
            return;
        };
        self.move_on(self.ctx.storage.root(o.root_id), e);
        // Best effort: whatever still reaches the disk is kept. The failure is already
        // reported, so a second error from this fsync says nothing new.
        let _ = o.file.sync_all();
        let audio_bytes = self.audio.closed_bytes(o.id);
        let seal = self.closed(o, audio_bytes);
        if let Err(e) = self.ctx.index.seal(&seal) {
            log::error!("camera {}: {e}", self.camera);
        }
    }

    fn sync_if_due(&mut self) {
        let due = self.open.as_ref().is_some_and(|o| o.last_sync.elapsed() >= self.ctx.sync_interval);
        if !due {
            return;
        }
        self.flush();
        let Some(o) = self.open.as_mut() else { return };
        o.last_sync = Instant::now();
        if o.dirty {
            if let Err(e) = o.file.sync_data() {
                let e = Error::io(format!("fdatasync {}", o.abs_path.display()), e);
                self.root_failed(&e);
                self.need_keyframe = true;
                return;
            }
            o.dirty = false;
        }
        self.audio.sync(&self.camera);
        // A disk unmounted under us (lazy unmount, yanked USB with a stale mount) can keep
        // accepting writes into a detached filesystem: check the file is still where the
        // root says it is.
        if let Err(e) = still_reachable(o) {
            self.root_failed(&e);
            self.need_keyframe = true;
            return;
        }
        let root_id = o.root_id;
        if let Some(root) = self.ctx.storage.root(root_id) {
            if let Ok(space) = crate::storage::statvfs(root.path()) {
                if space.free < root.min_free_bytes(space.total) {
                    (self.ctx.on_space_pressure)();
                }
            }
        }
    }

    /// fsyncs and closes the open chunk; returns its seal for the index.
    fn finish_open(&mut self) -> Option<Seal> {
        self.audio.close(&self.camera);
        let o = self.open.take()?;
        // The data may not be durable: the disk is failing (EIO, or EROFS after ext4
        // remounted itself read-only), or it was unmounted since the last sync check (the
        // file sits on a detached filesystem). Treat it like a failed write.
        let failed = match o.file.sync_all() {
            Err(e) => Some(Error::io(format!("fsync {}", o.abs_path.display()), e)),
            Ok(()) => still_reachable(&o).err(),
        };
        if let Some(e) = failed {
            self.move_on(self.ctx.storage.root(o.root_id), &e);
        }
        let audio_bytes = self.audio.closed_bytes(o.id);
        Some(self.closed(o, audio_bytes))
    }

    /// Counts `o` as sealed and returns its seal for the index (`audio_bytes`: its audio
    /// sibling's length).
    fn closed(&self, o: OpenChunk, audio_bytes: u64) -> Seal {
        self.stats.chunks_sealed.fetch_add(1, Relaxed);
        self.stats.current_root.store(0, Relaxed);
        Seal {
            id: o.id,
            start_us: o.start_us,
            end_us: o.end_us,
            bytes: o.written,
            frames: o.frames,
            keyframes: o.keyframes,
            records: o.records,
            audio_bytes,
        }
    }

    /// Seals the open chunk (if any) and opens a new one starting at `ts`, in one index
    /// transaction. Leaves `self.open` as `None` if no root can take the file.
    fn rotate(&mut self, ts: i64) {
        let mut seal = self.finish_open();
        let mut tries = 0;
        while let Some(root) = self.ctx.storage.pick_for_write() {
            tries += 1;
            match self.open_on(root, ts, seal.as_ref()) {
                Ok(o) => {
                    self.stats.current_root.store(o.root_id, Relaxed);
                    self.open = Some(o);
                    return;
                }
                Err((e, sealed)) => {
                    if sealed {
                        seal = None;
                    }
                    self.move_on(Some(root), &e);
                }
            }
            if tries > self.ctx.storage.roots().len() {
                break;
            }
        }
        if let Some(s) = seal {
            if let Err(e) = self.ctx.index.seal(&s) {
                log::error!("camera {}: {e}", self.camera);
            }
        }
    }

    /// Registers and creates a chunk on `root`. The error says whether `seal` was committed.
    fn open_on(&self, root: &Root, ts: i64, seal: Option<&Seal>) -> std::result::Result<OpenChunk, (Error, bool)> {
        let mut seq = 0;
        let rel = loop {
            let rel = rel_path(&self.camera, ts, seq);
            // A name is taken by anything there (a symlink too), its audio sibling's name
            // too, or by a row.
            let taken = |rel: &std::path::Path| confined::name_taken(root.path(), rel);
            let on_disk = taken(&rel)
                .and_then(|t| Ok(t || taken(&sibling_path(&rel).expect("a chunk path"))?))
                .map_err(|e| (Error::io(format!("looking for {}", root.path().join(&rel).display()), e), false))?;
            if !on_disk && !self.ctx.index.has_path(root.id, &rel).map_err(|e| (e, false))? {
                break rel;
            }
            seq += 1;
            if seq > 1000 {
                return Err((err!(Internal, "no free chunk name for {}", rel.display()), false));
            }
        };
        let abs = root.path().join(&rel);
        let new = NewChunk { camera: &self.camera, root_id: root.id, rel_path: &rel, start_us: ts, codec: self.codec };
        let id = self
            .ctx
            .index
            .rotate(seal, Some(&new))
            .map_err(|e| (e, false))?
            .ok_or_else(|| (err!(Internal, "an insert gave no id"), false))?;
        // Creates the camera and day directories as needed (durably), never through a
        // symlink, and the file with O_EXCL.
        let file = confined::open_chunk(root.path(), &rel, Access::CreateNew).map_err(|e| {
            let _ = self.ctx.index.delete_rows(&[id]);
            (Error::io(format!("creating {}", abs.display()), e), true)
        })?;
        log::debug!("camera {}: new chunk {}", self.camera, abs.display());
        Ok(OpenChunk {
            id,
            root_id: root.id,
            rel_path: rel,
            abs_path: abs,
            file,
            written: 0,
            start_us: ts,
            end_us: ts,
            minute: minute_of(ts),
            frames: 0,
            records: 0,
            keyframes: Vec::new(),
            last_sync: Instant::now(),
            dirty: false,
        })
    }

    /// The open chunk's index id and relative path, for status and tests.
    pub fn open_chunk(&self) -> Option<(i64, &std::path::Path)> {
        self.open.as_ref().map(|o| (o.id, o.rel_path.as_path()))
    }
}

/// Whether the open file is still the file at its path (same device and inode).
fn still_reachable(o: &OpenChunk) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let gone = |why: &str| err!(Io, "{} {why}; was its disk unmounted?", o.abs_path.display());
    let open = o.file.metadata().map_err(|e| Error::io(format!("fstat {}", o.abs_path.display()), e))?;
    match std::fs::metadata(&o.abs_path) {
        Ok(m) if m.dev() == open.dev() && m.ino() == open.ino() => Ok(()),
        Ok(_) => Err(gone("is no longer the file being written")),
        Err(_) => Err(gone("has disappeared")),
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;
