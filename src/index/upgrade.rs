//! Schema versions and the steps between them.
//!
//! The version is SQLite's `user_version`. Step `i` of `STEPS` upgrades version `i` to
//! `i + 1`; a new database runs every step. A database newer than this binary is refused
//! rather than written by code that does not understand it.

use crate::error::{Error, ErrorKind, Result};
use rusqlite::Connection;

/// The upgrade steps, in order. Version 0 is an empty database.
const STEPS: &[&str] = &[include_str!("schema.sql")];

/// The schema version this binary writes.
pub const CURRENT_VERSION: i64 = STEPS.len() as i64;

/// Brings `conn` to [`CURRENT_VERSION`], each step in its own transaction.
pub fn upgrade(conn: &mut Connection) -> Result<()> {
    let version: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| Error::db("reading schema version", e))?;
    if version > CURRENT_VERSION {
        return Err(Error::new(
            ErrorKind::Database,
            format!("index schema version {version} is newer than this edgenvr understands ({CURRENT_VERSION}); upgrade edgenvr"),
        ));
    }
    for (v, step) in STEPS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(|e| Error::db("starting schema upgrade", e))?;
        tx.execute_batch(step).map_err(|e| Error::db(format!("upgrading index schema {v} -> {}", v + 1), e))?;
        tx.pragma_update(None, "user_version", v as i64 + 1).map_err(|e| Error::db("setting schema version", e))?;
        tx.commit().map_err(|e| Error::db("committing schema upgrade", e))?;
        log::info!("index schema upgraded to version {}", v + 1);
    }
    Ok(())
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

    #[test]
    fn refuses_newer_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", CURRENT_VERSION + 1).unwrap();
        let e = upgrade(&mut c).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }
}
