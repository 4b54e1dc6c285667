//! The background indexer: footage on a storage root that the index does not know (an
//! index lost or replaced, an SD card from another box, a PyNVR directory copied in) is
//! found and indexed while the service records, so the reaper can reclaim its space and the
//! API can export it.
//!
//! Rules (see `docs/design/crash-safety.md`, "The background indexer"):
//! 1. It starts [`START_DELAY`] after recording has started and never delays a frame: one
//!    thread at `nice` 19 and the idle I/O class ([`crate::kernel::priority`]), pacing
//!    itself to at most half of its time busy and [`MAX_READ_RATE`] bytes read per second.
//! 2. It walks each root when the service starts and whenever the root turns from unusable
//!    to usable (a re-plugged USB disk), polled every [`POLL`]; files still changing are
//!    looked at again after [`RETRY`].
//! 3. Bounded memory: one directory's names at a time ([`walk`]); a day directory whose
//!    files are all indexed costs one count query, not a lookup per file.
//! 4. It only reads: no file is cut, removed or written (torn tails are indexed up to their
//!    last whole record; `check --repair` cuts them). Files are reached through
//!    [`confined`]: no symlink is followed.
//! 5. It never looks at a chunk this service writes: those have rows (row before file), so
//!    only files without a row are scanned; a file modified in the last [`SETTLE`] (being
//!    copied in) waits for the next pass.
//! 6. Found chunks are committed [`BATCH_FILES`] at a time (one transaction each) and the
//!    reaper is poked, so retention and the API see them within seconds of their scan.

use super::confined::{self, Access};
use super::reaper::ReaperHandle;
use super::recovery::{seal_from, sibling_len};
use super::walk::{walk, Flow, Found};
use super::{Root, Storage};
use crate::chunk::path::parse_rel_path;
use crate::chunk::scan::scan_reader;
use crate::error::Result;
use crate::index::{Index, NewChunk, Seal};
use crate::media::h26x::Codec;
use crate::shutdown::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Delay from the start of recording to the first pass.
pub const START_DELAY: Duration = Duration::from_secs(2);
/// How often roots are checked for a return.
pub const POLL: Duration = Duration::from_secs(5);
/// A file modified this recently (either way: clocks differ) is left for a later pass.
pub const SETTLE: Duration = Duration::from_secs(10);
/// Delay before a root with changing files (or a failed pass) is walked again.
pub const RETRY: Duration = Duration::from_secs(60);
/// Found chunks per index transaction.
pub const BATCH_FILES: usize = 64;
/// Most bytes read per second, on average.
pub const MAX_READ_RATE: u64 = 8 << 20;
/// Least time between two reaper pokes.
const POKE_EVERY: Duration = Duration::from_secs(2);

/// Starts the indexer thread of the service, poking `reaper` when it adds chunks.
pub fn start(
    index: &Arc<Index>,
    storage: &Arc<Storage>,
    reaper: ReaperHandle,
    shutdown: &Shutdown,
) -> Result<std::thread::JoinHandle<()>> {
    Indexer::new(index.clone(), storage.clone(), Arc::new(move || reaper.poke()))
        .spawn(shutdown.clone())
        .map_err(|e| crate::error::Error::io("spawning the indexer", e))
}

/// What one pass over a root did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Chunk files added to the index.
    pub indexed: u64,
    /// Bytes of footage they hold.
    pub bytes: u64,
    /// Files without a decodable start, left alone.
    pub undecodable: u64,
    /// Symlinks and special files, left alone.
    pub skipped: u64,
    /// Files still changing, left for the next pass.
    pub deferred: u64,
}

/// A found chunk, owned until its batch is committed.
struct FoundChunk {
    camera: String,
    rel: PathBuf,
    codec: Codec,
    seal: Seal,
}

/// What a look at one unknown file gave.
enum Look {
    Chunk(FoundChunk),
    Undecodable,
    Changing,
    Gone,
}

/// The indexer and what it acts on.
pub struct Indexer {
    index: Arc<Index>,
    storage: Arc<Storage>,
    /// Called after found chunks are committed (pokes the reaper).
    on_found: Arc<dyn Fn() + Send + Sync>,
}

