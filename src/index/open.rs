//! Opening the index's SQLite connection on whatever file system holds it.
//!
//! The normal mode is WAL with SQLite's shared-memory wal-index (the `-shm` file, mapped
//! with `mmap(MAP_SHARED)`), which lets other processes (`edgenvr check`, the API's own
//! read-only connections) read while the service writes. Some file systems cannot map it:
//! a 9p share (seen: "disk I/O error: Error code 5386", `SQLITE_IOERR_SHMMAP`), some
//! network file systems. There the index falls back to WAL with `locking_mode = EXCLUSIVE`:
//! SQLite keeps the wal-index in this process's heap and holds the database lock for the
//! life of the connection, so the index still works, but only this one connection can use
//! it while the service runs (see `docs/design/index.md`, "File systems").

use crate::err;
use crate::error::{Error, Result};
use rusqlite::{ffi, Connection};
use std::path::Path;
use std::time::Duration;

/// How the connection shares the database with other connections.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// WAL with a shared-memory wal-index: other connections and processes can read.
    Shared,
    /// WAL without shared memory (`locking_mode = EXCLUSIVE`): this connection only.
    Exclusive,
}

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `e` says the wal-index's shared memory cannot be opened, sized, locked or
/// mapped on this file system.
fn is_shm_failure(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error().map(|f| f.extended_code),
        Some(
            ffi::SQLITE_IOERR_SHMOPEN
                | ffi::SQLITE_IOERR_SHMSIZE
                | ffi::SQLITE_IOERR_SHMLOCK
                | ffi::SQLITE_IOERR_SHMMAP
                | ffi::SQLITE_READONLY_CANTINIT
                | ffi::SQLITE_READONLY_CANTLOCK
        )
    )
}

/// Sets the pragmas of `sharing` and takes the write lock once, which needs the wal-index
/// even on a new database (and so fails where shared memory does not work).
fn configure(conn: &Connection, sharing: Sharing) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if sharing == Sharing::Exclusive {
        // Must precede the first WAL access: then SQLite never creates the -shm mapping.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    }
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
}

/// Opens the database file at `path`, falling back to [`Sharing::Exclusive`] where shared
/// memory does not work. The error of a failed open names the path and the reason.
pub fn open_file(path: &Path) -> Result<(Connection, Sharing)> {
    open_with(path, |sharing| {
        let conn = Connection::open(path)?;
        configure(&conn, sharing)?;
        Ok(conn)
    })
}

/// [`open_file`] with the connection attempt given (tests inject a file system's failure).
fn open_with(path: &Path, attempt: impl Fn(Sharing) -> rusqlite::Result<Connection>) -> Result<(Connection, Sharing)> {
    let first = match attempt(Sharing::Shared) {
        Ok(conn) => return Ok((conn, Sharing::Shared)),
        Err(e) => e,
    };
    if !is_shm_failure(&first) {
        return Err(Error::db(format!("opening index {}", path.display()), first));
    }
    log::warn!(
        "index {}: its file system cannot share SQLite's WAL memory ({first}); using exclusive locking: \
         `edgenvr check` and other readers must wait until the service stops",
        path.display()
    );
    attempt(Sharing::Exclusive).map(|c| (c, Sharing::Exclusive)).map_err(|e| {
        err!(
            Database,
            "opening index {}: its file system cannot share SQLite's WAL memory, and exclusive locking \
             failed too; put [index] path on a local file system",
            path.display()
        )
        .with_source(e)
    })
}

/// An in-memory database (tests).
pub fn open_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(|e| Error::db("opening in-memory index", e))?;
    configure(&conn, Sharing::Shared).map_err(|e| Error::db("setting index pragmas", e))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system that cannot map the wal-index (9p fails with `SQLITE_IOERR_SHMMAP`,
    /// injected here; the real 9p share is tested in the arm64 VM, tests/index_9p_vm.rs):
    /// the index opens in exclusive mode, works, and keeps other connections out.
    #[test]
    fn falls_back_to_exclusive_locking_without_shared_memory() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("index.db");
        let (conn, sharing) = open_with(&path, |sharing| {
            if sharing == Sharing::Shared {
                let e = ffi::Error { code: ffi::ErrorCode::SystemIoFailure, extended_code: ffi::SQLITE_IOERR_SHMMAP };
                return Err(rusqlite::Error::SqliteFailure(e, None));
            }
            let conn = Connection::open(&path)?;
            configure(&conn, sharing)?;
            Ok(conn)
        })
        .unwrap();
        assert_eq!(sharing, Sharing::Exclusive);
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert!(!d.path().join("index.db-shm").exists(), "no shared memory was made");
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::from_millis(50)).unwrap();
        assert!(other.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).is_err());
    }

    #[test]
    fn other_failures_do_not_fall_back() {
        let e = open_with(Path::new("/x/index.db"), |_| {
            let e = ffi::Error { code: ffi::ErrorCode::DatabaseCorrupt, extended_code: ffi::SQLITE_CORRUPT };
            Err(rusqlite::Error::SqliteFailure(e, None))
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("opening index /x/index.db"), "{e}");
    }

    #[test]
    fn a_normal_file_system_shares() {
        let d = tempfile::tempdir().unwrap();
        let (_conn, sharing) = open_file(&d.path().join("index.db")).unwrap();
        assert_eq!(sharing, Sharing::Shared);
    }

    #[test]
    fn an_unopenable_path_is_named_in_the_error() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("index.db");
        std::fs::create_dir(&path).unwrap();
        let e = open_file(&path).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}
