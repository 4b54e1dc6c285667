//! Events in the index, and the marks they leave on chunks (`docs/design/events.md`).
//!
//! An event covers `[start - pre, end + post]` of one camera's time (to "now and on" while it
//! is open). Every chunk of that camera overlapping the window carries `chunk.event = 1`, so
//! the reaper and the archive find event footage from the chunk table alone. The marks are
//! kept right by these rules, each applied inside the transaction that changes the rows:
//!
//! 1. An event inserted (open, or finished with past times) marks the chunks its window
//!    overlaps; a chunk still being written counts as reaching to now.
//! 2. A chunk registered (the writer's rotation) or sealed is marked when some event's window
//!    overlaps it, so chunks begun during an open event or its post capture are marked too.
//! 3. An event ended marks its final window again and clears the marks of chunks after that
//!    window that no other event covers (an end given in the past shortens the window).
//!
//! Marks only change in these transactions, under the index lock, so a reader never sees an
//! event without its marks.

use super::Index;
use crate::error::{Error, Result};
use crate::{bail, err};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Longest pre or post capture, µs (10 minutes). The chunk-marking query relies on it to
/// look only at events that ended recently.
pub const MAX_CAPTURE_US: i64 = 600_000_000;

/// Longest span of an event, µs (24 hours): a finished event may not be longer, and open
/// ones are closed by `max_duration` (at most this) before. Lets the list's time filter
/// look back a bounded distance.
pub const MAX_SPAN_US: i64 = 86_400_000_000;

/// One event as the index knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Stable id (the API's `{event}`).
    pub id: i64,
    /// Camera id.
    pub camera: String,
    /// What happened.
    pub label: String,
    /// Who made it: `api`, `cli`, `mqtt` or `camera`.
    pub source: String,
    /// Start, µs.
    pub start_us: i64,
    /// End, µs; `None` while open.
    pub end_us: Option<i64>,
    /// Footage kept before the start, µs.
    pub pre_us: i64,
    /// Footage kept after the end, µs.
    pub post_us: i64,
    /// Optional free text.
    pub note: Option<String>,
}

impl EventRow {
    /// The footage this event keeps: `[start - pre, end + post]`, or to `now + post` while it
    /// is open.
    pub fn window(&self, now_us: i64) -> (i64, i64) {
        (self.start_us - self.pre_us, self.end_us.unwrap_or(now_us.max(self.start_us)) + self.post_us)
    }
}

/// An event to insert (already checked by the events room: camera, label, times).
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    /// Camera id.
    pub camera: &'a str,
    /// What happened.
    pub label: &'a str,
    /// Who made it.
    pub source: &'a str,
    /// Start, µs.
    pub start_us: i64,
    /// End, µs, for an event that is already over.
    pub end_us: Option<i64>,
    /// Pre capture, µs.
    pub pre_us: i64,
    /// Post capture, µs.
    pub post_us: i64,
    /// Optional free text.
    pub note: Option<&'a str>,
}

/// Which events a list shows.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    /// Only this camera's.
    pub camera: Option<String>,
    /// Only those overlapping `[from, to]`, µs.
    pub from_us: i64,
    /// See `from_us`.
    pub to_us: i64,
    /// Only this label.
    pub label: Option<String>,
}

const EVENT_COLUMNS: &str = "id, camera, label, source, start_us, end_us, pre_us, post_us, note";

fn row_to_event(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        camera: r.get(1)?,
        label: r.get(2)?,
        source: r.get(3)?,
        start_us: r.get(4)?,
        end_us: r.get(5)?,
        pre_us: r.get(6)?,
        post_us: r.get(7)?,
        note: r.get(8)?,
    })
}

/// The condition "some event's window overlaps the chunk row `chunk`" (rule 2). A chunk
/// being written (state 0) reaches to now and on; only events still open or that ended less
/// than [`MAX_CAPTURE_US`] before the chunk's start can reach it from behind. Two lookups
/// on the `event_camera_end` index (open: `end_us IS NULL`; recently ended: a range), so
/// the cost does not grow with the camera's past events (measured: 17 ms per chunk with
/// 100 000 events as one `OR`ed condition, 0.01 ms as two).
const COVERED: &str = "(EXISTS (SELECT 1 FROM event e WHERE e.camera = chunk.camera AND e.end_us IS NULL
     AND e.start_us - e.pre_us <= (CASE WHEN chunk.state = 0 THEN 9223372036854775807 ELSE chunk.end_us END))
  OR EXISTS (SELECT 1 FROM event e WHERE e.camera = chunk.camera AND e.end_us >= chunk.start_us - 600000000
     AND e.end_us + e.post_us >= chunk.start_us
     AND e.start_us - e.pre_us <= (CASE WHEN chunk.state = 0 THEN 9223372036854775807 ELSE chunk.end_us END)))";

