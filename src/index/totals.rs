//! Running totals of the index, kept in memory so readers never sum the table: bytes and
//! oldest footage per storage root (for `/status`), and the longest span of any sealed
//! chunk (the lower time bound of the range queries in `index/queries.rs`).
//!
//! Read from every row once when the index opens, then updated by the `Index`
//! methods that insert, seal and delete rows, after their transaction commits. Another
//! process changing the index while the service runs (`edgenvr check --repair`) is seen at
//! the next start; until then `/status` may be off by what it changed.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Mutex;

/// What a storage root holds, as the index knows it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RootTotals {
    /// Bytes of every indexed chunk on the root (open, sealed, being deleted; not the
    /// archived-only ones, whose file is gone).
    pub bytes: u64,
    /// Start of the oldest footage on the root.
    pub oldest_us: Option<i64>,
}

/// The totals, shared by the writers' connection and the readers.
#[derive(Default)]
pub(crate) struct Totals {
    /// Per root id. A std mutex: held for a map update, never across I/O.
    roots: Mutex<HashMap<i64, RootTotals>>,
    /// Longest `end_us - start_us` of a sealed or archived-only chunk, µs (only grows).
    longest_span_us: AtomicI64,
}

impl Totals {
    /// Reads the totals from every row (once, at open).
    pub(crate) fn load(c: &Connection) -> Result<Totals> {
        let t = Totals::default();
        // Read leniently: a damaged value (text, an overflow) counts as nothing rather than
        // keeping the index from opening; `check` names such rows.
        let mut st = c
            .prepare(
                "SELECT root_id, total(CASE WHEN state != 3 THEN max(bytes, 0) + max(audio_bytes, 0) END),
                        min(CASE WHEN state != 3 THEN start_us END),
                        max(CASE WHEN state IN (1, 3) THEN end_us - start_us END)
                 FROM chunk GROUP BY root_id",
            )
            .map_err(|e| Error::db("reading the index totals", e))?;
        let rows = st
            .query_map([], |r| {
                let bytes = r.get::<_, f64>(1)? as u64;
                Ok((lenient(r.get_ref(0)?), bytes, lenient(r.get_ref(2)?), lenient(r.get_ref(3)?).unwrap_or(0)))
            })
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("reading the index totals", e))?;
        let mut roots = t.roots.lock().unwrap_or_else(|p| p.into_inner());
        for (root, bytes, oldest_us, span) in rows {
            roots.insert(root.unwrap_or(0), RootTotals { bytes, oldest_us });
            t.longest_span_us.fetch_max(span, Relaxed);
        }
        drop(roots);
        Ok(t)
    }

    /// A root's totals.
    pub(crate) fn root(&self, root_id: i64) -> RootTotals {
        self.roots.lock().unwrap_or_else(|p| p.into_inner()).get(&root_id).copied().unwrap_or_default()
    }

    /// The longest span of a sealed chunk, µs.
    pub(crate) fn longest_span_us(&self) -> i64 {
        self.longest_span_us.load(Relaxed)
    }

    /// A row was sealed (or inserted sealed) with this span.
    pub(crate) fn saw_span(&self, start_us: i64, end_us: i64) {
        self.longest_span_us.fetch_max(end_us.saturating_sub(start_us), Relaxed);
    }

    /// Adds `delta` bytes to a root and sets its oldest footage.
    pub(crate) fn update_root(&self, root_id: i64, delta: i64, oldest_us: Option<i64>) {
        let mut roots = self.roots.lock().unwrap_or_else(|p| p.into_inner());
        let r = roots.entry(root_id).or_default();
        r.bytes = r.bytes.saturating_add_signed(delta);
        r.oldest_us = oldest_us;
    }
}

/// An integer value, or `None` for NULL and damaged ones (a real from an overflow is
/// clamped).
fn lenient(v: rusqlite::types::ValueRef<'_>) -> Option<i64> {
    match v {
        rusqlite::types::ValueRef::Integer(i) => Some(i),
        rusqlite::types::ValueRef::Real(f) => Some(f as i64),
        _ => None,
    }
}

/// The oldest footage on a root, through the `(root_id, start_us)` index of rows with a
/// local file (archived-only rows, state 3, hold nothing here: `v4_archive.sql`).
pub(crate) fn oldest_on_root(c: &Connection, root_id: i64) -> Result<Option<i64>> {
    c.prepare_cached("SELECT min(start_us) FROM chunk WHERE root_id = ?1 AND state != 3")
        .and_then(|mut st| st.query_row([root_id], |r| Ok(lenient(r.get_ref(0)?))))
        .map_err(|e| Error::db("finding the oldest footage", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, NewChunk, Seal};
    use crate::media::h26x::Codec;
    use std::path::{Path, PathBuf};

    /// The running totals `/status` reads agree with summing the rows, after inserts,
    /// seals, found chunks and deletions, and after reopening.
    #[test]
    fn running_totals_follow_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let ix = Index::open(&path).unwrap();
        let (r1, r2) = (ix.root_id(Path::new("/a")).unwrap(), ix.root_id(Path::new("/b")).unwrap());
        let check = |ix: &Index| {
            for r in [r1, r2] {
                let t = ix.root_totals(r);
                assert_eq!((t.bytes, t.oldest_us), (ix.bytes_on_root(r).unwrap(), ix.oldest_on_root(r).unwrap()));
            }
        };
        check(&ix);
        let mut ids = Vec::new();
        for (i, root) in [r1, r1, r2, r1].into_iter().enumerate() {
            let p = PathBuf::from(format!("c/20261201/c.20261201.000{i}.chunk"));
            let start = 1_000_000 + i as i64 * 60_000_000;
            let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
            let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
            check(&ix);
            let span = if i == 2 { 300_000_000 } else { 59_000_000 };
            let s = Seal { id, start_us: start + 5, end_us: start + span, bytes: 1000 + i as u64, ..Seal::default() };
            ix.seal(&s).unwrap();
            check(&ix);
            ids.push(id);
        }
        assert_eq!(ix.longest_span_us(), 300_000_000 - 5);
        // A chunk the background indexer found, older than the rest and longer.
        let p = PathBuf::from("c/20261130/c.20261130.2359.chunk");
        let n = NewChunk { camera: "c", root_id: r2, rel_path: &p, start_us: 10, codec: Codec::H264 };
        let s = Seal { start_us: 10, end_us: 400_000_010, bytes: 77, ..Seal::default() };
        assert_eq!(ix.insert_found(&[(n.clone(), s.clone())]).unwrap(), 1);
        assert_eq!(ix.insert_found(&[(n, s)]).unwrap(), 0);
        check(&ix);
        assert_eq!(ix.longest_span_us(), 400_000_000);
        ix.delete_rows(&ids[..1]).unwrap();
        check(&ix);
        assert_eq!(ix.root_totals(r1).oldest_us, Some(61_000_005));
        drop(ix);
        let ix = Index::open(&path).unwrap();
        check(&ix);
        assert_eq!(ix.longest_span_us(), 400_000_000);
        ix.delete_rows(&ids).unwrap();
        check(&ix);
        assert_eq!(ix.root_totals(r1), RootTotals { bytes: 0, oldest_us: None });
    }
}
