//! The API's own read-only connections to the index, so a busy API never waits for (or
//! delays) the writers' mutex-guarded connection: in WAL mode readers and the writer run
//! side by side, each reader seeing the last committed state.
//!
//! Where a second connection cannot work (an index on a file system that cannot map
//! SQLite's WAL shared memory, such as a 9p share, runs with `locking_mode = EXCLUSIVE`;
//! an in-memory index in tests), opening one is tried once at start, and on failure the
//! readers fall back to the writers' connection and say so in the log.
//!
//! Cost: [`READERS`] connections with a page cache of [`CACHE_KIB`] each.

use super::{queries, ChunkRow, Index, ReadChunks};
use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Read-only connections: as many as the API's blocking threads that run queries at once
/// (`http::limits::BLOCKING_THREADS` less the health permit), beyond which a query waits
/// for a connection rather than opening another.
pub const READERS: usize = 3;

/// Page cache per reader, KiB (SQLite's default is 2 MiB per connection).
pub const CACHE_KIB: i64 = 512;

/// How long the probe at open waits for a lock before deciding that a second connection
/// cannot read (an exclusive-locking writer holds it for good).
const PROBE_TIMEOUT: Duration = Duration::from_millis(250);

/// How long a reader waits for a lock in normal use (WAL readers wait only while SQLite
/// recovers or restarts the WAL).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The readers, or the writers' connection when separate ones cannot work.
pub struct Readers {
    /// Empty when falling back to the writers' connection.
    conns: Vec<Mutex<Connection>>,
    /// Round-robin start for finding a free reader.
    next: AtomicUsize,
    /// The writers' index: the totals, and the fallback connection.
    writer: Arc<Index>,
}

impl Readers {
    /// Opens [`READERS`] read-only connections to the index at `path` (`None`: an in-memory
    /// index, which only the writers' connection can read).
    pub fn open(writer: Arc<Index>, path: Option<&Path>) -> Readers {
        let conns = match path.map(|p| (0..READERS).map(|_| open_reader(p)).collect::<Result<Vec<_>>>()) {
            Some(Ok(v)) => {
                log::info!("index: the API reads through {READERS} read-only connections");
                v
            }
            Some(Err(e)) => {
                log::warn!(
                    "index: a second connection cannot read it ({e}); the API reads through the recorder's \
                     connection (expected where SQLite's WAL shared memory cannot be mapped, e.g. a 9p share)"
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        Readers { conns: conns.into_iter().map(Mutex::new).collect(), next: AtomicUsize::new(0), writer }
    }

    /// Whether queries go through separate read-only connections.
    pub fn separate(&self) -> bool {
        !self.conns.is_empty()
    }

    /// Runs `f` on a free reader (waiting for one if all are busy), or on the writers'
    /// connection when there are no readers.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.conns.is_empty() {
            return self.writer.with_connection(f);
        }
        let start = self.next.fetch_add(1, Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Ok(c) = self.conns[(start + i) % n].try_lock() {
                return f(&c);
            }
        }
        let c = self.conns[start % n].lock().unwrap_or_else(|p| p.into_inner());
        f(&c)
    }

    /// How many of `camera`'s events overlap `[from_us, to_us]` (the recordings list).
    pub fn event_count(&self, camera: &str, from_us: i64, to_us: i64) -> Result<u64> {
        self.with(|c| super::events::event_count_in(c, camera, from_us, to_us))
    }

    /// One event by id.
    pub fn event(&self, id: i64) -> Result<Option<super::events::EventRow>> {
        self.with(|c| super::events::event_in(c, id))
    }

    /// One chunk by id.
    pub fn chunk(&self, id: i64) -> Result<Option<ChunkRow>> {
        self.with(|c| queries::chunk(c, id))
    }

    /// See [`Index::chunks_for_camera_page`].
    pub fn chunks_for_camera_page(
        &self,
        camera: &str,
        range: (i64, i64),
        after: (i64, i64),
        limit: usize,
        with_open: bool,
    ) -> Result<Vec<ChunkRow>> {
        let longest = self.writer.longest_span_us();
        self.with(|c| queries::chunks_for_camera_page(c, longest, camera, range, after, limit, with_open))
    }
}

impl ReadChunks for Readers {
    fn chunks_for_camera(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<ChunkRow>> {
        let longest = self.writer.longest_span_us();
        self.with(|c| queries::chunks_for_camera(c, longest, camera, from_us, to_us))
    }

    fn events_page(
        &self,
        f: &super::events::EventFilter,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<super::events::EventRow>> {
        self.with(|c| super::events::events_page_in(c, f, after, limit))
    }
}

impl super::timeline::ReadTimeline for Readers {
    fn recorded_spans(&self, camera: &str, from_us: i64, to_us: i64, live_end_us: i64) -> Result<Vec<(i64, i64)>> {
        self.with(|c| super::timeline::recorded_spans_in(c, camera, from_us, to_us, live_end_us))
    }

    fn event_starts(&self, camera: &str, from_us: i64, to_us: i64, limit: usize) -> Result<Vec<i64>> {
        self.with(|c| super::events::event_starts_in(c, camera, from_us, to_us, limit))
    }

    fn archived_only_spans(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<(i64, i64)>> {
        self.with(|c| super::archive::archived_only_spans_in(c, camera, from_us, to_us))
    }
}

/// Opens one read-only connection and proves it can read.
fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let c = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::db(format!("opening {} read-only", path.display()), e))?;
    c.busy_timeout(PROBE_TIMEOUT).map_err(|e| Error::db("setting busy timeout", e))?;
    c.query_row("SELECT count(*) FROM storage_root", [], |r| r.get::<_, i64>(0))
        .map_err(|e| Error::db(format!("reading {} from a second connection", path.display()), e))?;
    c.busy_timeout(BUSY_TIMEOUT).map_err(|e| Error::db("setting busy timeout", e))?;
    c.pragma_update(None, "cache_size", -CACHE_KIB).map_err(|e| Error::db("setting the reader's cache", e))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{NewChunk, Seal};
    use crate::media::h26x::Codec;
    use std::path::PathBuf;

    fn sealed(ix: &Index, root: i64, name: &str, start: i64) -> i64 {
        let p = PathBuf::from(name);
        let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
        let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
        let end = start + 59_000_000;
        ix.seal(&Seal { id, start_us: start, end_us: end, bytes: 10_000, frames: 10, records: 20, ..Seal::default() })
            .unwrap();
        id
    }

    #[test]
    fn readers_see_commits_while_the_writer_holds_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let ix = Arc::new(Index::open(&path).unwrap());
        let root = ix.root_id(Path::new("/r")).unwrap();
        let id = sealed(&ix, root, "c/20261201/c.20261201.0000.chunk", 0);
        let r = Readers::open(ix.clone(), Some(&path));
        assert!(r.separate());
        // The writers' mutex held (as by a long transaction elsewhere): readers still answer.
        ix.with_connection(|_| {
            assert_eq!(r.chunk(id).unwrap().unwrap().id, id);
            assert_eq!(r.chunks_for_camera("c", 0, 1).unwrap().len(), 1);
            Ok(())
        })
        .unwrap();
        let id2 = sealed(&ix, root, "c/20261201/c.20261201.0001.chunk", 60_000_000);
        assert_eq!(r.chunks_for_camera_page("c", (0, i64::MAX), (i64::MIN, 0), 10, false).unwrap().len(), 2);
        assert_eq!(r.chunk(id2).unwrap().unwrap().start_us, 60_000_000);
    }

