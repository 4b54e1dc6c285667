//! The SQLite index of chunk files.
//!
//! One connection behind a `Mutex`, shared by the chunk writers, the reaper, recovery, the
//! background indexer and (read-only queries) the HTTP API. Writes are few and batched: a
//! chunk writer commits one transaction per chunk rotation (seal the old chunk and register
//! the new one together); the reaper one per deletion batch; the background indexer one per
//! batch of found files. WAL mode with `synchronous = NORMAL` means commits do not fsync;
//! durability against power loss comes from startup recovery, which re-derives anything
//! the index lost from the files (see `docs/design/crash-safety.md`).
//!
//! - [`row`]: rows are decoded strictly; a damaged row is an error naming it, never a
//!   guess (`docs/design/index.md`, "Validation").
//! - [`open`]: the connection, with the fallback for file systems without shared memory.
//! - [`lock`]: the lock file that keeps a second service (and `check --repair`) off the
//!   chunks a running service writes.

pub mod archive;
mod deletion;
pub mod events;
pub mod keyframes;
pub mod lock;
pub mod open;
mod queries;
pub mod readers;
pub mod row;
pub mod timeline;
pub mod totals;
pub mod upgrade;

use crate::err;
use crate::error::{Error, Result};
use crate::media::h26x::Codec;
use open::Sharing;
use row::{decode, RowResult, CHUNK_COLUMNS};
pub use row::{ChunkRow, ChunkState};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use totals::{RootTotals, Totals};

const OPEN: i64 = ChunkState::Open as i64;
const SEALED: i64 = ChunkState::Sealed as i64;
const DELETING: i64 = ChunkState::Deleting as i64;
const ARCHIVED: i64 = ChunkState::Archived as i64;

/// A chunk about to be written.
#[derive(Clone, Debug)]
pub struct NewChunk<'a> {
    /// Camera id.
    pub camera: &'a str,
    /// Root id.
    pub root_id: i64,
    /// Relative path.
    pub rel_path: &'a Path,
    /// Timestamp of its first frame.
    pub start_us: i64,
    /// Codec.
    pub codec: Codec,
}

/// The final facts of a chunk, written when it is sealed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seal {
    /// Row id.
    pub id: i64,
    /// First timestamp (may be corrected by a scan).
    pub start_us: i64,
    /// Last frame's timestamp.
    pub end_us: i64,
    /// File length.
    pub bytes: u64,
    /// Frames.
    pub frames: u64,
    /// Keyframe table.
    pub keyframes: Vec<(i64, u64)>,
    /// Records (NAL units) in the file.
    pub records: u64,
    /// Length of the chunk's audio sibling (`docs/design/audio.md`), 0 without one: counted
    /// in the root's totals and byte budget with `bytes`.
    pub audio_bytes: u64,
}

/// A row's disk usage in SQL: the chunk file and its audio sibling; negative or damaged
/// sizes count as 0.
pub(crate) const USAGE_SQL: &str = "(max(bytes, 0) + max(audio_bytes, 0))";

impl Seal {
    /// The chunk's disk usage: its file and its audio sibling.
    pub fn usage(&self) -> i64 {
        (self.bytes.saturating_add(self.audio_bytes)).min(i64::MAX as u64) as i64
    }
}

/// What the reaper needs of a row it deletes: read leniently, so a damaged row cannot stop
/// retention (its path is checked again before any file is touched).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doomed {
    /// Row id.
    pub id: i64,
    /// Storage root id.
    pub root_id: i64,
    /// The stored relative path, unchecked.
    pub rel_path: String,
    /// The stored size (chunk and audio sibling), 0 when negative or not a number.
    pub bytes: u64,
    /// The stored start, 0 when not a number.
    pub start_us: i64,
}

/// The index: a mutex-guarded SQLite connection.
pub struct Index {
    /// The one connection. Held only for single statements or short transactions, never
    /// across file I/O, so a slow disk cannot block other cameras through the index.
    conn: Mutex<Connection>,
    /// Write transactions committed since open (flash-wear accounting for benchmarks).
    transactions: std::sync::atomic::AtomicU64,
    /// The database file (`None` in memory).
    path: Option<PathBuf>,
    /// Whether other connections can read while this one is open.
    sharing: Sharing,
    /// Bytes and oldest footage per root, longest chunk span: loaded at open, kept up to
    /// date by the methods that insert, seal and delete rows.
    totals: Totals,
}

