//! The time-range queries the API and exports run, on whichever connection serves them
//! (the writers' one, or a reader of `readers.rs`).
//!
//! Every query has a lower bound on `start_us`, so it walks only the rows of the asked
//! range through the `(camera, start_us)` index, however much footage is older: a sealed
//! chunk overlapping `[from, to]` starts at or after `from - longest span`, where the
//! longest span of any sealed chunk is kept in memory ([`super::totals`]). The chunk being
//! written (its row's end is only set at its seal) is found through the `state` index
//! (named: without statistics SQLite would walk the camera's rows instead), and with it
//! any row in an unknown state, so that a damaged row fails the query instead of
//! vanishing from it (`docs/design/index.md`, "Validation"). Archived-only rows (state 3,
//! `docs/design/archive.md`) have an end like sealed ones and can be most of the table:
//! they go with the sealed rows through the time-bounded branch and are left out of the
//! partial index (`v4_archive.sql`), so the second branch never walks them.

use super::row::{decode, CHUNK_COLUMNS};
use super::{damaged, strict, ChunkRow};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// One chunk by id; a damaged row is an error.
pub(crate) fn chunk(c: &Connection, id: i64) -> Result<Option<ChunkRow>> {
    let r = c
        .prepare_cached(&format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE id = ?1"))
        .and_then(|mut st| st.query_row([id], decode).optional())
        .map_err(|e| Error::db("reading chunk", e))?;
    r.map(|r| r.map_err(damaged)).transpose()
}

/// A camera's chunks overlapping `[from_us, to_us]` (sealed, archived-only, and the open one), in time
/// order. `longest_us` is the longest span of any sealed chunk. A damaged row fails the
/// call.
pub(crate) fn chunks_for_camera(
    c: &Connection,
    longest_us: i64,
    camera: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<ChunkRow>> {
    rows(c, &range_sql(), params![camera, from_us, to_us, from_us.saturating_sub(longest_us)])
}

/// `?1` camera, `?2` from, `?3` to, `?4` from less the longest span.
fn range_sql() -> String {
    format!(
        "SELECT {CHUNK_COLUMNS} FROM chunk
         WHERE camera = ?1 AND state IN (1, 3) AND start_us >= ?4 AND start_us <= ?3 AND end_us >= ?2
         UNION ALL
         SELECT {CHUNK_COLUMNS} FROM chunk INDEXED BY chunk_state
         WHERE state != 1 AND state != 3 AND state != 2 AND camera = ?1 AND start_us <= ?3
         ORDER BY start_us, id"
    )
}

/// A page of a camera's chunks overlapping `[from_us, to_us]` in (start, id) order after
/// the keyset cursor `after` = (start_us, id); the open chunk only `with_open`.
pub(crate) fn chunks_for_camera_page(
    c: &Connection,
    longest_us: i64,
    camera: &str,
    (from_us, to_us): (i64, i64),
    after: (i64, i64),
    limit: usize,
    with_open: bool,
) -> Result<Vec<ChunkRow>> {
    let lower = from_us.saturating_sub(longest_us);
    rows(c, &page_sql(), params![camera, from_us, to_us, after.0, after.1, limit as i64, with_open, lower])
}

/// `?1` camera, `?2` from, `?3` to, `?4`/`?5` the cursor's start and id, `?6` limit, `?7`
/// with the open chunk, `?8` from less the longest span.
fn page_sql() -> String {
    format!(
        "SELECT {CHUNK_COLUMNS} FROM chunk
         WHERE camera = ?1 AND state IN (1, 3) AND start_us >= max(?8, ?4) AND start_us <= ?3 AND end_us >= ?2
           AND (start_us > ?4 OR (start_us = ?4 AND id > ?5))
         UNION ALL
         SELECT {CHUNK_COLUMNS} FROM chunk INDEXED BY chunk_state
         WHERE state != 1 AND state != 3 AND state != 2 AND (?7 OR state != 0) AND camera = ?1
           AND start_us <= ?3 AND (start_us > ?4 OR (start_us = ?4 AND id > ?5))
         ORDER BY start_us, id LIMIT ?6"
    )
}

fn rows(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<ChunkRow>> {
    let mut st = c.prepare_cached(sql).map_err(|e| Error::db("preparing chunk query", e))?;
    let rows = st
        .query_map(p, decode)
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| Error::db("querying chunks", e))?;
    strict(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, NewChunk, Seal};
    use crate::media::h26x::Codec;
    use std::path::{Path, PathBuf};

    /// The plan SQLite picks for `sql`, one line per step.
    fn plan(c: &Connection, sql: &str, p: impl rusqlite::Params) -> String {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let v: Vec<String> = st.query_map(p, |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect();
        v.join("\n")
    }

    /// Regression: export plans and lists read a camera's chunks with no lower time bound,
    /// so each request walked all of the camera's older footage.
    #[test]
    fn range_queries_use_the_indexes_with_both_bounds() {
        let ix = Index::open_in_memory().unwrap();
        ix.with_connection(|c| {
            for p in [
                plan(c, &range_sql(), params!["cam", 10, 20, 5]),
                plan(c, &page_sql(), params!["cam", 10, 20, 10, 0, 100, true, 5]),
            ] {
                assert!(p.contains("chunk_camera_start (camera=? AND start_us>? AND start_us<?)"), "{p}");
                assert!(p.contains("USING INDEX chunk_state"), "{p}");
                // Only the partial index of the few rows not sealed may be walked whole.
                let scans: Vec<_> = p.lines().filter(|l| l.contains("SCAN")).collect();
                assert!(scans.iter().all(|l| l.contains("USING INDEX chunk_state")), "{p}");
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_chunk_longer_than_a_minute_is_still_found() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let add = |name: &str, start: i64, end: i64| {
            let p = PathBuf::from(name);
            let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
            let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
            ix.seal(&Seal { id, start_us: start, end_us: end, bytes: 1000, frames: 1, records: 2, ..Seal::default() })
                .unwrap();
            id
        };
        // An imported chunk spanning ten minutes, then ordinary minutes.
        let long = add("c/20261201/c.20261201.0000.chunk", 0, 600_000_000);
        let short = add("c/20261201/c.20261201.0010.chunk", 600_000_001, 660_000_000);
        let found = |from, to| ix.chunks_for_camera("c", from, to).unwrap().iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(found(590_000_000, 600_000_100), vec![long, short]);
        assert_eq!(found(300_000_000, 300_000_001), vec![long]);
        assert_eq!(found(700_000_000, 800_000_000), Vec::<i64>::new());
    }

    /// Archived-only rows (state 3) are found by time like sealed ones, and only in their
    /// range: through the unbounded branch for open rows every archived row before `to`
    /// would come back (and walk the whole archive history) for any range.
    #[test]
    fn archived_only_rows_are_found_by_their_time_only() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let mut ids = Vec::new();
        for (m, start) in [0i64, 60_000_000, 120_000_000].into_iter().enumerate() {
            let p = PathBuf::from(format!("c/20261201/c.20261201.000{m}.chunk"));
            let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
            let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
            let s = Seal {
                id,
                start_us: start,
                end_us: start + 59_000_000,
                bytes: 1000,
                frames: 1,
                records: 2,
                ..Seal::default()
            };
            ix.seal(&s).unwrap();
            ids.push(id);
        }
        ix.with_connection(|c| {
            c.execute("UPDATE chunk SET state = 3 WHERE id IN (?1, ?2)", params![ids[0], ids[1]]).unwrap();
            Ok(())
        })
        .unwrap();
        let found = |from, to| ix.chunks_for_camera("c", from, to).unwrap().iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(found(130_000_000, 140_000_000), vec![ids[2]]);
        assert_eq!(found(70_000_000, 80_000_000), vec![ids[1]]);
        assert_eq!(found(0, 200_000_000), ids);
        let page = |from, to| {
            ix.with_connection(|c| {
                chunks_for_camera_page(c, ix.longest_span_us(), "c", (from, to), (i64::MIN, 0), 10, true)
            })
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
        };
        assert_eq!(page(130_000_000, 140_000_000), vec![ids[2]]);
        assert_eq!(page(0, 10_000_000), vec![ids[0]]);
    }
}