/// Longest span of a chunk the marking looks back for, µs: chunks are one UTC minute
/// (the writer rotates at every minute), so a chunk overlapping a window starts at most
/// this long before it. Keeps the marking an index range instead of the camera's history.
pub(super) const MAX_CHUNK_SPAN_US: i64 = 600_000_000;

/// Rule 2 for one chunk row, inside the caller's transaction (rotation and seal).
pub(super) fn mark_chunk(tx: &rusqlite::Transaction<'_>, chunk_id: i64) -> Result<()> {
    tx.prepare_cached(&format!("UPDATE chunk SET event = 1 WHERE id = ?1 AND event = 0 AND {COVERED}"))
        .and_then(|mut st| st.execute([chunk_id]))
        .map_err(|e| Error::db("marking event footage", e))?;
    Ok(())
}

/// Rule 1 (and the first half of rule 3): marks a camera's chunks overlapping `[lo, hi]`.
fn mark_window(tx: &rusqlite::Transaction<'_>, camera: &str, lo: i64, hi: i64) -> Result<usize> {
    tx.execute(
        "UPDATE chunk SET event = 1 WHERE camera = ?1 AND state != 2 AND event = 0
         AND start_us <= ?3 AND start_us >= ?4 AND (end_us >= ?2 OR state = 0)",
        params![camera, lo, hi, lo.saturating_sub(MAX_CHUNK_SPAN_US)],
    )
    .map_err(|e| Error::db("marking event footage", e))
}

impl Index {
    /// Inserts an event and marks its footage (rule 1), in one transaction. Returns its id.
    pub fn insert_event(&self, e: &NewEvent<'_>) -> Result<i64> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|er| Error::db("starting event insert", er))?;
        tx.execute(
            &format!("INSERT INTO event ({}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", EVENT_COLUMNS),
            params![e.camera, e.label, e.source, e.start_us, e.end_us, e.pre_us, e.post_us, e.note],
        )
        .map_err(|er| Error::db("inserting event", er))?;
        let id = tx.last_insert_rowid();
        let hi = e.end_us.map_or(i64::MAX, |end| end + e.post_us);
        mark_window(&tx, e.camera, e.start_us - e.pre_us, hi)?;
        tx.commit().map_err(|er| Error::db("committing event", er))?;
        self.count_tx();
        Ok(id)
    }

