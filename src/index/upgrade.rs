//! Schema versions and the steps between them.
//!
//! The version is SQLite's `user_version`. Step `i` of `STEPS` upgrades version `i` to
//! `i + 1`; a new database runs every step. A database newer than this binary is refused
//! rather than written by code that does not understand it.

use crate::bail;
use crate::error::{Error, Result};
use rusqlite::Connection;

/// The upgrade steps, in order. Version 0 is an empty database.
const STEPS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("v2_records.sql"),
    include_str!("v3_events.sql"),
    include_str!("v4_archive.sql"),
    include_str!("v5_audio_bytes.sql"),
    include_str!("v6_archive_audio.sql"),
];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = STEPS.len() as i64;

/// Brings `conn` to [`CURRENT_VERSION`], each step in its own transaction.
///
/// Each step takes SQLite's write lock first (`BEGIN IMMEDIATE`) and reads the version
/// inside that transaction, so two processes opening the same new index at once (the
/// service and `edgenvr check`, say) never apply a step twice.
pub fn upgrade(conn: &mut Connection) -> Result<()> {
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::db("starting schema upgrade", e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| Error::db("reading schema version", e))?;
        if version > CURRENT_VERSION {
            bail!(Database, "index schema version {version} is newer than this edgenvr understands ({CURRENT_VERSION}); upgrade edgenvr");
        }
        if version == CURRENT_VERSION {
            return Ok(());
        }
        let step = STEPS[version as usize];
        tx.execute_batch(step)
            .map_err(|e| Error::db(format!("upgrading index schema {version} -> {}", version + 1), e))?;
        tx.pragma_update(None, "user_version", version + 1).map_err(|e| Error::db("setting schema version", e))?;
        tx.commit().map_err(|e| Error::db("committing schema upgrade", e))?;
        log::info!("index schema upgraded to version {}", version + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_reaches_current_version_and_is_idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        upgrade(&mut c).unwrap();
        upgrade(&mut c).unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, CURRENT_VERSION);
        let n: i64 = c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'chunk'", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }

    /// A version-1 database with data upgrades (through every later step, events' version 3
    /// included) to the same schema a fresh one has, and
    /// keeps its rows.
    #[test]
    fn upgraded_schema_matches_fresh_schema() {
        let schema = |c: &Connection| -> Vec<String> {
            let mut st = c.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").unwrap();
            st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
        };
        let mut fresh = Connection::open_in_memory().unwrap();
        upgrade(&mut fresh).unwrap();

        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(STEPS[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO storage_root (path) VALUES ('/r');
             INSERT INTO chunk (camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state, keyframes)
             VALUES ('c', 1, 'c/x.chunk', 1, 2, 3, 4, 'h264', 1, x'');",
        )
        .unwrap();
        upgrade(&mut old).unwrap();
        assert_eq!(schema(&old), schema(&fresh));
        let records: i64 = old.query_row("SELECT records FROM chunk", [], |r| r.get(0)).unwrap();
        assert_eq!(records, -1, "old rows are marked unknown");
        let event: i64 = old.query_row("SELECT event FROM chunk", [], |r| r.get(0)).unwrap();
        assert_eq!(event, 0, "old rows hold no event footage until an event marks them");
        let events: i64 = old.query_row("SELECT count(*) FROM event", [], |r| r.get(0)).unwrap();
        assert_eq!(events, 0);
    }

    /// Regression: the service and a second process opening the same new index at once
    /// (seen under qemu-aarch64) applied step 2 twice ("duplicate column name").
    #[test]
    fn concurrent_first_opens_upgrade_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let p = path.clone();
                std::thread::spawn(move || {
                    let mut c = Connection::open(&p).unwrap();
                    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                    upgrade(&mut c)
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().expect("every opener succeeds");
        }
        let c = Connection::open(&path).unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, CURRENT_VERSION);
    }

    #[test]
    fn refuses_newer_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", CURRENT_VERSION + 1).unwrap();
        let e = upgrade(&mut c).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }
}