impl Indexer {
    /// An indexer over `storage`; `on_found` is called when chunks were added.
    pub fn new(index: Arc<Index>, storage: Arc<Storage>, on_found: Arc<dyn Fn() + Send + Sync>) -> Indexer {
        Indexer { index, storage, on_found }
    }

    /// Starts the indexer thread; it stops when `shutdown` fires.
    pub fn spawn(self, shutdown: Shutdown) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("indexer".into()).spawn(move || self.run(shutdown))
    }

    fn run(self, shutdown: Shutdown) {
        let lowered = crate::kernel::priority::lower_this_thread();
        if lowered.cpu && lowered.io {
            log::debug!("indexer: running at nice 19, idle I/O class");
        } else {
            log::warn!("indexer: cannot lower its priority ({lowered:?}); relying on pacing alone");
        }
        if shutdown.wait_timeout(START_DELAY) {
            return;
        }
        let roots = self.storage.roots();
        let mut usable = vec![false; roots.len()];
        let mut again: Vec<Option<Instant>> = vec![None; roots.len()];
        loop {
            for (i, root) in roots.iter().enumerate() {
                let now_usable = root.check_usable().is_ok();
                let due = now_usable && (!usable[i] || again[i].is_some_and(|t| Instant::now() >= t));
                usable[i] = now_usable;
                if !due {
                    continue;
                }
                again[i] = match self.pass(root, &shutdown) {
                    Ok(p) => (p.deferred > 0).then(|| Instant::now() + RETRY),
                    Err(e) => {
                        log::warn!("indexer: {}: {e}; trying again in {} s", root.path().display(), RETRY.as_secs());
                        Some(Instant::now() + RETRY)
                    }
                };
                if shutdown.is_triggered() {
                    return;
                }
            }
            if shutdown.wait_timeout(POLL) {
                return;
            }
        }
    }

    /// Walks `root` once, indexing every chunk file the index does not know.
    pub fn pass(&self, root: &Root, shutdown: &Shutdown) -> Result<Pass> {
        let started = Instant::now();
        let mut pass = Pass::default();
        let mut batch: Vec<FoundChunk> = Vec::new();
        let mut pacer = Pacer::new();
        walk(root.path(), None, &mut |found| {
            let (camera, day, files) = match found {
                Found::Skipped { rel, why } => {
                    log::debug!("indexer: {}: {why}", root.path().join(rel).display());
                    pass.skipped += 1;
                    return Ok(Flow::Continue(()));
                }
                Found::Day { camera, day, files } => (camera, day, files),
                // Rule 4: it only reads; `check --repair` and startup recovery remove these.
                Found::OrphanAudio { .. } => return Ok(Flow::Continue(())),
            };
            if self.index.count_in_dir(root.id, &format!("{camera}/{day}"))? != files.len() as u64 {
                for name in files {
                    if shutdown.is_triggered() {
                        return Ok(Flow::Break(()));
                    }
                    let rel: PathBuf = [camera, day, name.as_str()].iter().collect();
                    if self.index.has_path(root.id, &rel)? {
                        continue;
                    }
                    match look_at(root, &rel) {
                        Look::Chunk(c) => {
                            pacer.bytes += c.seal.bytes;
                            batch.push(c);
                        }
                        Look::Undecodable => pass.undecodable += 1,
                        Look::Changing => pass.deferred += 1,
                        Look::Gone => {}
                    }
                    if batch.len() >= BATCH_FILES || pacer.bytes >= MAX_READ_RATE {
                        self.commit(&mut batch, &mut pass, &mut pacer, root.id)?;
                        if pacer.pause(shutdown) {
                            return Ok(Flow::Break(()));
                        }
                    }
                }
            }
            // Listing and counting are work too.
            Ok(if pacer.pause(shutdown) { Flow::Break(()) } else { Flow::Continue(()) })
        })?;
        self.commit(&mut batch, &mut pass, &mut pacer, root.id)?;
        if pacer.poked_at.is_some() {
            (self.on_found)();
        }
        let secs = started.elapsed().as_secs_f64();
        if pass.indexed + pass.undecodable + pass.deferred > 0 {
            log::info!(
                "indexer: {}: indexed {} chunk files ({} bytes) the index did not know, in {secs:.1} s; \
                 {} undecodable and {} symlinks or special files left alone, {} still changing",
                root.path().display(),
                pass.indexed,
                pass.bytes,
                pass.undecodable,
                pass.skipped,
                pass.deferred
            );
        } else {
            log::debug!("indexer: {}: pass done in {secs:.1} s, nothing new", root.path().display());
        }
        Ok(pass)
    }

    fn commit(&self, batch: &mut Vec<FoundChunk>, pass: &mut Pass, pacer: &mut Pacer, root_id: i64) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows: Vec<(NewChunk<'_>, Seal)> = batch
            .iter()
            .map(|c| {
                let n = NewChunk {
                    camera: &c.camera,
                    root_id,
                    rel_path: &c.rel,
                    start_us: c.seal.start_us,
                    codec: c.codec,
                };
                (n, c.seal.clone())
            })
            .collect();
        let added = self.index.insert_found(&rows)?;
        pass.indexed += added as u64;
        pass.bytes += batch.iter().map(|c| c.seal.bytes).sum::<u64>();
        batch.clear();
        if pacer.poked_at.is_none_or(|t| t.elapsed() >= POKE_EVERY) {
            (self.on_found)();
            pacer.poked_at = Some(Instant::now());
        }
        Ok(())
    }
}