    /// Ends open event `id` at `end_us` (rule 3) and returns it as ended. `NotFound` when
    /// there is no such event; `InvalidArgument` when it has already ended or `end_us` is
    /// before its start.
    pub fn end_event(&self, id: i64, end_us: i64) -> Result<EventRow> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting event end", e))?;
        let Some(mut ev) = tx
            .query_row(&format!("SELECT {EVENT_COLUMNS} FROM event WHERE id = ?1"), [id], row_to_event)
            .optional()
            .map_err(|e| Error::db("reading event", e))?
        else {
            bail!(NotFound, "no event {id}");
        };
        if ev.end_us.is_some() {
            bail!(InvalidArgument, "event {id} has already ended");
        }
        if end_us < ev.start_us {
            bail!(InvalidArgument, "end: is before the event's start");
        }
        tx.execute("UPDATE event SET end_us = ?2 WHERE id = ?1", params![id, end_us])
            .map_err(|e| Error::db("ending event", e))?;
        let hi = end_us + ev.post_us;
        mark_window(&tx, &ev.camera, ev.start_us - ev.pre_us, hi)?;
        tx.execute(
            &format!("UPDATE chunk SET event = 0 WHERE camera = ?1 AND event = 1 AND start_us > ?2 AND NOT {COVERED}"),
            params![ev.camera, hi],
        )
        .map_err(|e| Error::db("clearing event marks", e))?;
        tx.commit().map_err(|e| Error::db("committing event end", e))?;
        self.count_tx();
        ev.end_us = Some(end_us);
        Ok(ev)
    }

    /// One event by id.
    pub fn event(&self, id: i64) -> Result<Option<EventRow>> {
        event_in(&self.lock(), id)
    }

    /// Every open event, oldest first (the service's state at startup, `max_duration`).
    pub fn open_events(&self) -> Result<Vec<EventRow>> {
        events_where(&self.lock(), "WHERE end_us IS NULL ORDER BY start_us, id LIMIT 10000", [])
    }

    /// A page of events matching `f`, in (start, id) order after the keyset cursor `after`.
    /// An event overlaps `[from, to]` when it starts by `to` and ends (or is still open) at
    /// or after `from`; events are at most [`MAX_SPAN_US`] long, so the scan starts there.
    pub fn events_page(&self, f: &EventFilter, after: (i64, i64), limit: usize) -> Result<Vec<EventRow>> {
        events_page_in(&self.lock(), f, after, limit)
    }

    /// Whether chunk `id` holds event footage (`None` when there is no such chunk): the
    /// archive's question.
    pub fn chunk_holds_event(&self, id: i64) -> Result<Option<bool>> {
        let c = self.lock();
        c.query_row("SELECT event FROM chunk WHERE id = ?1", [id], |r| r.get::<_, i64>(0))
            .optional()
            .map(|o| o.map(|v| v != 0))
            .map_err(|e| Error::db("reading a chunk's event mark", e))
    }

    /// Up to `limit` sealed chunks holding event footage with ids after `after_id`, in id
    /// order: the archive's `send = "events"` walks them with a cursor.
    pub fn event_chunks_after(&self, after_id: i64, limit: usize) -> Result<Vec<super::ChunkRow>> {
        let rows = self.query(
            &format!(
                "SELECT {} FROM chunk WHERE id > ?1 AND event = 1 AND state = 1 ORDER BY id LIMIT ?2",
                super::CHUNK_COLUMNS
            ),
            params![after_id, limit as i64],
        )?;
        rows.into_iter().map(|r| r.map_err(super::damaged)).collect()
    }

    /// Up to `limit` of a root's oldest sealed chunks of one class (event footage or
    /// not): the reaper under pressure (`docs/design/events.md`).
    pub fn oldest_sealed_of_class(&self, root_id: i64, event: bool, limit: usize) -> Result<Vec<super::Doomed>> {
        self.doomed(
            "WHERE root_id = ?1 AND event = ?2 AND state = 1 ORDER BY start_us LIMIT ?3",
            params![root_id, event as i64, limit as i64],
        )
    }

    /// Up to `limit` of a camera's sealed chunks of one class whose last frame is before
    /// `end_us`: the reaper's age limits.
    pub fn camera_sealed_of_class_ending_before(
        &self,
        camera: &str,
        event: bool,
        end_us: i64,
        limit: usize,
    ) -> Result<Vec<super::Doomed>> {
        self.doomed(
            "WHERE camera = ?1 AND event = ?2 AND state = 1 AND end_us < ?3 AND start_us < ?3
             ORDER BY start_us LIMIT ?4",
            params![camera, event as i64, end_us, limit as i64],
        )
    }

    /// Bytes of one class of footage on a root (sealed and open, audio siblings included).
    pub fn class_bytes_on_root(&self, root_id: i64, event: bool) -> Result<u64> {
        let c = self.lock();
        c.query_row(
            &format!("SELECT coalesce(sum({}), 0) FROM chunk WHERE root_id = ?1 AND event = ?2", super::USAGE_SQL),
            params![root_id, event as i64],
            |r| r.get::<_, i64>(0),
        )
        .map(|v| v.max(0) as u64)
        .map_err(|e| Error::db("summing a root's event footage", e))
    }

    /// Every camera id with footage in the index (configured or not).
    pub fn cameras_with_footage(&self) -> Result<Vec<String>> {
        let c = self.lock();
        let mut st = c
            .prepare_cached("SELECT DISTINCT camera FROM chunk ORDER BY camera")
            .map_err(|e| Error::db("listing cameras with footage", e))?;
        let v = st
            .query_map([], |r| r.get(0))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| Error::db("listing cameras with footage", e))?;
        Ok(v)
    }

    /// The start times of a camera's events starting in `[from_us, to_us)`, in order, at
    /// most `limit` (the timeline's per-hour counts).
    pub fn event_starts(&self, camera: &str, from_us: i64, to_us: i64, limit: usize) -> Result<Vec<i64>> {
        event_starts_in(&self.lock(), camera, from_us, to_us, limit)
    }
}

/// [`Index::event_starts`] on connection `c` (the writers' or one of the API's readers).
pub(super) fn event_starts_in(
    c: &Connection,
    camera: &str,
    from_us: i64,
    to_us: i64,
    limit: usize,
) -> Result<Vec<i64>> {
    let mut st = c
        .prepare_cached(
            "SELECT start_us FROM event WHERE camera = ?1 AND start_us >= ?2 AND start_us < ?3
             ORDER BY start_us LIMIT ?4",
        )
        .map_err(|e| Error::db("preparing the event count", e))?;
    let v = st
        .query_map(params![camera, from_us, to_us, limit as i64], |r| r.get(0))
        .and_then(|it| it.collect::<rusqlite::Result<Vec<i64>>>())
        .map_err(|e| Error::db("counting events", e))?;
    Ok(v)
}