/// The range query exports and thumbnails read from: implemented by the writers' [`Index`]
/// (the CLI, MQTT) and by the API's [`readers::Readers`] (see `timeline::ReadTimeline`).
pub trait ReadChunks {
    /// A camera's chunks overlapping `[from_us, to_us]`, in time order. A chunk still being
    /// written (open) counts as reaching to now: its row's end is only set at the seal. A
    /// damaged row fails the call.
    fn chunks_for_camera(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<ChunkRow>>;
    /// See [`Index::events_page`] (an export's chapters, the events list).
    fn events_page(&self, f: &events::EventFilter, after: (i64, i64), limit: usize) -> Result<Vec<events::EventRow>>;
}

/// A damaged row as the error of the one request that met it.
fn damaged(d: row::DamagedRow) -> Error {
    err!(DataLoss, "{d}; run `edgenvr check --repair`")
}

impl Index {
    /// Opens (creating if needed) the index at `path` and upgrades its schema. On a file
    /// system without shared memory (9p) it opens in exclusive mode ([`open`]).
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating index directory {}", dir.display()), e))?;
        }
        let (conn, sharing) = open::open_file(path)?;
        Index::setup(conn, Some(path.to_owned()), sharing)
    }

    /// An in-memory index, for tests.
    pub fn open_in_memory() -> Result<Index> {
        Index::setup(open::open_memory()?, None, Sharing::Exclusive)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>, sharing: Sharing) -> Result<Index> {
        upgrade::upgrade(&mut conn)?;
        let totals = Totals::load(&conn)?;
        Ok(Index { conn: Mutex::new(conn), transactions: Default::default(), path, sharing, totals })
    }

    /// Runs `f` on the writers' connection (the readers' fallback; tests).
    pub(crate) fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }

    /// Bytes and oldest footage on a root, from the running totals (no query).
    pub fn root_totals(&self, root_id: i64) -> RootTotals {
        self.totals.root(root_id)
    }

    /// The longest span of a sealed chunk, µs: the lower bound of range queries.
    pub fn longest_span_us(&self) -> i64 {
        self.totals.longest_span_us()
    }

    /// Applies `delta` bytes to a root's totals and re-reads its oldest footage (one
    /// indexed lookup), after a commit that changed its rows.
    fn refresh_root(&self, c: &Connection, root_id: i64, delta: i64) {
        match totals::oldest_on_root(c, root_id) {
            Ok(oldest) => self.totals.update_root(root_id, delta, oldest),
            Err(e) => {
                log::warn!("index: updating the totals of root {root_id}: {e}");
                let old = self.totals.root(root_id).oldest_us;
                self.totals.update_root(root_id, delta, old);
            }
        }
    }

    /// The database file, for a second (read-only) connection; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether another connection (another thread's or process's) can read the index while
    /// this one is open. False in exclusive mode (no shared memory) and in memory: then
    /// every query must go through this `Index`.
    pub fn allows_separate_readers(&self) -> bool {
        self.path.is_some() && self.sharing == Sharing::Shared
    }

    /// Write transactions committed since the index was opened.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_tx(&self) {
        self.transactions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back on
        // drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of the root at `path`, registering it on first sight.
    pub fn root_id(&self, path: &Path) -> Result<i64> {
        let c = self.lock();
        let p = path.to_string_lossy();
        c.execute("INSERT OR IGNORE INTO storage_root (path) VALUES (?1)", [&p])
            .map_err(|e| Error::db("registering storage root", e))?;
        c.query_row("SELECT id FROM storage_root WHERE path = ?1", [&p], |r| r.get(0))
            .map_err(|e| Error::db("looking up storage root", e))
    }

    /// All known roots: `(id, path)`.
    pub fn roots(&self) -> Result<Vec<(i64, PathBuf)>> {
        let c = self.lock();
        let mut st =
            c.prepare("SELECT id, path FROM storage_root ORDER BY id").map_err(|e| Error::db("listing roots", e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, PathBuf::from(r.get::<_, String>(1)?))))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("listing roots", e))?;
        Ok(rows)
    }

    /// In one transaction: seals `seal` (if any) and registers `open` as an open chunk (if
    /// any), returning the new row's id. This is the writer's only index write per chunk.
    pub fn rotate(&self, seal: Option<&Seal>, open: Option<&NewChunk<'_>>) -> Result<Option<i64>> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting rotation", e))?;
        // (root, byte change) of every root this transaction touches.
        let mut touched: Vec<(i64, i64)> = Vec::new();
        if let Some(s) = seal {
            if let Some((root, old_bytes)) = seal_in(&tx, s, None)? {
                touched.push((root, s.usage() - old_bytes));
            }
        }
        let id = match open {
            None => None,
            Some(n) => {
                tx.execute(
                    &format!(
                        "INSERT INTO chunk (camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state, keyframes)
                         VALUES (?1, ?2, ?3, ?4, ?4, 0, 0, ?5, {OPEN}, x'')"
                    ),
                    params![n.camera, n.root_id, n.rel_path.to_string_lossy(), n.start_us, n.codec.as_str()],
                )
                .map_err(|e| Error::db(format!("registering chunk {}", n.rel_path.display()), e))?;
                touched.push((n.root_id, 0));
                events::mark_chunk(&tx, tx.last_insert_rowid())?;
                Some(tx.last_insert_rowid())
            }
        };
        tx.commit().map_err(|e| Error::db("committing rotation", e))?;
        self.count_tx();
        if let Some(s) = seal {
            self.totals.saw_span(s.start_us, s.end_us);
        }
        for (root, delta) in touched {
            self.refresh_root(&c, root, delta);
        }
        Ok(id)
    }

    /// Seals one chunk (recovery, or a writer's final close).
    pub fn seal(&self, s: &Seal) -> Result<()> {
        self.rotate(Some(s), None).map(|_| ())
    }

    /// Rewrites a row from a scan of its file, camera, codec and state included (`check
    /// --repair` of a damaged row).
    pub fn rewrite(&self, camera: &str, codec: Codec, s: &Seal) -> Result<()> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting a row rewrite", e))?;
        let before = seal_in(&tx, s, Some((camera, codec)))?;
        tx.commit().map_err(|e| Error::db("committing a row rewrite", e))?;
        self.count_tx();
        self.totals.saw_span(s.start_us, s.end_us);
        if let Some((root, old_bytes)) = before {
            self.refresh_root(&c, root, s.usage() - old_bytes);
        }
        Ok(())
    }

    /// Inserts a sealed chunk found on disk but unknown to the index (tests).
    pub fn insert_sealed(&self, n: &NewChunk<'_>, s: &Seal) -> Result<i64> {
        let id = self.rotate(None, Some(n))?.ok_or_else(|| err!(Internal, "an insert gave no id"))?;
        self.seal(&Seal { id, ..s.clone() })?;
        Ok(id)
    }

    /// Inserts sealed chunks found on disk (background indexer, repair), in one
    /// transaction. A path some other process indexed meanwhile is left as it is. Returns
    /// how many rows were added.
    pub fn insert_found(&self, found: &[(NewChunk<'_>, Seal)]) -> Result<usize> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting to index found chunks", e))?;
        let mut added = 0;
        // Bytes added per root, for the totals.
        let mut grown: HashMap<i64, i64> = HashMap::new();
        {
            let mut st = tx
                .prepare_cached(&format!(
                    "INSERT INTO chunk (camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state,
                     keyframes, records, audio_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, {SEALED}, ?9, ?10, ?11)
                     ON CONFLICT (root_id, rel_path) DO NOTHING"
                ))
                .map_err(|e| Error::db("preparing to index found chunks", e))?;
            for (n, s) in found {
                let inserted = st
                    .execute(params![
                        n.camera,
                        n.root_id,
                        n.rel_path.to_string_lossy(),
                        s.start_us,
                        s.end_us,
                        s.bytes as i64,
                        s.frames as i64,
                        n.codec.as_str(),
                        keyframes::encode(s.start_us, &s.keyframes),
                        s.records as i64,
                        s.audio_bytes as i64
                    ])
                    .map_err(|e| Error::db(format!("indexing found chunk {}", n.rel_path.display()), e))?;
                if inserted > 0 {
                    events::mark_chunk(&tx, tx.last_insert_rowid())?;
                    added += inserted;
                    *grown.entry(n.root_id).or_default() += s.usage();
                    self.totals.saw_span(s.start_us, s.end_us);
                }
            }
        }
        tx.commit().map_err(|e| Error::db("committing found chunks", e))?;
        self.count_tx();
        for (root, bytes) in grown {
            self.refresh_root(&c, root, bytes);
        }
        Ok(added)
    }

    /// Rows in a given state, oldest first; a damaged row fails the call.
    pub fn chunks_in_state(&self, state: ChunkState) -> Result<Vec<ChunkRow>> {
        strict(self.rows_in_state(state)?)
    }

    /// Rows in a given state, oldest first, damaged ones included as such (recovery).
    pub fn rows_in_state(&self, state: ChunkState) -> Result<Vec<RowResult>> {
        self.query(&format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE {} ORDER BY start_us", state_is(state)), [])
    }

    /// A page of a root's rows in id order: up to `limit` rows with id > `after_id`,
    /// damaged ones included as such. Lets `check` walk years of footage in bounded memory.
    pub fn chunks_on_root_page(&self, root_id: i64, after_id: i64, limit: usize) -> Result<Vec<RowResult>> {
        self.query(
            &format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE root_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"),
            params![root_id, after_id, limit as i64],
        )
    }

    /// Up to `limit` of a root's oldest sealed chunks (read leniently: see [`Doomed`]).
    pub fn oldest_sealed_on_root(&self, root_id: i64, limit: usize) -> Result<Vec<Doomed>> {
        self.doomed(
            &format!("WHERE root_id = ?1 AND state = {SEALED} ORDER BY start_us LIMIT ?2"),
            params![root_id, limit as i64],
        )
    }

    /// Up to `limit` sealed chunks (any root) whose last frame is before `end_us`.
    pub fn sealed_ending_before(&self, end_us: i64, limit: usize) -> Result<Vec<Doomed>> {
        self.doomed(
            &format!("WHERE state = {SEALED} AND end_us < ?1 ORDER BY start_us LIMIT ?2"),
            params![end_us, limit as i64],
        )
    }

    /// Every row the reaper committed to deleting (state `deleting`).
    pub fn deleting(&self) -> Result<Vec<Doomed>> {
        self.doomed(&format!("WHERE {} ORDER BY start_us", state_is(ChunkState::Deleting)), [])
    }

    /// A camera's chunks overlapping `[from_us, to_us]`, in time order. A chunk still being
    /// written (open) counts as reaching to now: its row's end is only set at the seal. A
    /// damaged row fails the call.
    pub fn chunks_for_camera(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<ChunkRow>> {
        queries::chunks_for_camera(&self.lock(), self.longest_span_us(), camera, from_us, to_us)
    }

    /// A page of a camera's sealed chunks overlapping `[from_us, to_us]`, in (start, id)
    /// order, after the keyset cursor `after` = (start_us, id); with `with_open`, the chunk
    /// being written too (its row's end is only set at the seal, so it counts as reaching to
    /// now). Lets the API stream any number of rows in bounded memory. A damaged row fails
    /// the call.
    pub fn chunks_for_camera_page(
        &self,
        camera: &str,
        range: (i64, i64),
        after: (i64, i64),
        limit: usize,
        with_open: bool,
    ) -> Result<Vec<ChunkRow>> {
        queries::chunks_for_camera_page(&self.lock(), self.longest_span_us(), camera, range, after, limit, with_open)
    }

    /// The start of the oldest footage on a root.
    pub fn oldest_on_root(&self, root_id: i64) -> Result<Option<i64>> {
        totals::oldest_on_root(&self.lock(), root_id)
    }

    /// One chunk by id; a damaged row is an error.
    pub fn chunk(&self, id: i64) -> Result<Option<ChunkRow>> {
        queries::chunk(&self.lock(), id)
    }

    /// The newest chunk start per root: `(root_id, start_us)`; recovery looks for files the
    /// index lost (power cut before the WAL reached disk) from there on.
    pub fn newest_start_per_root(&self) -> Result<Vec<(i64, i64)>> {
        let c = self.lock();
        let mut st = c
            .prepare("SELECT root_id, max(start_us) FROM chunk GROUP BY root_id")
            .map_err(|e| Error::db("finding newest chunks", e))?;
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("finding newest chunks", e))?;
        Ok(v)
    }

    /// The last frame time recorded for a camera (any root), so a restarted source never
    /// stamps frames earlier than footage already stored.
    pub fn camera_last_end(&self, camera: &str) -> Result<Option<i64>> {
        let c = self.lock();
        c.query_row("SELECT max(end_us) FROM chunk WHERE camera = ?1", [camera], |r| r.get(0))
            .map_err(|e| Error::db("finding a camera's last frame", e))
    }

    /// Bytes of footage indexed on a root (sealed and open, audio siblings included;
    /// archived-only rows hold none). Summed as a float (`total`), so no stored value,
    /// however damaged, can overflow the sum and stop the reaper; negative sizes count as 0.
    pub fn bytes_on_root(&self, root_id: i64) -> Result<u64> {
        let sql = format!("SELECT total({USAGE_SQL}) FROM chunk WHERE root_id = ?1 AND state != {ARCHIVED}");
        let c = self.lock();
        c.query_row(&sql, [root_id], |r| r.get::<_, f64>(0))
            .map(|v| v as u64)
            .map_err(|e| Error::db("summing root usage", e))
    }

    /// Whether a row exists for `(root_id, rel_path)`.
    pub fn has_path(&self, root_id: i64, rel_path: &Path) -> Result<bool> {
        let c = self.lock();
        c.query_row(
            "SELECT 1 FROM chunk WHERE root_id = ?1 AND rel_path = ?2",
            params![root_id, rel_path.to_string_lossy()],
            |_| Ok(()),
        )
        .optional()
        .map(|o| o.is_some())
        .map_err(|e| Error::db("looking up chunk path", e))
    }

    /// How many rows of a root have a path in directory `dir` (`camera/YYYYMMDD`): one
    /// range scan of the `(root_id, rel_path)` index, so the background indexer can pass
    /// a day directory whose files are all known without a lookup per file.
    pub fn count_in_dir(&self, root_id: i64, dir: &str) -> Result<u64> {
        // Every path in `dir` sorts between "dir/" and "dir0" ('0' follows '/').
        let (lo, hi) = (format!("{dir}/"), format!("{dir}0"));
        let c = self.lock();
        c.query_row(
            "SELECT count(*) FROM chunk WHERE root_id = ?1 AND rel_path >= ?2 AND rel_path < ?3",
            params![root_id, lo, hi],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(|e| Error::db("counting a directory's chunks", e))
    }

    /// Marks rows as being deleted (first step of crash-safe deletion).
    pub fn mark_deleting(&self, ids: &[i64]) -> Result<()> {
        self.set_many(&format!("UPDATE chunk SET state = {DELETING} WHERE id = ?1 AND state = {SEALED}"), ids)
    }

    fn set_many(&self, sql: &str, ids: &[i64]) -> Result<()> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting batch", e))?;
        {
            let mut st = tx.prepare_cached(sql).map_err(|e| Error::db("preparing batch", e))?;
            for id in ids {
                st.execute([id]).map_err(|e| Error::db("updating chunk rows", e))?;
            }
        }
        tx.commit().map_err(|e| Error::db("committing batch", e))?;
        self.count_tx();
        Ok(())
    }

    fn query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<RowResult>> {
        let c = self.lock();
        let mut st = c.prepare_cached(sql).map_err(|e| Error::db("preparing chunk query", e))?;
        let rows = st
            .query_map(p, decode)
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("querying chunks", e))?;
        Ok(rows)
    }

    fn doomed(&self, filter: &str, p: impl rusqlite::Params) -> Result<Vec<Doomed>> {
        let c = self.lock();
        let mut st = c
            .prepare_cached(&format!("SELECT id, root_id, rel_path, {USAGE_SQL}, start_us FROM chunk {filter}"))
            .map_err(|e| Error::db("preparing a deletion query", e))?;
        let rows = st
            .query_map(p, |r| {
                Ok(Doomed {
                    id: r.get(0)?,
                    root_id: lenient_int(r, 1),
                    rel_path: match r.get_ref(2)? {
                        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                        _ => String::new(),
                    },
                    bytes: lenient_int(r, 3).max(0) as u64,
                    start_us: lenient_int(r, 4),
                })
            })
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("querying chunks to delete", e))?;
        Ok(rows)
    }
}

