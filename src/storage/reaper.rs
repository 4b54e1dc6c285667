//! Retention: keeps every storage root above its free-space watermark and under its byte
//! budget, and removes footage older than its age limit. Footage comes in two classes
//! (continuous, and event footage: chunks the index marks as holding an event's span plus
//! its pre and post capture), each with its own age limit per camera; under pressure
//! continuous footage goes first, oldest first, and event footage only when it alone
//! breaks the limits (the rules: `docs/design/events.md`, in [`classes`]). An open chunk
//! (being written) is never touched. The age limits read the clock the reaper is given
//! ([`WallClock`]), so its tests fix the time.
//!
//! Deletion is crash-safe in three steps (see `docs/design/crash-safety.md`):
//! 1. mark the rows `deleting` (one transaction),
//! 2. unlink the files and fsync their directories,
//! 3. delete the rows (one transaction).
//!
//! A crash after 1 leaves `deleting` rows that startup finishes ([`Reaper::finish_deletions`]);
//! a crash after 2 the same. No step leaves a file the index forgot or a row whose file
//! the reaper removed without record.

pub mod classes;

pub use classes::Classes;

use crate::error::Result;
use crate::index::{Doomed, Index};
use crate::shutdown::Shutdown;
use crate::storage::confined::{self, DayDir};
use crate::storage::{statvfs, Root, Space, Storage};
use crate::time::WallClock;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the reaper runs when nobody pokes it.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Rows fetched per deletion batch.
const BATCH: usize = 64;

/// Counters for status.
#[derive(Default)]
pub struct ReaperStats {
    /// Completed runs.
    pub runs: AtomicU64,
    /// When the last run finished, µs.
    pub last_run_us: AtomicI64,
    /// Chunks deleted since start.
    pub chunks_deleted: AtomicU64,
    /// Bytes deleted since start.
    pub bytes_deleted: AtomicU64,
    /// Chunks of event footage deleted since start (age limit or pressure).
    pub event_chunks_deleted: AtomicU64,
    /// Per root id: (chunks, bytes) deleted since start.
    pub per_root: Mutex<Vec<(i64, u64, u64)>>,
    /// The last error, if the last run failed.
    pub last_error: Mutex<Option<String>>,
}

/// Wakes the reaper early (a writer saw the disk fill). Never blocks: the wake-up queue
/// holds one pending poke and further pokes are merged into it.
#[derive(Clone)]
pub struct ReaperHandle {
    tx: SyncSender<()>,
}

impl ReaperHandle {
    /// Asks for a run as soon as possible.
    pub fn poke(&self) {
        let _ = self.tx.try_send(());
    }
}

/// The retention policy and what it acts on.
pub struct Reaper {
    index: Arc<Index>,
    storage: Arc<Storage>,
    /// Age limits per camera and class.
    classes: Classes,
    /// What "now" is for the age limit and the counters.
    clock: WallClock,
    /// Counters, shared with status.
    pub stats: Arc<ReaperStats>,
}

impl Reaper {
    /// A reaper over `storage` that tells the time by `clock` (the service passes
    /// [`crate::time::now_us`]).
    pub fn new(index: Arc<Index>, storage: Arc<Storage>, max_age: Option<Duration>, clock: WallClock) -> Reaper {
        Reaper { index, storage, classes: Classes::uniform(max_age), clock, stats: Arc::default() }
    }

    /// The same reaper with per-camera retention classes (the service passes
    /// [`Classes::from_config`]).
    pub fn with_classes(mut self, classes: Classes) -> Reaper {
        self.classes = classes;
        self
    }

    /// Starts the reaper thread; it runs every [`INTERVAL`] and when poked. It stops when
    /// `shutdown` has fired and it is poked (the service pokes it after triggering), or when
    /// every handle is dropped.
    pub fn spawn(self, shutdown: Shutdown) -> std::io::Result<(ReaperHandle, std::thread::JoinHandle<()>)> {
        let (tx, rx) = sync_channel(1);
        let join = std::thread::Builder::new().name("reaper".into()).spawn(move || self.run(rx, shutdown))?;
        Ok((ReaperHandle { tx }, join))
    }