/// Reads one file the index does not know (rules 4 and 5).
fn look_at(root: &Root, rel: &Path) -> Look {
    let path = root.path().join(rel);
    let Some(parsed) = parse_rel_path(rel) else { return Look::Gone };
    let file = match confined::open_chunk(root.path(), rel, Access::Read) {
        Ok(f) => f,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("indexer: {}: {e}; left alone", path.display());
            }
            return Look::Gone;
        }
    };
    let stamp = |f: &std::fs::File| f.metadata().ok().map(|m| (m.len(), m.modified().ok()));
    let before = stamp(&file);
    let Some((len, Some(modified))) = before else { return Look::Gone };
    let age = SystemTime::now().duration_since(modified).unwrap_or_else(|e| e.duration());
    if age < SETTLE {
        return Look::Changing;
    }
    let mut s = match scan_reader(&file, len, None) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("indexer: reading {}: {e}; left alone", path.display());
            return Look::Gone;
        }
    };
    if stamp(&file) != before {
        return Look::Changing;
    }
    if s.frames == 0 || !s.starts_with_keyframe {
        log::info!("indexer: {}: does not start with a keyframe or holds no frame; left alone", path.display());
        return Look::Undecodable;
    }
    if let Some(why) = &s.error {
        log::info!(
            "indexer: {}: {why}; indexed up to byte {} (`edgenvr check --repair` cuts the rest)",
            path.display(),
            s.good_len
        );
    }
    s.audio_len = sibling_len(root, rel);
    Look::Chunk(FoundChunk {
        camera: parsed.camera,
        rel: rel.to_owned(),
        codec: s.codec.unwrap_or(Codec::H264),
        seal: seal_from(0, &s),
    })
}

