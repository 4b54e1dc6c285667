//! The SQLite index of chunk files.
//!
//! One connection behind a `Mutex`, shared by the chunk writers, the reaper, recovery and
//! (read-only queries) the HTTP API. Writes are few and batched: a chunk writer commits one
//! transaction per chunk rotation (seal the old chunk and register the new one together);
//! the reaper one per deletion batch. WAL mode with `synchronous = NORMAL` means commits do
//! not fsync; durability against power loss comes from startup recovery, which re-derives
//! anything the index lost from the files (see `docs/design/crash-safety.md`).

pub mod keyframes;
pub mod timeline;
pub mod upgrade;

use crate::error::{Error, Result};
use crate::media::h26x::Codec;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Lifecycle state of a chunk row.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChunkState {
    /// Being written; recovered (scanned, truncated, sealed) at startup.
    Open = 0,
    /// Complete.
    Sealed = 1,
    /// The reaper decided to delete it; startup finishes the deletion.
    Deleting = 2,
}

impl ChunkState {
    fn from_i64(v: i64) -> ChunkState {
        match v {
            0 => ChunkState::Open,
            2 => ChunkState::Deleting,
            _ => ChunkState::Sealed,
        }
    }
}

/// One chunk as the index knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRow {
    /// Stable id (used by the HTTP API).
    pub id: i64,
    /// Camera id.
    pub camera: String,
    /// Storage root id.
    pub root_id: i64,
    /// Path relative to the root.
    pub rel_path: PathBuf,
    /// First timestamp, µs.
    pub start_us: i64,
    /// Last frame's timestamp, µs.
    pub end_us: i64,
    /// File length in bytes.
    pub bytes: u64,
    /// Frame count.
    pub frames: u64,
    /// Codec.
    pub codec: Codec,
    /// Lifecycle state.
    pub state: ChunkState,
    /// `(ts_us, offset)` of each keyframe.
    pub keyframes: Vec<(i64, u64)>,
    /// Records (NAL units) in the file; `None` for rows from schema version 1.
    pub records: Option<u64>,
}

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
}

/// The index: a mutex-guarded SQLite connection.
pub struct Index {
    /// The one connection. Held only for single statements or short transactions, never
    /// across file I/O, so a slow disk cannot block other cameras through the index.
    conn: Mutex<Connection>,
    /// Write transactions committed since open (flash-wear accounting for benchmarks).
    transactions: std::sync::atomic::AtomicU64,
}

const CHUNK_COLUMNS: &str =
    "id, camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state, keyframes, records";

fn row_to_chunk(r: &Row<'_>) -> rusqlite::Result<ChunkRow> {
    let start_us: i64 = r.get(4)?;
    let codec: String = r.get(8)?;
    let blob: Vec<u8> = r.get(10)?;
    Ok(ChunkRow {
        id: r.get(0)?,
        camera: r.get(1)?,
        root_id: r.get(2)?,
        rel_path: PathBuf::from(r.get::<_, String>(3)?),
        start_us,
        end_us: r.get(5)?,
        bytes: r.get::<_, i64>(6)? as u64,
        frames: r.get::<_, i64>(7)? as u64,
        codec: Codec::from_name(&codec).unwrap_or(Codec::H264),
        state: ChunkState::from_i64(r.get(9)?),
        keyframes: keyframes::decode(start_us, &blob).unwrap_or_default(),
        records: u64::try_from(r.get::<_, i64>(11)?).ok(),
    })
}