/// Events matching `clause` (a `WHERE ... ORDER ... LIMIT`), on connection `c` (the
/// writers' or one of the API's readers).
fn events_where(c: &Connection, clause: &str, p: impl rusqlite::Params) -> Result<Vec<EventRow>> {
    let mut st = c
        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM event {clause}"))
        .map_err(|e| Error::db("preparing event query", e))?;
    let rows = st
        .query_map(p, row_to_event)
        .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| Error::db("querying events", e))?;
    Ok(rows)
}

/// One event by id, on connection `c`.
pub(super) fn event_in(c: &Connection, id: i64) -> Result<Option<EventRow>> {
    c.query_row(&format!("SELECT {EVENT_COLUMNS} FROM event WHERE id = ?1"), [id], row_to_event)
        .optional()
        .map_err(|e| Error::db("reading event", e))
}

/// How many of `camera`'s events overlap `[from_us, to_us]` (events are at most
/// [`MAX_SPAN_US`] long, so the scan is an index range), on connection `c`.
pub(super) fn event_count_in(c: &Connection, camera: &str, from_us: i64, to_us: i64) -> Result<u64> {
    c.prepare_cached(
        "SELECT count(*) FROM event WHERE camera = ?1 AND start_us <= ?3 AND start_us >= ?2 - 86400000000
         AND (end_us IS NULL OR end_us >= ?2)",
    )
    .and_then(|mut st| st.query_row(params![camera, from_us, to_us], |r| r.get::<_, i64>(0)))
    .map(|n| n.max(0) as u64)
    .map_err(|e| Error::db("counting events", e))
}

/// See [`Index::events_page`], on connection `c`.
pub(super) fn events_page_in(
    c: &Connection,
    f: &EventFilter,
    after: (i64, i64),
    limit: usize,
) -> Result<Vec<EventRow>> {
    events_where(
        c,
        "WHERE start_us <= ?2 AND start_us >= ?1 - 86400000000 AND (end_us IS NULL OR end_us >= ?1)
         AND (?3 IS NULL OR camera = ?3) AND (?4 IS NULL OR label = ?4)
         AND (start_us > ?5 OR (start_us = ?5 AND id > ?6)) ORDER BY start_us, id LIMIT ?7",
        params![f.from_us, f.to_us, f.camera, f.label, after.0, after.1, limit as i64],
    )
}