impl ReadChunks for Index {
    fn chunks_for_camera(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<ChunkRow>> {
        Index::chunks_for_camera(self, camera, from_us, to_us)
    }

    fn events_page(&self, f: &events::EventFilter, after: (i64, i64), limit: usize) -> Result<Vec<events::EventRow>> {
        Index::events_page(self, f, after, limit)
    }
}

impl<T: ReadChunks + ?Sized> ReadChunks for std::sync::Arc<T> {
    fn chunks_for_camera(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<ChunkRow>> {
        (**self).chunks_for_camera(camera, from_us, to_us)
    }

    fn events_page(&self, f: &events::EventFilter, after: (i64, i64), limit: usize) -> Result<Vec<events::EventRow>> {
        (**self).events_page(f, after, limit)
    }
}

/// An integer column read leniently (0 when damaged): for bookkeeping that must go on
/// past a damaged row (deletion, the totals).
fn lenient_int(r: &rusqlite::Row<'_>, i: usize) -> i64 {
    match r.get_ref(i) {
        Ok(ValueRef::Integer(v)) => v,
        _ => 0,
    }
}

/// The SQL condition for rows in `state`; rare states repeat the partial index's condition
/// (`v4_archive.sql`): SQLite uses a partial index only when a query states it literally.
fn state_is(state: ChunkState) -> String {
    match state {
        ChunkState::Sealed => format!("state = {SEALED}"),
        ChunkState::Archived => format!("state = {ARCHIVED}"),
        s => format!("state = {} AND state != {SEALED} AND state != {ARCHIVED}", s as i64),
    }
}

/// The rows, or a [`ErrorKind::DataLoss`] error naming the first damaged one.
fn strict(rows: Vec<RowResult>) -> Result<Vec<ChunkRow>> {
    rows.into_iter().map(|r| r.map_err(damaged)).collect()
}

/// Seals `s` (and, with `identity`, sets the camera and codec too); returns its root and
/// its usage (chunk and audio bytes) before (None if the row is gone).
fn seal_in(tx: &rusqlite::Transaction<'_>, s: &Seal, identity: Option<(&str, Codec)>) -> Result<Option<(i64, i64)>> {
    let before: Option<(i64, i64)> = tx
        .query_row(&format!("SELECT root_id, {USAGE_SQL} FROM chunk WHERE id = ?1"), [s.id], |r| {
            Ok((lenient_int(r, 0), lenient_int(r, 1).max(0)))
        })
        .optional()
        .map_err(|e| Error::db(format!("sealing chunk {}", s.id), e))?;
    let n = tx
        .execute(
            &format!(
                "UPDATE chunk SET start_us = ?2, end_us = ?3, bytes = ?4, frames = ?5, keyframes = ?6, records = ?7,
                 state = {SEALED}, codec = coalesce(?8, codec), camera = coalesce(?9, camera), audio_bytes = ?10
                 WHERE id = ?1"
            ),
            params![
                s.id,
                s.start_us,
                s.end_us,
                s.bytes as i64,
                s.frames as i64,
                keyframes::encode(s.start_us, &s.keyframes),
                s.records as i64,
                identity.map(|i| i.1.as_str()),
                identity.map(|i| i.0),
                s.audio_bytes as i64
            ],
        )
        .map_err(|e| Error::db(format!("sealing chunk {}", s.id), e))?;
    if n != 1 {
        log::warn!("sealing chunk {}: no such row (deleted meanwhile?)", s.id);
    }
    events::mark_chunk(tx, s.id)?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn rotate_seal_and_delete_life_cycle() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        assert_eq!(ix.root_id(Path::new("/r")).unwrap(), root);
        let p1 = PathBuf::from("c/20261121/c.20261121.1456.chunk");
        let n1 = NewChunk { camera: "c", root_id: root, rel_path: &p1, start_us: 1_000, codec: Codec::H264 };
        let id1 = ix.rotate(None, Some(&n1)).unwrap().unwrap();
        assert_eq!(ix.chunks_in_state(ChunkState::Open).unwrap().len(), 1);

        let p2 = PathBuf::from("c/20261121/c.20261121.1457.chunk");
        let n2 = NewChunk { rel_path: &p2, start_us: 61_000_000, ..n1.clone() };
        let seal = Seal {
            id: id1,
            start_us: 1_000,
            end_us: 60_000_000,
            bytes: 50_000,
            frames: 900,
            keyframes: vec![(1_000, 0), (2_001_000, 2_500)],
            records: 1_800,
            audio_bytes: 4_000,
        };
        let id2 = ix.rotate(Some(&seal), Some(&n2)).unwrap().unwrap();
        let r1 = ix.chunk(id1).unwrap().unwrap();
        assert_eq!((r1.state, r1.bytes, r1.frames, r1.end_us), (ChunkState::Sealed, 50_000, 900, 60_000_000));
        assert_eq!(r1.keyframes, seal.keyframes);
        assert_eq!(r1.records, Some(1_800));
        assert_eq!(ix.chunk(id2).unwrap().unwrap().state, ChunkState::Open);
        // The audio sibling counts in the root's usage (byte budget), beside the chunk.
        assert_eq!(ix.bytes_on_root(root).unwrap(), 54_000);
        assert_eq!(ix.root_totals(root).bytes, 54_000);
        assert_eq!(ix.oldest_sealed_on_root(root, 10).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![id1]);
        assert_eq!(ix.chunks_for_camera("c", 0, 2_000).unwrap().len(), 1);
        assert!(ix.has_path(root, &p1).unwrap());

        ix.mark_deleting(&[id1, id2]).unwrap();
        // Only sealed rows can be marked: the open chunk is never deleted.
        assert_eq!(
            ix.chunks_in_state(ChunkState::Deleting).unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![id1]
        );
        ix.delete_rows(&[id1]).unwrap();
        assert!(ix.chunk(id1).unwrap().is_none());
        assert_eq!(ix.root_totals(root).bytes, 0, "deleting frees the chunk and its audio");
    }