    fn run(self, rx: Receiver<()>, shutdown: Shutdown) {
        loop {
            if shutdown.is_triggered() {
                return;
            }
            if let Err(e) = self.run_once() {
                log::error!("reaper: {e}");
                *self.stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
            match rx.recv_timeout(INTERVAL) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// One pass over every root: watermark, byte budget, events' reserve, age limits.
    pub fn run_once(&self) -> Result<()> {
        for root in self.storage.roots() {
            if root.check_usable().is_err() {
                continue;
            }
            let Ok(space) = statvfs(root.path()) else {
                continue;
            };
            self.relieve(root, &space)?;
        }
        self.age_out()?;
        self.stats.runs.fetch_add(1, Relaxed);
        self.stats.last_run_us.store((self.clock)(), Relaxed);
        *self.stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Completes deletions a crash interrupted (rows left in state `deleting`).
    /// Returns the ids of the chunks whose deletion it finished.
    pub fn finish_deletions(&self) -> Result<Vec<i64>> {
        let rows = self.index.deleting()?;
        if !rows.is_empty() {
            log::info!("finishing {} interrupted chunk deletions", rows.len());
            self.unlink_and_forget(&rows)?;
        }
        Ok(rows.iter().map(|r| r.id).collect())
    }

    /// The three-step deletion of sealed chunks.
    fn delete(&self, rows: &[Doomed]) -> Result<()> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        self.index.mark_deleting(&ids)?;
        self.unlink_and_forget(rows)?;
        let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
        self.stats.chunks_deleted.fetch_add(rows.len() as u64, Relaxed);
        self.stats.bytes_deleted.fetch_add(bytes, Relaxed);
        let mut per_root = self.stats.per_root.lock().unwrap_or_else(|p| p.into_inner());
        for r in rows {
            match per_root.iter_mut().find(|e| e.0 == r.root_id) {
                Some(e) => {
                    e.1 += 1;
                    e.2 += r.bytes;
                }
                None => per_root.push((r.root_id, 1, r.bytes)),
            }
        }
        log::info!(
            "reaper: deleted {} chunks ({} bytes), oldest {}",
            rows.len(),
            bytes,
            crate::time::format_rfc3339(rows[0].start_us)
        );
        Ok(())
    }

    /// Steps 2 and 3: unlink files, fsync and prune their directories, delete the rows.
    /// Files are reached through [`confined`]: a row's path that is not a chunk path of
    /// its root, or leads through a symlink, touches nothing outside the root (the row is
    /// forgotten, the file left alone).
    fn unlink_and_forget(&self, rows: &[Doomed]) -> Result<()> {
        let mut dirs: BTreeMap<(i64, String, String), DayDir> = BTreeMap::new();
        let mut done = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(root) = self.storage.root(r.root_id) else {
                // A root no longer configured: its files are out of reach; forget the row.
                done.push(r.id);
                continue;
            };
            let rel = Path::new(&r.rel_path);
            let [camera, day, name] = match confined::split(rel) {
                Ok(parts) => parts,
                Err(e) => {
                    log::warn!("reaper: index row {}: {e}; forgetting the row, touching no file", r.id);
                    done.push(r.id);
                    continue;
                }
            };
            let key = (r.root_id, camera.to_owned(), day.to_owned());
            if !dirs.contains_key(&key) {
                match DayDir::open(root.path(), camera, day, false) {
                    Ok(d) => {
                        dirs.insert(key.clone(), d);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        done.push(r.id);
                        continue;
                    }
                    Err(e) => {
                        log::warn!("reaper: cannot open the directory of {}: {e}", root.path().join(rel).display());
                        if e.raw_os_error() == Some(libc::ELOOP) {
                            done.push(r.id); // a symlinked directory: not ours to delete from
                        }
                        continue;
                    }
                }
            }
            let dir = &dirs[&key];
            // The chunk, then its audio sibling (`docs/design/audio.md`); a crash between
            // the two leaves the row in `deleting`, and the next pass removes the sibling.
            match dir.unlink(name).or_else(not_found_ok).and_then(|()| dir.unlink_audio_of(name)) {
                Ok(()) => {}
                Err(e) => {
                    log::warn!("reaper: cannot remove {}: {e}", root.path().join(rel).display());
                    continue;
                }
            }
            done.push(r.id);
        }
        for d in dirs.into_values() {
            // An emptied day directory goes too; its removal fails harmlessly if not empty.
            let _ = d.sync_or_prune();
        }
        // A chunk with an archived copy keeps its row (archived only): docs/design/archive.md.
        self.index.forget_local(&done)
    }
}

/// A file already gone is as good as removed.
fn not_found_ok(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl Reaper {
    /// Rules 1 to 3 of [`classes`] on one root.
    fn relieve(&self, root: &Root, space: &Space) -> Result<()> {
        let min_free = root.min_free_bytes(space.total);
        let need_free = min_free.saturating_sub(space.free);
        // A damaged row cannot claim more than the file system holds.
        let indexed = self.index.bytes_on_root(root.id)?.min(space.total.saturating_sub(space.free));
        let over_budget = root.config.max_bytes.map_or(0, |max| indexed.saturating_sub(max));
        let mut excess = need_free.max(over_budget);
        let mut continuous_excess = 0;
        if let Some(reserve) = root.config.events_reserve {
            let room = (indexed + space.free).saturating_sub(min_free);
            let room = root.config.max_bytes.map_or(room, |max| room.min(max));
            let limit = room.saturating_sub(reserve.bytes_for(space.total));
            continuous_excess = self.index.class_bytes_on_root(root.id, false)?.saturating_sub(limit);
        }
        excess = excess.saturating_sub(self.delete_oldest_of_class(root, false, excess.max(continuous_excess))?);
        if excess > 0 {
            excess = excess.saturating_sub(self.delete_oldest_of_class(root, true, excess)?);
        }
        if excess > 0 {
            log::warn!(
                "reaper: storage root {} needs {excess} more bytes free but holds no finished chunk to delete",
                root.path().display()
            );
        }
        Ok(())
    }

    /// Deletes a root's oldest sealed chunks of one class until `want` bytes are gone or
    /// none is left; returns the bytes deleted.
    fn delete_oldest_of_class(&self, root: &Root, event: bool, mut want: u64) -> Result<u64> {
        let mut freed = 0;
        while want > 0 {
            let batch = self.index.oldest_sealed_of_class(root.id, event, BATCH)?;
            if batch.is_empty() {
                break;
            }
            let mut take = Vec::new();
            for r in batch {
                want = want.saturating_sub(r.bytes.max(1));
                freed += r.bytes;
                take.push(r);
                if want == 0 {
                    break;
                }
            }
            if event {
                log::warn!(
                    "reaper: storage root {} is short of space with only event footage left: deleting {} event chunks, oldest {}",
                    root.path().display(),
                    take.len(),
                    crate::time::format_rfc3339(take[0].start_us)
                );
                self.stats.event_chunks_deleted.fetch_add(take.len() as u64, Relaxed);
            }
            self.delete(&take)?;
        }
        Ok(freed)
    }

    /// Rule 4 of [`classes`]: every camera's classes past their age limits.
    fn age_out(&self) -> Result<()> {
        if !self.classes.any_limit() {
            return Ok(());
        }
        let now = (self.clock)();
        for camera in self.index.cameras_with_footage()? {
            let (continuous, event) = self.classes.limits(&camera);
            for (is_event, age) in [(false, continuous), (true, event)] {
                let Some(age) = age else { continue };
                let cutoff = now - age.as_micros() as i64;
                loop {
                    // Only chunks on roots that are present: a yanked disk's files cannot be
                    // removed, and dropping their rows would orphan them.
                    let batch: Vec<Doomed> = self
                        .index
                        .camera_sealed_of_class_ending_before(&camera, is_event, cutoff, BATCH * 4)?
                        .into_iter()
                        .filter(|r| self.storage.root(r.root_id).is_some_and(|root| root.check_usable().is_ok()))
                        .collect();
                    if batch.is_empty() {
                        break;
                    }
                    if is_event {
                        self.stats.event_chunks_deleted.fetch_add(batch.len() as u64, Relaxed);
                    }
                    self.delete(&batch)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FreeSpace, StorageConfig};
    use crate::index::{NewChunk, Seal};
    use crate::media::h26x::Codec;
    use std::path::Path;

    /// 2026-11-21T14:56:00Z: minute 0 of the fixtures.
    const T0: i64 = 1_795_272_960_000_000;
    const MINUTE: i64 = 60_000_000;

    /// A chunk file of `bytes` at minute `minute`, registered as sealed (59 s long) or,
    /// with `open`, as the chunk being written.
    fn add_chunk(ix: &Index, root: &Path, root_id: i64, minute: i64, bytes: usize, open: bool) -> i64 {
        let ts = T0 + minute * MINUTE;
        let rel = crate::chunk::path::rel_path("c", ts, 0);
        let abs = root.join(&rel);
        std::fs::create_dir_all(abs.parent().unwrap()).unwrap();
        std::fs::write(&abs, vec![0u8; bytes]).unwrap();
        let n = NewChunk { camera: "c", root_id, rel_path: &rel, start_us: ts, codec: Codec::H264 };
        if open {
            return ix.rotate(None, Some(&n)).unwrap().unwrap();
        }
        let seal = Seal { start_us: ts, end_us: ts + 59_000_000, bytes: bytes as u64, ..Default::default() };
        ix.insert_sealed(&n, &seal).unwrap()
    }

    /// An index and one root at `dir` with a byte budget.
    fn fixture(dir: &Path, max_bytes: Option<u64>) -> (Arc<Index>, Arc<Storage>, i64) {
        let ix = Arc::new(Index::open_in_memory().unwrap());
        let cfg = StorageConfig {
            path: dir.to_owned(),
            min_free: FreeSpace::Bytes(0),
            max_bytes,
            events_reserve: None,
            require_mount: false,
        };
        let storage = Arc::new(Storage::open(&[cfg], &ix).unwrap());
        let root_id = storage.roots()[0].id;
        (ix, storage, root_id)
    }

    fn exists(ix: &Index, id: i64) -> bool {
        ix.chunk(id).unwrap().is_some()
    }

    #[test]
    fn byte_budget_deletes_oldest_first_and_spares_open_chunks() {
        let d = tempfile::tempdir().unwrap();
        let (ix, storage, root_id) = fixture(d.path(), Some(2500));
        // The chunk being written is the oldest of all (a camera stuck on one file), so
        // "oldest first" would take it first if it were not spared.
        let open = add_chunk(&ix, d.path(), root_id, -1, 1000, true);
        let ids: Vec<i64> = (0..4).map(|m| add_chunk(&ix, d.path(), root_id, m, 1000, false)).collect();
        let reaper = Reaper::new(ix.clone(), storage, None, crate::time::now_us);
        reaper.run_once().unwrap();
        // 4000 sealed bytes, budget 2500: the two oldest sealed chunks go.
        assert!(!exists(&ix, ids[0]) && !exists(&ix, ids[1]));
        assert!(exists(&ix, ids[2]) && exists(&ix, ids[3]));
        assert!(!d.path().join(crate::chunk::path::rel_path("c", T0, 0)).exists());
        assert_eq!(reaper.stats.chunks_deleted.load(Relaxed), 2);
        assert!(exists(&ix, open), "the open chunk's row is spared");
        assert!(d.path().join(crate::chunk::path::rel_path("c", T0 - MINUTE, 0)).exists(), "and its file");
    }

    #[test]
    fn max_age_removes_footage_that_ended_before_the_cutoff() {
        let d = tempfile::tempdir().unwrap();
        let (ix, storage, root_id) = fixture(d.path(), None);
        let open = add_chunk(&ix, d.path(), root_id, -1, 10, true);
        let ids: Vec<i64> = (0..8).map(|m| add_chunk(&ix, d.path(), root_id, m, 10, false)).collect();
        // Now is minute 10 and footage is kept 5 minutes: the cutoff is minute 5, which
        // chunk 4 (ending at 4:59) is before and chunk 5 (starting at 5:00) is not.
        let now: WallClock = || T0 + 10 * MINUTE;
        let reaper = Reaper::new(ix.clone(), storage, Some(Duration::from_secs(5 * 60)), now);
        reaper.run_once().unwrap();
        let kept: Vec<bool> = ids.iter().map(|&id| exists(&ix, id)).collect();
        assert_eq!(kept, [false, false, false, false, false, true, true, true]);
        assert!(exists(&ix, open), "the chunk being written is never reaped, however old");
        assert_eq!(reaper.stats.last_run_us.load(Relaxed), now(), "the run is stamped by the same clock");
    }

    /// A chunk's audio sibling goes with it, also when the deletion was interrupted
    /// between the two files; another chunk's sibling stays.
    #[test]
    fn audio_siblings_are_deleted_with_their_chunks() {
        let d = tempfile::tempdir().unwrap();
        let (ix, storage, root_id) = fixture(d.path(), None);
        let ids: Vec<i64> = (0..2).map(|m| add_chunk(&ix, d.path(), root_id, m, 10, false)).collect();
        let audio = |m| d.path().join(crate::chunk::path::rel_path("c", T0 + m * MINUTE, 0).with_extension("audio"));
        std::fs::write(audio(0), b"a").unwrap();
        std::fs::write(audio(1), b"b").unwrap();
        ix.mark_deleting(&ids[..1]).unwrap();
        std::fs::remove_file(d.path().join(crate::chunk::path::rel_path("c", T0, 0))).unwrap(); // crash here
        let reaper = Reaper::new(ix.clone(), storage, None, crate::time::now_us);
        assert_eq!(reaper.finish_deletions().unwrap(), vec![ids[0]]);
        assert!(!audio(0).exists(), "the sibling of a deleted chunk is deleted");
        assert!(audio(1).exists() && exists(&ix, ids[1]));
    }

    #[test]
    fn interrupted_deletion_is_finished() {
        let d = tempfile::tempdir().unwrap();
        let (ix, storage, root_id) = fixture(d.path(), None);
        let id = add_chunk(&ix, d.path(), root_id, 0, 10, false);
        ix.mark_deleting(&[id]).unwrap(); // crash here
        let reaper = Reaper::new(ix.clone(), storage, None, crate::time::now_us);
        assert_eq!(reaper.finish_deletions().unwrap(), vec![id]);
        assert!(!exists(&ix, id));
        assert!(!d.path().join("c/20261121").exists(), "the emptied day directory is pruned");
    }
}