/// An event id as the API and CLI spell it (a positive decimal number).
pub fn parse_event_id(s: &str) -> Result<i64> {
    s.parse::<i64>().ok().filter(|&v| v > 0).ok_or_else(|| err!(NotFound, "no event {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{NewChunk, Seal};
    use crate::media::h26x::Codec;
    use std::path::Path;

    const S: i64 = 1_000_000;
    const M: i64 = 60 * S;

    /// A camera "c" chunk at minute `m` (0..59 s), sealed unless `open`.
    fn chunk(ix: &Index, m: i64, open: bool) -> i64 {
        let root = ix.root_id(Path::new("/r")).unwrap();
        let p = crate::chunk::path::rel_path("c", m * M, 0);
        let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: m * M, codec: Codec::H264 };
        if open {
            return ix.rotate(None, Some(&n)).unwrap().unwrap();
        }
        ix.insert_sealed(&n, &Seal { start_us: m * M, end_us: m * M + 59 * S, bytes: 1, ..Default::default() }).unwrap()
    }

    fn marked(ix: &Index, id: i64) -> bool {
        ix.chunk_holds_event(id).unwrap().unwrap()
    }

    fn ev(start_us: i64, end_us: Option<i64>) -> NewEvent<'static> {
        NewEvent {
            camera: "c",
            label: "motion",
            source: "api",
            start_us,
            end_us,
            pre_us: 5 * S,
            post_us: 15 * S,
            note: None,
        }
    }

    /// Rule 1: a finished event with past times marks exactly the chunks its window (with
    /// pre and post) overlaps.
    #[test]
    fn finished_event_after_the_fact_marks_its_window() {
        let ix = Index::open_in_memory().unwrap();
        let ids: Vec<i64> = (0..6).map(|m| chunk(&ix, m, false)).collect();
        // 2:02..3:50: pre reaches 1:57 (chunk 1 ends 1:59), post 4:05 (chunk 4 starts 4:00).
        ix.insert_event(&ev(2 * M + 2 * S, Some(3 * M + 50 * S))).unwrap();
        let m: Vec<bool> = ids.iter().map(|&i| marked(&ix, i)).collect();
        assert_eq!(m, [false, true, true, true, true, false]);
    }

    /// Rules 1 and 2: an open event marks the chunk being written and every chunk begun
    /// while it is open or in its post capture, including chunks sealed meanwhile; ending it
    /// stops the marking after the post capture.
    #[test]
    fn open_event_marks_chunks_begun_and_sealed_while_open() {
        let ix = Index::open_in_memory().unwrap();
        let before = chunk(&ix, 0, false);
        let writing = chunk(&ix, 1, true);
        let id = ix.insert_event(&ev(M + 30 * S, None)).unwrap();
        assert!(!marked(&ix, before), "0:59 is before the 5 s pre capture");
        assert!(marked(&ix, writing));
        ix.seal(&Seal { id: writing, start_us: M, end_us: M + 59 * S, bytes: 1, ..Default::default() }).unwrap();
        assert!(marked(&ix, writing), "sealing keeps the mark");
        let later = chunk(&ix, 2, true);
        assert!(marked(&ix, later), "a chunk begun while the event is open");
        let ended = ix.end_event(id, 2 * M + 50 * S).unwrap();
        assert_eq!(ended.end_us, Some(2 * M + 50 * S));
        // Post capture to 3:05: the chunk at 3:00 is marked, the one at 4:00 is not.
        assert!(marked(&ix, chunk(&ix, 3, false)));
        assert!(!marked(&ix, chunk(&ix, 4, true)));
        assert_eq!(ix.end_event(id, 3 * M).unwrap_err().kind(), crate::error::ErrorKind::InvalidArgument);
        assert_eq!(ix.end_event(999, 3 * M).unwrap_err().kind(), crate::error::ErrorKind::NotFound);
    }

    /// Rule 3: an end given in the past clears marks on chunks begun after the final window,
    /// unless another event covers them.
    #[test]
    fn ending_in_the_past_clears_marks_no_other_event_holds() {
        let ix = Index::open_in_memory().unwrap();
        let a = ix.insert_event(&ev(10 * S, None)).unwrap();
        let c1 = chunk(&ix, 1, false);
        let c2 = chunk(&ix, 2, false);
        let c3 = chunk(&ix, 3, true);
        assert!(marked(&ix, c1) && marked(&ix, c2) && marked(&ix, c3));
        ix.insert_event(&ev(2 * M + 10 * S, Some(2 * M + 20 * S))).unwrap();
        ix.end_event(a, 20 * S).unwrap();
        assert!(!marked(&ix, c1), "only the ended event covered it");
        assert!(marked(&ix, c2), "the second event still covers it");
        assert!(!marked(&ix, c3));
        let ids: Vec<i64> = ix.event_chunks_after(0, 10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, [c2], "the archive's walk: sealed event chunks only");
        assert!(ix.event_chunks_after(c2, 10).unwrap().is_empty());
    }

    #[test]
    fn pages_filter_by_camera_label_and_time_and_resume_after_the_cursor() {
        let ix = Index::open_in_memory().unwrap();
        for i in 0..5 {
            let label = if i % 2 == 0 { "motion" } else { "door" };
            ix.insert_event(&NewEvent { label, start_us: i * M, end_us: Some(i * M + S), ..ev(0, None) }).unwrap();
        }
        ix.insert_event(&NewEvent { camera: "d", ..ev(0, None) }).unwrap();
        let all = EventFilter { from_us: 0, to_us: i64::MAX, ..Default::default() };
        let p1 = ix.events_page(&all, (i64::MIN, 0), 4).unwrap();
        assert_eq!(p1.len(), 4);
        let last = p1.last().unwrap();
        let p2 = ix.events_page(&all, (last.start_us, last.id), 4).unwrap();
        assert_eq!(p2.len(), 2);
        let f =
            EventFilter { camera: Some("c".into()), label: Some("motion".into()), from_us: M + 2 * S, to_us: 4 * M };
        let got: Vec<i64> = ix.events_page(&f, (i64::MIN, 0), 10).unwrap().iter().map(|e| e.start_us).collect();
        assert_eq!(got, [2 * M, 4 * M]);
        let open = ix.open_events().unwrap();
        assert_eq!(open.iter().map(|e| e.camera.as_str()).collect::<Vec<_>>(), ["d"]);
    }
}