    /// Issue 12 item 5: a damaged value is an error naming the row, never a guess (an
    /// unknown state was read as sealed, an unknown codec as H.264, a bad keyframe table
    /// as an empty one).
    #[test]
    fn damaged_rows_are_errors_not_guesses() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let p = PathBuf::from("c/20261121/c.20261121.1456.chunk");
        let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: 1_000, codec: Codec::H264 };
        let seal = Seal {
            start_us: 1_000,
            end_us: 9_000,
            bytes: 5_000,
            frames: 90,
            keyframes: vec![(1_000, 0), (5_000, 2_500)],
            records: 180,
            ..Default::default()
        };
        let id = ix.insert_sealed(&n, &seal).unwrap();
        let many_keyframes = keyframes::encode(1_000, &(0..100).map(|i| (1_000 + i, i as u64)).collect::<Vec<_>>());
        for (set, why) in [
            ("state = 7", "unknown state 7"),
            ("codec = 'vp9'", "unknown codec"),
            ("keyframes = x'80'", "keyframe table is malformed"),
            ("frames = -1", "negative frames"),
            ("frames = 100000", "frames in 180 records"),
            ("bytes = 'x'", "bytes is not an integer"),
            ("rel_path = '../../etc/c.20261121.1456.chunk'", "is not CAMERA/"),
            ("rel_path = 'd/20261121/d.20261121.1456.chunk'", "is not camera"),
        ] {
            ix.lock().execute_batch(&format!("SAVEPOINT s; UPDATE chunk SET {set} WHERE id = {id};")).unwrap();
            let e = ix.chunk(id).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DataLoss, "{set}");
            assert!(e.to_string().contains(why) && e.to_string().contains("check --repair"), "{set}: {e}");
            assert!(ix.chunks_for_camera("c", 0, i64::MAX).is_err(), "{set}");
            let lenient = ix.chunks_on_root_page(root, 0, 10).unwrap();
            assert!(matches!(&lenient[..], [Err(d)] if d.id == id && d.why.contains(why)), "{set}: {lenient:?}");
            // The reaper still sees it.
            if !set.starts_with("state") {
                assert_eq!(ix.oldest_sealed_on_root(root, 10).unwrap().len(), 1, "{set}");
            }
            ix.lock().execute_batch("ROLLBACK TO s; RELEASE s;").unwrap();
        }
        ix.lock().execute(&format!("UPDATE chunk SET keyframes = ?1 WHERE id = {id}"), [many_keyframes]).unwrap();
        assert!(ix.chunk(id).unwrap_err().to_string().contains("100 keyframes but 90 frames"));
    }

    /// A damaged size can neither overflow the reaper's sum nor go negative.
    #[test]
    fn root_usage_survives_absurd_sizes() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        for (i, bytes) in [i64::MAX, i64::MAX, -5].into_iter().enumerate() {
            let p = PathBuf::from(format!("c/20261121/c.20261121.145{i}.chunk"));
            let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: 0, codec: Codec::H264 };
            let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
            ix.lock().execute(&format!("UPDATE chunk SET bytes = ?1 WHERE id = {id}"), [bytes]).unwrap();
        }
        assert_eq!(ix.bytes_on_root(root).unwrap(), u64::MAX, "saturates instead of failing");
    }

    /// Recovery's queries use the partial index on `state` (SQLite needs its condition
    /// spelled literally in the query).
    #[test]
    fn state_queries_use_the_partial_index() {
        let ix = Index::open_in_memory().unwrap();
        let plan: String = ix
            .lock()
            .query_row(
                &format!(
                    "EXPLAIN QUERY PLAN SELECT {CHUNK_COLUMNS} FROM chunk WHERE {} ORDER BY start_us",
                    state_is(ChunkState::Open)
                ),
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("chunk_state"), "{plan}");
    }

    #[test]
    fn found_chunks_are_inserted_once() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let p = PathBuf::from("c/20261121/c.20261121.1456.chunk");
        let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: 7, codec: Codec::H265 };
        let s = Seal {
            start_us: 7,
            end_us: 9,
            bytes: 100,
            frames: 2,
            keyframes: vec![(7, 0)],
            records: 4,
            id: 0,
            audio_bytes: 0,
        };
        assert_eq!(ix.insert_found(&[(n.clone(), s.clone())]).unwrap(), 1);
        assert_eq!(ix.insert_found(&[(n, s)]).unwrap(), 0, "a concurrent finder's insert is kept");
        let r = &ix.chunks_in_state(ChunkState::Sealed).unwrap()[0];
        assert_eq!((r.codec, r.frames, r.records, &r.keyframes[..]), (Codec::H265, 2, Some(4), &[(7, 0)][..]));
        assert_eq!(ix.count_in_dir(root, "c/20261121").unwrap(), 1);
        assert_eq!(ix.count_in_dir(root, "c/2026112").unwrap(), 0);
    }

    #[test]
    fn duplicate_path_is_refused() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let p = PathBuf::from("c/20261121/c.20261121.1456.chunk");
        let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: 0, codec: Codec::H264 };
        let first = ix.rotate(None, Some(&n)).unwrap().unwrap();
        // Refused by the (root_id, rel_path) constraint, not by any other failure, and the
        // transaction leaves the first row alone.
        let e = ix.rotate(None, Some(&n)).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Database);
        let s = e.to_string();
        assert!(s.starts_with("registering chunk c/20261121/c.20261121.1456.chunk: "), "{s}");
        assert!(s.contains("UNIQUE constraint failed: chunk.root_id, chunk.rel_path"), "{s}");
        let rows = ix.chunks_in_state(ChunkState::Open).unwrap();
        assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), vec![first]);
    }
}