/// Rule 1: after `work` busy time and `bytes` read, sleep at least as long as the work took,
/// and long enough to keep the read rate under [`MAX_READ_RATE`].
struct Pacer {
    since: Instant,
    bytes: u64,
    poked_at: Option<Instant>,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer { since: Instant::now(), bytes: 0, poked_at: None }
    }

    /// Sleeps as the rule says; true if `shutdown` fired meanwhile.
    fn pause(&mut self, shutdown: &Shutdown) -> bool {
        let work = self.since.elapsed();
        let for_rate = Duration::from_secs_f64(self.bytes as f64 / MAX_READ_RATE as f64);
        let nap = work.max(for_rate.saturating_sub(work));
        self.bytes = 0;
        let fired = shutdown.wait_timeout(nap);
        self.since = Instant::now();
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::format::append_record;
    use crate::config::{FreeSpace, StorageConfig};
    use crate::index::ChunkState;
    use std::sync::atomic::{AtomicU32, Ordering};

    const T0: i64 = 1_795_272_960_000_000; // 2026-11-21T14:56:00Z

    fn chunk_bytes(ts: i64, frames: i64) -> Vec<u8> {
        let mut b = Vec::new();
        for i in 0..frames {
            if i == 0 {
                append_record(&mut b, ts, &[0x67, 1]);
                append_record(&mut b, ts, &[0x68, 2]);
                append_record(&mut b, ts, &[0x65, 3]);
            } else {
                append_record(&mut b, ts + i * 100_000, &[0x41, 4]);
            }
        }
        b
    }

    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
    }

    #[test]
    fn a_pass_indexes_only_what_the_index_does_not_know() {
        let d = tempfile::tempdir().unwrap();
        let index = Arc::new(Index::open_in_memory().unwrap());
        let cfg = StorageConfig {
            path: d.path().to_owned(),
            min_free: FreeSpace::Bytes(0),
            max_bytes: None,
            events_reserve: None,
            require_mount: false,
        };
        let storage = Arc::new(Storage::open(&[cfg], &index).unwrap());
        let root = &storage.roots()[0];
        let pokes = Arc::new(AtomicU32::new(0));
        let p2 = pokes.clone();
        let ix = Indexer::new(
            index.clone(),
            storage.clone(),
            Arc::new(move || {
                p2.fetch_add(1, Ordering::Relaxed);
            }),
        );
        // An open chunk of this service (row, file still growing), three unknown files (one
        // torn, one undecodable, one just written), and a symlink to a file outside.
        let open_rel = crate::chunk::path::rel_path("cam", T0, 0);
        let n = NewChunk { camera: "cam", root_id: root.id, rel_path: &open_rel, start_us: T0, codec: Codec::H264 };
        index.rotate(None, Some(&n)).unwrap();
        let write = |rel: &Path, bytes: &[u8], old: bool| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
            if old {
                age(&p);
            }
        };
        write(&open_rel, &chunk_bytes(T0, 3), true);
        let good = crate::chunk::path::rel_path("old", T0, 0);
        write(&good, &chunk_bytes(T0, 5), true);
        let torn = crate::chunk::path::rel_path("old", T0 + 60_000_000, 0);
        let mut t = chunk_bytes(T0 + 60_000_000, 4);
        let whole = t.len() as u64;
        t.extend_from_slice(&[0, 1, 2]);
        write(&torn, &t, true);
        write(&crate::chunk::path::rel_path("old", T0 + 120_000_000, 0), &[0, 0], true);
        let fresh = crate::chunk::path::rel_path("old", T0 + 180_000_000, 0);
        write(&fresh, &chunk_bytes(T0 + 180_000_000, 2), false);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x"), chunk_bytes(T0, 2)).unwrap();
        let link = d.path().join(crate::chunk::path::rel_path("old", T0 + 240_000_000, 0));
        std::os::unix::fs::symlink(outside.path().join("x"), &link).unwrap();

        let pass = ix.pass(root, &Shutdown::new()).unwrap();
        assert_eq!(
            pass,
            Pass {
                indexed: 2,
                bytes: whole + chunk_bytes(T0, 5).len() as u64,
                undecodable: 1,
                skipped: 1,
                deferred: 1
            }
        );
        assert!(pokes.load(Ordering::Relaxed) >= 1, "the reaper was poked");
        let sealed = index.chunks_in_state(ChunkState::Sealed).unwrap();
        let torn_row = sealed.iter().find(|r| r.rel_path == torn).unwrap();
        assert_eq!((torn_row.bytes, torn_row.frames, torn_row.camera.as_str()), (whole, 4, "old"));
        assert_eq!(std::fs::metadata(d.path().join(&torn)).unwrap().len(), whole + 3, "nothing is cut");
        let open = index.chunks_in_state(ChunkState::Open).unwrap();
        assert_eq!((open.len(), open[0].frames), (1, 0), "the open chunk is not touched");

        // The second pass finds nothing new but the file that has settled meanwhile.
        age(&d.path().join(&fresh));
        let again = ix.pass(root, &Shutdown::new()).unwrap();
        assert_eq!((again.indexed, again.deferred, again.undecodable), (1, 0, 1));
        assert_eq!(ix.pass(root, &Shutdown::new()).unwrap().indexed, 0);
        assert!(!index.has_path(root.id, link.strip_prefix(d.path()).unwrap()).unwrap());
    }
}