impl Index {
    /// Opens (creating if needed) the index at `path` and upgrades its schema.
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating index directory {}", dir.display()), e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::db(format!("opening index {}", path.display()), e))?;
        Index::setup(conn)
    }

    /// An in-memory index, for tests.
    pub fn open_in_memory() -> Result<Index> {
        Index::setup(Connection::open_in_memory().map_err(|e| Error::db("opening in-memory index", e))?)
    }

    fn setup(mut conn: Connection) -> Result<Index> {
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| Error::db("setting busy timeout", e))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|e| Error::db("setting index pragmas", e))?;
        upgrade::upgrade(&mut conn)?;
        Ok(Index { conn: Mutex::new(conn), transactions: Default::default() })
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
        if let Some(s) = seal {
            seal_in(&tx, s)?;
        }
        let id = match open {
            None => None,
            Some(n) => {
                tx.execute(
                    "INSERT INTO chunk (camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state, keyframes)
                     VALUES (?1, ?2, ?3, ?4, ?4, 0, 0, ?5, 0, x'')",
                    params![n.camera, n.root_id, n.rel_path.to_string_lossy(), n.start_us, n.codec.as_str()],
                )
                .map_err(|e| Error::db(format!("registering chunk {}", n.rel_path.display()), e))?;
                Some(tx.last_insert_rowid())
            }
        };
        tx.commit().map_err(|e| Error::db("committing rotation", e))?;
        self.count_tx();
        Ok(id)
    }

    /// Seals one chunk (recovery, or a writer's final close).
    pub fn seal(&self, s: &Seal) -> Result<()> {
        self.rotate(Some(s), None).map(|_| ())
    }

    /// Inserts a sealed chunk found on disk but unknown to the index (import, repair).
    pub fn insert_sealed(&self, n: &NewChunk<'_>, s: &Seal) -> Result<i64> {
        let id = self.rotate(None, Some(n))?.expect("an insert returns an id");
        self.seal(&Seal { id, ..s.clone() })?;
        Ok(id)
    }

    /// Rows in a given state, oldest first.
    pub fn chunks_in_state(&self, state: ChunkState) -> Result<Vec<ChunkRow>> {
        self.query(
            &format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE state = ?1 ORDER BY start_us"),
            params![state as i64],
        )
    }

    /// A page of a root's rows in id order: up to `limit` rows with id > `after_id`. Lets
    /// `check` walk years of footage in bounded memory.
    pub fn chunks_on_root_page(&self, root_id: i64, after_id: i64, limit: usize) -> Result<Vec<ChunkRow>> {
        self.query(
            &format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE root_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"),
            params![root_id, after_id, limit as i64],
        )
    }

    /// Up to `limit` of a root's oldest sealed chunks.
    pub fn oldest_sealed_on_root(&self, root_id: i64, limit: usize) -> Result<Vec<ChunkRow>> {
        self.query(
            &format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE root_id = ?1 AND state = 1 ORDER BY start_us LIMIT ?2"),
            params![root_id, limit as i64],
        )
    }

    /// Up to `limit` sealed chunks (any root) whose last frame is before `end_us`.
    pub fn sealed_ending_before(&self, end_us: i64, limit: usize) -> Result<Vec<ChunkRow>> {
        self.query(
            &format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE state = 1 AND end_us < ?1 ORDER BY start_us LIMIT ?2"),
            params![end_us, limit as i64],
        )
    }

    /// A camera's chunks overlapping `[from_us, to_us]`, in time order. A chunk still being
    /// written (open) counts as reaching to now: its row's end is only set at the seal.
    pub fn chunks_for_camera(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<ChunkRow>> {
        self.query(
            &format!(
                "SELECT {CHUNK_COLUMNS} FROM chunk WHERE camera = ?1 AND state != 2 AND start_us <= ?3
                 AND (end_us >= ?2 OR state = 0)
                 ORDER BY start_us"
            ),
            params![camera, from_us, to_us],
        )
    }

    /// A page of a camera's sealed chunks overlapping `[from_us, to_us]`, in (start, id)
    /// order, after the keyset cursor `after` = (start_us, id); with `with_open`, the chunk
    /// being written too (its row's end is only set at the seal, so it counts as reaching to
    /// now). Lets the API stream any number of rows in bounded memory.
    pub fn chunks_for_camera_page(
        &self,
        camera: &str,
        (from_us, to_us): (i64, i64),
        after: (i64, i64),
        limit: usize,
        with_open: bool,
    ) -> Result<Vec<ChunkRow>> {
        self.query(
            &format!(
                "SELECT {CHUNK_COLUMNS} FROM chunk WHERE camera = ?1 AND start_us <= ?3
                 AND ((state = 1 AND end_us >= ?2) OR (state = 0 AND ?7))
                 AND (start_us > ?4 OR (start_us = ?4 AND id > ?5)) ORDER BY start_us, id LIMIT ?6"
            ),
            params![camera, from_us, to_us, after.0, after.1, limit as i64, with_open],
        )
    }

    /// The start of the oldest footage on a root.
    pub fn oldest_on_root(&self, root_id: i64) -> Result<Option<i64>> {
        let c = self.lock();
        c.query_row("SELECT min(start_us) FROM chunk WHERE root_id = ?1", [root_id], |r| r.get(0))
            .map_err(|e| Error::db("finding the oldest footage", e))
    }

    /// One chunk by id.
    pub fn chunk(&self, id: i64) -> Result<Option<ChunkRow>> {
        let c = self.lock();
        c.query_row(&format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE id = ?1"), [id], row_to_chunk)
            .optional()
            .map_err(|e| Error::db("reading chunk", e))
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

    /// Bytes of footage indexed on a root (sealed and open).
    pub fn bytes_on_root(&self, root_id: i64) -> Result<u64> {
        let c = self.lock();
        c.query_row("SELECT coalesce(sum(bytes), 0) FROM chunk WHERE root_id = ?1", [root_id], |r| r.get::<_, i64>(0))
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

    /// Marks rows as being deleted (first step of crash-safe deletion).
    pub fn mark_deleting(&self, ids: &[i64]) -> Result<()> {
        self.set_many("UPDATE chunk SET state = 2 WHERE id = ?1 AND state = 1", ids)
    }

    /// Removes rows (last step of deletion, or repair of rows whose files are gone).
    pub fn delete_rows(&self, ids: &[i64]) -> Result<()> {
        self.set_many("DELETE FROM chunk WHERE id = ?1", ids)
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

    fn query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<ChunkRow>> {
        let c = self.lock();
        let mut st = c.prepare_cached(sql).map_err(|e| Error::db("preparing chunk query", e))?;
        let rows = st
            .query_map(p, row_to_chunk)
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("querying chunks", e))?;
        Ok(rows)
    }
}

fn seal_in(tx: &rusqlite::Transaction<'_>, s: &Seal) -> Result<()> {
    let n = tx
        .execute(
            "UPDATE chunk SET start_us = ?2, end_us = ?3, bytes = ?4, frames = ?5, keyframes = ?6, records = ?7, state = 1
             WHERE id = ?1",
            params![
                s.id,
                s.start_us,
                s.end_us,
                s.bytes as i64,
                s.frames as i64,
                keyframes::encode(s.start_us, &s.keyframes),
                s.records as i64
            ],
        )
        .map_err(|e| Error::db(format!("sealing chunk {}", s.id), e))?;
    if n != 1 {
        log::warn!("sealing chunk {}: no such row (deleted meanwhile?)", s.id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            bytes: 5_000,
            frames: 900,
            keyframes: vec![(1_000, 0), (2_001_000, 2_500)],
            records: 1_800,
        };
        let id2 = ix.rotate(Some(&seal), Some(&n2)).unwrap().unwrap();
        let r1 = ix.chunk(id1).unwrap().unwrap();
        assert_eq!((r1.state, r1.bytes, r1.frames, r1.end_us), (ChunkState::Sealed, 5_000, 900, 60_000_000));
        assert_eq!(r1.keyframes, seal.keyframes);
        assert_eq!(r1.records, Some(1_800));
        assert_eq!(ix.chunk(id2).unwrap().unwrap().state, ChunkState::Open);
        assert_eq!(ix.bytes_on_root(root).unwrap(), 5_000);
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