    /// The timeline, PyNVR's day document and the thumbnail's keyframe lookup read through
    /// the readers: they answer while the writers' connection is held (a long write), and
    /// holding a reader does not keep the writer from committing.
    #[test]
    fn timeline_and_day_reads_do_not_touch_the_writers_connection() {
        use crate::index::timeline::ReadTimeline;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let ix = Arc::new(Index::open(&path).unwrap());
        let root = ix.root_id(Path::new("/r")).unwrap();
        let day = 1_795_219_200_000_000; // 2026-11-21T00:00:00Z
        sealed(&ix, root, "c/20261121/c.20261121.0000.chunk", day);
        let r = Readers::open(ix.clone(), Some(&path));
        assert!(r.separate());
        let utc = crate::tz::Zone::load("UTC").unwrap();
        ix.with_connection(|_| {
            // With the writers' mutex held, these would wait for ever on it.
            assert_eq!(r.recorded_spans("c", day, day + 3_600_000_000, 0).unwrap(), [(day, day + 59_000_000)]);
            assert!(r.event_starts("c", day, day + 3_600_000_000, 10).unwrap().is_empty());
            let doc = super::super::timeline::days(&r, "c", &utc, (2026, 11, 21), (2026, 11, 21), day, 0).unwrap();
            assert_eq!(doc.days[0].recorded_s, 59.0);
            let doc = crate::pynvr::day_document(&r, "20261121", &["c"], day, |_| 0).unwrap();
            assert_eq!(doc["payload"]["dates"]["20261121.0000"], serde_json::json!(["c"]));
            Ok(())
        })
        .unwrap();
        // A reader in the middle of a read transaction does not block a commit (WAL).
        r.with(|c| {
            c.execute_batch("BEGIN").unwrap();
            let n: i64 = c.query_row("SELECT count(*) FROM chunk", [], |r| r.get(0)).unwrap();
            sealed(&ix, root, "c/20261121/c.20261121.0001.chunk", day + 60_000_000);
            c.execute_batch("COMMIT").unwrap();
            assert_eq!(n, 1);
            Ok(())
        })
        .unwrap();
        assert_eq!(r.recorded_spans("c", day, day + 3_600_000_000, 0).unwrap(), [(day, day + 119_000_000)]);
    }

    /// The 9p fallback: a writer in exclusive locking mode keeps every other connection
    /// out, so the readers use the writers' connection (and the API still answers).
    #[test]
    fn an_exclusive_writer_makes_readers_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let ix = Arc::new(Index::open(&path).unwrap());
        ix.with_connection(|c| {
            c.pragma_update(None, "locking_mode", "EXCLUSIVE").unwrap();
            c.execute_batch("BEGIN IMMEDIATE; COMMIT;").unwrap();
            Ok(())
        })
        .unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let id = sealed(&ix, root, "c/20261201/c.20261201.0000.chunk", 0);
        let r = Readers::open(ix.clone(), Some(&path));
        assert!(!r.separate());
        assert_eq!(r.chunk(id).unwrap().unwrap().id, id);
        let r = Readers::open(ix.clone(), None);
        assert!(!r.separate());
        assert_eq!(r.chunks_for_camera("c", 0, 1).unwrap().len(), 1);
    }
}
