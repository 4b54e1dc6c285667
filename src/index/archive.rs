//! The archive's rows (schema version 4, `src/index/v4_archive.sql`, and 6,
//! `src/index/v6_archive_audio.sql`): which chunk reached which target (with its audio
//! sibling's copy), the targets' counters, and the reaper's last step, which keeps the row of
//! a chunk that has an archived copy (`docs/design/archive.md`).

use super::row::decode;
use super::{damaged, keyframes, strict, ChunkRow, ChunkState, Index, CHUNK_COLUMNS, USAGE_SQL};
use crate::error::{Error, Result};
use crate::media::h26x::Codec;
use rusqlite::{params, OptionalExtension};

/// A target's counters as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetRow {
    /// Row id.
    pub id: i64,
    /// Where its objects go (endpoint/bucket/prefix/box; no secret).
    pub location: String,
    /// Chunks verified in the store.
    pub objects_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Chunks the reaper removed before they were sent.
    pub reaped_unsent: u64,
    /// Chunks archived without their audio sibling because it vanished or was damaged.
    pub audio_skipped: u64,
    /// Last verified upload, µs.
    pub last_ok_us: Option<i64>,
    /// The last error and when, µs.
    pub last_error: Option<(String, i64)>,
}

/// Sealed chunks not yet in a target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// How many.
    pub chunks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The oldest one's last frame, µs.
    pub oldest_end_us: Option<i64>,
}

/// The archived copy of a chunk's audio sibling (`docs/design/audio.md`): its object is the
/// chunk's key with `.audio` for `.chunk` ([`audio_key`]); what fetch-back checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioCopy {
    /// Its length.
    pub bytes: u64,
    /// Its MD5, lower-case hex.
    pub md5: String,
}

/// The object key of the audio sibling archived with the chunk at `chunk_key` (the sibling's
/// name rule, `chunk::path::sibling_path`, applied to the key); `None` for a key that is
/// not a chunk's.
pub fn audio_key(chunk_key: &str) -> Option<String> {
    let p = crate::chunk::path::sibling_path(std::path::Path::new(chunk_key))?;
    p.to_str().map(str::to_owned)
}

/// What became of a chunk's audio sibling when the chunk was archived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiblingSent {
    /// The chunk has none (no audio recorded).
    Absent,
    /// Sent and verified beside the chunk.
    Sent(AudioCopy),
    /// It vanished or was damaged: the chunk went without it (counted in
    /// [`TargetRow::audio_skipped`]).
    Skipped,
}

/// An archived chunk's copy in a target: where it is and what fetch-back checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedCopy {
    /// The target's location.
    pub location: String,
    /// The chunk's object key.
    pub key: String,
    /// The chunk's MD5, hex.
    pub md5: String,
    /// Its audio sibling's copy, if one was archived with it.
    pub audio: Option<AudioCopy>,
}

/// One archived chunk as a manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedRow {
    /// The chunk's row.
    pub chunk: ChunkRow,
    /// Its object key.
    pub key: String,
    /// Its MD5, hex.
    pub md5: String,
    /// Its audio sibling's copy, if one was archived with it.
    pub audio: Option<AudioCopy>,
}

/// A chunk known only from an archive's manifest (restore).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredChunk {
    /// Camera id.
    pub camera: String,
    /// Relative path the chunk had on its box.
    pub rel_path: String,
    /// First and last timestamps, µs.
    pub start_us: i64,
    /// Last frame, µs.
    pub end_us: i64,
    /// Bytes.
    pub bytes: u64,
    /// Frames.
    pub frames: u64,
    /// Records (`None`: unknown, a row from schema version 1).
    pub records: Option<u64>,
    /// Codec.
    pub codec: Codec,
    /// Keyframe table.
    pub keyframes: Vec<(i64, u64)>,
    /// Object key and MD5.
    pub key: String,
    /// MD5, hex.
    pub md5: String,
    /// Its audio sibling's copy, if the manifest lists one.
    pub audio: Option<AudioCopy>,
    /// UTC day (YYYYMMDD).
    pub day: String,
}

/// Which sealed chunks a target takes (its `send` in `[[archive]]`), as the queries see it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Takes {
    /// Every sealed chunk.
    All,
    /// Only chunks holding event footage, pre and post capture included (`chunk.event = 1`,
    /// kept right by `index::events`).
    EventFootage,
}

impl Takes {
    /// The value the queries' `events_only` parameter takes.
    fn events_only(self) -> i64 {
        i64::from(self == Takes::EventFootage)
    }
}

const NOT_SENT: &str = "NOT EXISTS (SELECT 1 FROM archive_object a WHERE a.target_id = ?1 AND a.chunk_id = chunk.id)";

/// [`Index::archived_only_spans`] on connection `c` (the writers' or one of the API's
/// readers).
pub(super) fn archived_only_spans_in(
    c: &rusqlite::Connection,
    camera: &str,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, i64)>> {
    let mut st = c
        .prepare_cached(
            "SELECT start_us, end_us FROM chunk WHERE camera = ?1 AND state = 3 AND start_us < ?3 AND end_us >= ?2
             ORDER BY start_us",
        )
        .map_err(|e| Error::db("querying archived footage", e))?;
    let mut rows = st.query(params![camera, from_us, to_us]).map_err(|e| Error::db("querying archived footage", e))?;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    while let Some(r) = rows.next().map_err(|e| Error::db("reading archived footage", e))? {
        let (s, e): (i64, i64) = (
            r.get(0).map_err(|e| Error::db("reading archived footage", e))?,
            r.get(1).map_err(|e| Error::db("reading archived footage", e))?,
        );
        match spans.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => spans.push((s, e)),
        }
    }
    Ok(spans)
}

/// A sibling's copy from its two columns: both set, the length not negative (a damaged
/// column reads as no copy: fetch-back then brings the chunk without audio).
fn audio_copy(bytes: Option<i64>, md5: Option<String>) -> Option<AudioCopy> {
    Some(AudioCopy { bytes: u64::try_from(bytes?).ok()?, md5: md5? })
}

/// Restore's repair: rewrites archived-only row `id` from its manifest line when the row
/// breaks the index's rules (`index::row`); a sound row, or one in another state (its file
/// is on a root: `check --repair` rewrites it from there), is left as it is.
fn rewrite_damaged_archived(tx: &rusqlite::Transaction<'_>, id: i64, r: &RestoredChunk) -> Result<bool> {
    let row = tx
        .query_row(&format!("SELECT {CHUNK_COLUMNS} FROM chunk WHERE id = ?1"), [id], decode)
        .optional()
        .map_err(|e| Error::db("reading a restored row", e))?;
    let Some(Err(d)) = row else { return Ok(false) };
    if d.state != ChunkState::Archived as i64 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE chunk SET camera = ?2, rel_path = ?3, start_us = ?4, end_us = ?5, bytes = ?6, frames = ?7, codec = ?8,
         keyframes = ?9, records = ?10 WHERE id = ?1",
        params![
            id,
            r.camera,
            r.rel_path,
            r.start_us,
            r.end_us,
            r.bytes as i64,
            r.frames as i64,
            r.codec.as_str(),
            keyframes::encode(r.start_us, &r.keyframes),
            r.records.map_or(-1, |v| v as i64)
        ],
    )
    .map_err(|e| Error::db(format!("rewriting {} from its manifest", r.key), e))?;
    log::info!("rewrote damaged index row {id} ({}) from the archive's manifest", r.key);
    Ok(true)
}

impl Index {
    /// The id of the target at `location`, registering it on first sight and noting what it
    /// takes (written only when that changed: flash wear).
    pub fn archive_target_id(&self, location: &str, takes: Takes) -> Result<i64> {
        let c = self.lock();
        c.execute("INSERT OR IGNORE INTO archive_target (location) VALUES (?1)", [location])
            .map_err(|e| Error::db("registering archive target", e))?;
        c.execute(
            "UPDATE archive_target SET events_only = ?2 WHERE location = ?1 AND events_only != ?2",
            params![location, takes.events_only()],
        )
        .map_err(|e| Error::db("registering archive target", e))?;
        c.query_row("SELECT id FROM archive_target WHERE location = ?1", [location], |r| r.get(0))
            .map_err(|e| Error::db("looking up archive target", e))
    }

    /// Up to `limit` sealed chunks with id >= `from_id` that target `target_id` takes
    /// (`takes`) and does not hold yet, in id order.
    pub fn archive_pending(&self, target_id: i64, takes: Takes, from_id: i64, limit: usize) -> Result<Vec<ChunkRow>> {
        // A damaged row stops the uploader with an error naming it (status shows it) rather
        // than sending a file the row misdescribes.
        strict(self.query(
            &format!(
                "SELECT {CHUNK_COLUMNS} FROM chunk WHERE id >= ?2 AND state = 1 AND {NOT_SENT} AND (?3 = 0 OR event = 1)
                 ORDER BY id LIMIT ?4"
            ),
            params![target_id, from_id, takes.events_only(), limit as i64],
        )?)
    }

    /// The lowest id from `from_id` on of a chunk still being written, or sealed, taken by
    /// target `target_id` (`takes`) and not in it: where the uploader's next look starts.
    pub fn archive_first_unsent(&self, target_id: i64, takes: Takes, from_id: i64) -> Result<Option<i64>> {
        let c = self.lock();
        c.query_row(
            &format!(
                "SELECT min(id) FROM chunk WHERE id >= ?2
                 AND (state = 0 OR (state = 1 AND {NOT_SENT} AND (?3 = 0 OR event = 1)))"
            ),
            params![target_id, from_id, takes.events_only()],
            |r| r.get(0),
        )
        .map_err(|e| Error::db("finding the archive backlog's start", e))
    }

    /// For `send = "events"`: the events added after event id `after` may have marked sealed
    /// chunks the uploader's cursor has passed (a pre capture reaching back, an event
    /// recorded after the fact). Returns the lowest id of a marked chunk in their windows
    /// not yet in `target_id` (where the cursor goes back to), and the newest event id now.
    /// Event ids only grow (events are never deleted); chunks start at most ten minutes
    /// before a window they overlap (`index::events`), so each event is one index range.
    pub fn archive_events_since(&self, target_id: i64, after: i64) -> Result<(Option<i64>, i64)> {
        let c = self.lock();
        let newest: i64 = c
            .query_row("SELECT coalesce(max(id), 0) FROM event", [], |r| r.get(0))
            .map_err(|e| Error::db("reading the newest event", e))?;
        if newest <= after {
            return Ok((None, newest));
        }
        let rewind = c
            .query_row(
                "SELECT min(c.id) FROM event e JOIN chunk c ON c.camera = e.camera
                   AND c.start_us >= e.start_us - e.pre_us - ?4
                   AND c.start_us <= coalesce(e.end_us + e.post_us, 9223372036854775807)
                 WHERE e.id > ?2 AND e.id <= ?3 AND c.state = 1 AND c.event = 1
                   AND NOT EXISTS (SELECT 1 FROM archive_object a WHERE a.target_id = ?1 AND a.chunk_id = c.id)",
                params![target_id, after, newest, super::events::MAX_CHUNK_SPAN_US],
                |r| r.get(0),
            )
            .map_err(|e| Error::db("finding chunks new events marked", e))?;
        Ok((rewind, newest))
    }

    /// Whether `key` in target `target_id` already holds another chunk than `chunk_id`.
    pub fn archive_key_taken(&self, target_id: i64, key: &str, chunk_id: i64) -> Result<bool> {
        let c = self.lock();
        c.query_row(
            "SELECT 1 FROM archive_object WHERE target_id = ?1 AND key = ?2 AND chunk_id != ?3",
            params![target_id, key, chunk_id],
            |_| Ok(()),
        )
        .optional()
        .map(|o| o.is_some())
        .map_err(|e| Error::db("looking up archive key", e))
    }

    /// Records a verified upload (the chunk's object and what became of its audio sibling)
    /// and counts it, in one transaction; the bytes sent include the sibling's.
    pub fn archive_record(
        &self,
        target_id: i64,
        row: &ChunkRow,
        (key, md5): (&str, &str),
        sibling: &SiblingSent,
        now_us: i64,
    ) -> Result<()> {
        let day = crate::time::Civil::from_us(row.start_us).yyyymmdd();
        let audio = match sibling {
            SiblingSent::Sent(a) => Some(a),
            SiblingSent::Absent | SiblingSent::Skipped => None,
        };
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting archive record", e))?;
        tx.execute(
            // Nothing when the reaper removed the row meanwhile: the object stays unlisted.
            "INSERT OR REPLACE INTO archive_object (target_id, chunk_id, key, md5, day, audio_bytes, audio_md5)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM chunk WHERE id = ?2)",
            params![target_id, row.id, key, md5, day, audio.map(|a| a.bytes as i64), audio.map(|a| &a.md5)],
        )
        .map_err(|e| Error::db("recording an archived chunk", e))?;
        tx.execute(
            "UPDATE archive_target SET objects_sent = objects_sent + 1, bytes_sent = bytes_sent + ?2, last_ok_us = ?3,
             audio_skipped = audio_skipped + ?4 WHERE id = ?1",
            params![
                target_id,
                (row.bytes + audio.map_or(0, |a| a.bytes)) as i64,
                now_us,
                i64::from(*sibling == SiblingSent::Skipped)
            ],
        )
        .map_err(|e| Error::db("counting an archived chunk", e))?;
        tx.commit().map_err(|e| Error::db("committing archive record", e))?;
        self.count_tx();
        Ok(())
    }

    /// Stores a target's last error (the caller writes only when it changed: flash wear).
    pub fn archive_error(&self, target_id: i64, message: &str, now_us: i64) -> Result<()> {
        let c = self.lock();
        c.execute(
            "UPDATE archive_target SET last_error = ?2, last_error_us = ?3 WHERE id = ?1",
            params![target_id, message, now_us],
        )
        .map_err(|e| Error::db("recording an archive error", e))?;
        self.count_tx();
        Ok(())
    }

    /// Every target's counters.
    pub fn archive_targets(&self) -> Result<Vec<TargetRow>> {
        let c = self.lock();
        let mut st = c
            .prepare(
                "SELECT id, location, objects_sent, bytes_sent, reaped_unsent, last_ok_us, last_error, last_error_us,
                 audio_skipped FROM archive_target ORDER BY id",
            )
            .map_err(|e| Error::db("listing archive targets", e))?;
        let rows = st
            .query_map([], |r| {
                let err: Option<String> = r.get(6)?;
                let err_us: Option<i64> = r.get(7)?;
                Ok(TargetRow {
                    id: r.get(0)?,
                    location: r.get(1)?,
                    objects_sent: r.get::<_, i64>(2)? as u64,
                    bytes_sent: r.get::<_, i64>(3)? as u64,
                    reaped_unsent: r.get::<_, i64>(4)? as u64,
                    audio_skipped: r.get::<_, i64>(8)? as u64,
                    last_ok_us: r.get(5)?,
                    last_error: err.map(|e| (e, err_us.unwrap_or(0))),
                })
            })
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("listing archive targets", e))?;
        Ok(rows)
    }

    /// Sealed chunks `target_id` takes (`takes`) and does not hold yet (whatever their age).
    pub fn archive_backlog(&self, target_id: i64, takes: Takes) -> Result<Backlog> {
        let c = self.lock();
        c.query_row(
            &format!(
                // The audio siblings' bytes too (`chunk.audio_bytes`): they are sent with their chunks.
                "SELECT count(*), coalesce(sum({USAGE_SQL}), 0), min(end_us) FROM chunk
                 WHERE state = 1 AND {NOT_SENT} AND (?2 = 0 OR event = 1)"
            ),
            params![target_id, takes.events_only()],
            |r| {
                Ok(Backlog {
                    chunks: r.get::<_, i64>(0)? as u64,
                    bytes: r.get::<_, i64>(1)? as u64,
                    oldest_end_us: r.get(2)?,
                })
            },
        )
        .map_err(|e| Error::db("measuring the archive backlog", e))
    }

    /// The reaper's last step: rows in state `deleting` whose chunk has an archived copy
    /// become archived-only; the others are deleted and counted as never sent, per target.
    pub fn forget_local(&self, ids: &[i64]) -> Result<()> {
        // Bytes freed per root, for the totals: an archived-only row holds none here either.
        self.free_rows(
            ids,
            &format!("SELECT root_id, {} FROM chunk WHERE id = ?1 AND state = 2", super::USAGE_SQL),
            &[
                "UPDATE archive_target SET reaped_unsent = reaped_unsent + 1 WHERE NOT EXISTS
                 (SELECT 1 FROM archive_object a WHERE a.target_id = archive_target.id AND a.chunk_id = ?1)
                 AND (events_only = 0 OR EXISTS (SELECT 1 FROM chunk WHERE id = ?1 AND event = 1))",
                "UPDATE chunk SET state = 3 WHERE id = ?1 AND state = 2
                 AND EXISTS (SELECT 1 FROM archive_object WHERE chunk_id = ?1)",
                "DELETE FROM chunk WHERE id = ?1 AND state = 2",
            ],
            "forgetting deleted chunks",
        )
    }

    /// The (camera, day) pairs with archived chunks no manifest of `target_id` lists yet.
    pub fn archive_unlisted_days(&self, target_id: i64) -> Result<Vec<(String, String)>> {
        let c = self.lock();
        let mut st = c
            .prepare(
                "SELECT DISTINCT camera, day FROM archive_object JOIN chunk ON chunk.id = chunk_id
                 WHERE target_id = ?1 AND in_manifest = 0 ORDER BY day, camera",
            )
            .map_err(|e| Error::db("listing manifests to write", e))?;
        let v = st
            .query_map([target_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("listing manifests to write", e))?;
        Ok(v)
    }

    /// The stretches of `camera` in `[from_us, to_us)` held only in an archive (rows in
    /// state 3, merged when they touch), for the timeline's `archived_s`.
    pub fn archived_only_spans(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<(i64, i64)>> {
        archived_only_spans_in(&self.lock(), camera, from_us, to_us)
    }

    /// Every chunk of `camera` on UTC `day` archived in `target_id`, in time order.
    pub fn archive_day(&self, target_id: i64, camera: &str, day: &str) -> Result<Vec<ArchivedRow>> {
        let c = self.lock();
        let mut st = c
            .prepare_cached(&format!(
                "SELECT {CHUNK_COLUMNS}, key, md5, archive_object.audio_bytes, archive_object.audio_md5
                 FROM chunk JOIN archive_object ON chunk.id = chunk_id
                 WHERE target_id = ?1 AND camera = ?2 AND day = ?3 ORDER BY start_us, id"
            ))
            .map_err(|e| Error::db("reading a manifest's rows", e))?;
        let v = st
            .query_map(params![target_id, camera, day], |r| {
                Ok((decode(r)?, r.get(12)?, r.get(13)?, audio_copy(r.get(14)?, r.get(15)?)))
            })
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| Error::db("reading a manifest's rows", e))?;
        v.into_iter()
            .map(|(row, key, md5, audio)| Ok(ArchivedRow { chunk: row.map_err(damaged)?, key, md5, audio }))
            .collect()
    }

    /// Marks the rows of (camera, day) in `target_id` as listed by a written manifest.
    pub fn archive_mark_listed(&self, target_id: i64, camera: &str, day: &str) -> Result<()> {
        let c = self.lock();
        c.execute(
            "UPDATE archive_object SET in_manifest = 1 WHERE target_id = ?1 AND day = ?3 AND in_manifest = 0
             AND chunk_id IN (SELECT id FROM chunk WHERE camera = ?2)",
            params![target_id, camera, day],
        )
        .map_err(|e| Error::db("marking a manifest written", e))?;
        self.count_tx();
        Ok(())
    }

    /// The archived copy of a chunk (the first target's that holds it).
    pub fn archive_copy(&self, chunk_id: i64) -> Result<Option<ArchivedCopy>> {
        let c = self.lock();
        c.query_row(
            "SELECT t.location, a.key, a.md5, a.audio_bytes, a.audio_md5 FROM archive_object a
             JOIN archive_target t ON t.id = a.target_id WHERE a.chunk_id = ?1 ORDER BY a.target_id LIMIT 1",
            [chunk_id],
            |r| {
                Ok(ArchivedCopy {
                    location: r.get(0)?,
                    key: r.get(1)?,
                    md5: r.get(2)?,
                    audio: audio_copy(r.get(3)?, r.get(4)?),
                })
            },
        )
        .optional()
        .map_err(|e| Error::db("looking up an archived copy", e))
    }

    /// Restore: adds one chunk known from a manifest as archived-only on `root_id`, unless
    /// the target already lists its key. Returns whether it changed the index: added, or an
    /// archived-only row of that key that breaks the index's rules rewritten from the
    /// manifest (the one repair of such a row: its file is in the bucket, not on a root, so
    /// `check --repair` leaves it alone).
    pub fn insert_restored(&self, root_id: i64, target_id: i64, r: &RestoredChunk) -> Result<bool> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting restore", e))?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT chunk_id FROM archive_object WHERE target_id = ?1 AND key = ?2",
                params![target_id, r.key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| Error::db("restoring", e))?;
        if let Some(id) = known {
            let rewritten = rewrite_damaged_archived(&tx, id, r)?;
            tx.commit().map_err(|e| Error::db("committing restore", e))?;
            return Ok(rewritten);
        }
        tx.execute(
            "INSERT INTO chunk (camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state, keyframes, records)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 3, ?9, ?10)",
            params![
                r.camera,
                root_id,
                r.rel_path,
                r.start_us,
                r.end_us,
                r.bytes as i64,
                r.frames as i64,
                r.codec.as_str(),
                keyframes::encode(r.start_us, &r.keyframes),
                r.records.map_or(-1, |v| v as i64)
            ],
        )
        .map_err(|e| Error::db(format!("restoring {}", r.key), e))?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO archive_object (target_id, chunk_id, key, md5, day, in_manifest, audio_bytes, audio_md5)
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)",
            params![
                target_id,
                id,
                r.key,
                r.md5,
                r.day,
                r.audio.as_ref().map(|a| a.bytes as i64),
                r.audio.as_ref().map(|a| &a.md5)
            ],
        )
        .map_err(|e| Error::db(format!("restoring {}", r.key), e))?;
        tx.commit().map_err(|e| Error::db("committing restore", e))?;
        self.count_tx();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{NewChunk, Seal};
    use std::path::{Path, PathBuf};

    /// Three sealed minutes of a camera.
    fn three_minutes(ix: &Index, root: i64) -> Vec<i64> {
        (0..3i64)
            .map(|m| {
                let p = PathBuf::from(format!("c/20261121/c.20261121.145{m}.chunk"));
                let start = 1_795_272_960_000_000 + m * 60_000_000;
                let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
                let seal = Seal {
                    start_us: start,
                    end_us: start + 59_000_000,
                    bytes: 1000,
                    frames: 10,
                    records: 20,
                    ..Default::default()
                };
                ix.insert_sealed(&n, &seal).unwrap()
            })
            .collect()
    }

    /// `send = "events"`: only marked chunks are pending or in the backlog; an event added
    /// after the cursor passed its footage (recorded after the fact, or a pre capture
    /// reaching back) sends the cursor back to it; the reaper counts only event chunks as
    /// never sent to such a target. Without the look back the cursor would never return.
    #[test]
    fn events_target_takes_marked_chunks_even_behind_its_cursor() {
        use crate::index::events::NewEvent;
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let (all, ev) = (
            ix.archive_target_id("http://s3/nvr/a", Takes::All).unwrap(),
            ix.archive_target_id("http://s3/nvr/e", Takes::EventFootage).unwrap(),
        );
        let (_, seen) = ix.archive_events_since(ev, i64::MAX).unwrap();
        let ids = three_minutes(&ix, root);
        assert_eq!(ix.archive_pending(ev, Takes::EventFootage, 0, 16).unwrap(), vec![]);
        assert_eq!(ix.archive_backlog(ev, Takes::EventFootage).unwrap().chunks, 0);
        assert_eq!(ix.archive_backlog(all, Takes::All).unwrap().chunks, 3);
        // Nothing marked: the cursor passes all three.
        assert_eq!(ix.archive_first_unsent(ev, Takes::EventFootage, 0).unwrap(), None);
        assert_eq!(ix.archive_events_since(ev, seen).unwrap(), (None, seen));

        // An event in the second minute, 5 s of pre capture reaching into the first.
        let start = 1_795_272_960_000_000 + 62_000_000;
        let e = NewEvent {
            camera: "c",
            label: "door",
            source: "api",
            start_us: start,
            end_us: Some(start + 1_000_000),
            pre_us: 5_000_000,
            post_us: 1_000_000,
            note: None,
        };
        ix.insert_event(&e).unwrap();
        let (rewind, newest) = ix.archive_events_since(ev, seen).unwrap();
        assert_eq!((rewind, newest), (Some(ids[0]), seen + 1));
        let pending: Vec<i64> =
            ix.archive_pending(ev, Takes::EventFootage, ids[0], 16).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(pending, ids[..2]);
        assert_eq!(ix.archive_backlog(ev, Takes::EventFootage).unwrap().chunks, 2);
        ix.archive_record(ev, &ix.chunk(ids[0]).unwrap().unwrap(), ("k0", "ab"), &SiblingSent::Absent, 5).unwrap();
        assert_eq!(ix.archive_first_unsent(ev, Takes::EventFootage, 0).unwrap(), Some(ids[1]));
        // Once sent, the event sends nothing back again.
        ix.archive_record(ev, &ix.chunk(ids[1]).unwrap().unwrap(), ("k1", "ab"), &SiblingSent::Absent, 5).unwrap();
        assert_eq!(ix.archive_events_since(ev, seen).unwrap(), (None, newest));

        // The reaper: the unmarked third chunk was never due to the events target.
        ix.mark_deleting(&ids).unwrap();
        ix.forget_local(&ids).unwrap();
        let unsent: Vec<(String, u64)> =
            ix.archive_targets().unwrap().into_iter().map(|t| (t.location, t.reaped_unsent)).collect();
        assert_eq!(unsent, vec![("http://s3/nvr/a".to_owned(), 3), ("http://s3/nvr/e".to_owned(), 0)]);
    }

    /// A chunk's audio sibling: its copy is recorded with the chunk (and read back by
    /// fetch-back and the manifest), its bytes count as sent, a skipped one is counted, and a
    /// restore brings the copy back from the manifest.
    #[test]
    fn audio_copies_are_recorded_counted_and_restored() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let t = ix.archive_target_id("http://s3/nvr/box", Takes::All).unwrap();
        let ids = three_minutes(&ix, root);
        // The first chunk was sealed with a 250-byte sibling: the backlog counts it.
        let first = ix.chunk(ids[0]).unwrap().unwrap();
        let s0 = Seal {
            id: ids[0],
            start_us: first.start_us,
            end_us: first.end_us,
            bytes: 1000,
            frames: 10,
            records: 20,
            audio_bytes: 250,
            ..Seal::default()
        };
        ix.seal(&s0).unwrap();
        assert_eq!(ix.archive_backlog(t, Takes::All).unwrap().bytes, 3 * 1000 + 250);
        let row = |i: usize| ix.chunk(ids[i]).unwrap().unwrap();
        let audio = AudioCopy { bytes: 250, md5: "cd".into() };
        let key = |i: usize| format!("box/c/20261121/c.20261121.145{i}.chunk");
        ix.archive_record(t, &row(0), (&key(0), "ab"), &SiblingSent::Sent(audio.clone()), 5).unwrap();
        ix.archive_record(t, &row(1), (&key(1), "ab"), &SiblingSent::Skipped, 5).unwrap();
        ix.archive_record(t, &row(2), (&key(2), "ab"), &SiblingSent::Absent, 5).unwrap();
        let copy = ix.archive_copy(ids[0]).unwrap().unwrap();
        assert_eq!((copy.key.as_str(), copy.audio.as_ref()), (key(0).as_str(), Some(&audio)));
        assert_eq!(audio_key(&copy.key).unwrap(), "box/c/20261121/c.20261121.1450.audio");
        assert_eq!(ix.archive_copy(ids[1]).unwrap().unwrap().audio, None);
        let counters = &ix.archive_targets().unwrap()[0];
        assert_eq!((counters.objects_sent, counters.bytes_sent, counters.audio_skipped), (3, 3 * 1000 + 250, 1));
        let day = ix.archive_day(t, "c", "20261121").unwrap();
        assert_eq!(day.iter().map(|r| r.audio.clone()).collect::<Vec<_>>(), vec![Some(audio.clone()), None, None]);

        // Restored elsewhere from a manifest line with audio: fetch-back finds the copy.
        let other = Index::open_in_memory().unwrap();
        let (root2, t2) = (other.root_id(Path::new("/r")).unwrap(), other.archive_target_id("x", Takes::All).unwrap());
        let (_, restored) = crate::archive::layout::parse_manifest(
            "k",
            &String::from_utf8(crate::archive::layout::manifest("b", "c", "20261121", &day).unwrap()).unwrap(),
        )
        .unwrap();
        for r in &restored {
            assert!(other.insert_restored(root2, t2, r).unwrap());
        }
        let first = other.chunks_for_camera("c", 0, i64::MAX).unwrap()[0].id;
        assert_eq!(other.archive_copy(first).unwrap().unwrap().audio, Some(audio));
    }

    /// Restore is the repair of a damaged archived-only row: a second restore of the same
    /// manifest line rewrites it (a sound row is left alone, and so is a damaged row in
    /// another state, whose file `check --repair` reads).
    #[test]
    fn restore_rewrites_a_damaged_archived_only_row() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let t = ix.archive_target_id("http://s3/nvr/box", Takes::All).unwrap();
        let start = 1_795_272_960_000_000;
        let r = RestoredChunk {
            camera: "c".into(),
            rel_path: "c/20261121/c.20261121.1456.chunk".into(),
            start_us: start,
            end_us: start + 59_000_000,
            bytes: 1000,
            frames: 10,
            records: Some(20),
            codec: Codec::H264,
            keyframes: vec![(start, 0)],
            key: "box/c/20261121/c.20261121.1456.chunk".into(),
            md5: "ab".into(),
            audio: None,
            day: "20261121".into(),
        };
        assert!(ix.insert_restored(root, t, &r).unwrap());
        let id = ix.chunks_for_camera("c", 0, i64::MAX).unwrap()[0].id;
        let sound = ix.chunk(id).unwrap().unwrap();
        assert!(!ix.insert_restored(root, t, &r).unwrap(), "a sound row is left alone");
        ix.lock().execute("UPDATE chunk SET bytes = -5, end_us = 7 WHERE id = ?1", [id]).unwrap();
        assert!(ix.chunk(id).is_err(), "the damage is seen");
        assert!(ix.insert_restored(root, t, &r).unwrap());
        assert_eq!(ix.chunk(id).unwrap().unwrap(), sound);
        ix.lock().execute("UPDATE chunk SET bytes = -5, state = 1 WHERE id = ?1", [id]).unwrap();
        assert!(!ix.insert_restored(root, t, &r).unwrap(), "not archived only: check --repair's");
    }

    /// Two sealed chunks, one archived: the reaper's last step keeps the archived one's row
    /// (archived only, out of the root's bytes, still listed for the camera) and deletes and
    /// counts the other; the backlog and the cursor follow.
    #[test]
    fn reaping_keeps_archived_rows_and_counts_unsent_ones() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(Path::new("/r")).unwrap();
        let t = ix.archive_target_id("http://s3/nvr/box", Takes::All).unwrap();
        assert_eq!(ix.archive_target_id("http://s3/nvr/box", Takes::All).unwrap(), t);
        let mut ids = Vec::new();
        for m in 0..2i64 {
            let p = PathBuf::from(format!("c/20261121/c.20261121.145{m}.chunk"));
            let start = 1_795_272_960_000_000 + m * 60_000_000;
            let n = NewChunk { camera: "c", root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
            let seal = Seal {
                start_us: start,
                end_us: start + 59_000_000,
                bytes: 1000, // rows a real file could hold (index::row rule 5)
                frames: 10,
                records: 20,
                ..Default::default()
            };
            ids.push(ix.insert_sealed(&n, &seal).unwrap());
        }
        assert_eq!(ix.archive_backlog(t, Takes::All).unwrap().chunks, 2);
        assert_eq!(ix.archive_first_unsent(t, Takes::All, 0).unwrap(), Some(ids[0]));
        let first = ix.chunk(ids[0]).unwrap().unwrap();
        ix.archive_record(t, &first, ("box/c/20261121/c.20261121.1450.chunk", "ab"), &SiblingSent::Absent, 5).unwrap();
        assert_eq!(
            ix.archive_backlog(t, Takes::All).unwrap(),
            Backlog { chunks: 1, bytes: 1000, oldest_end_us: Some(first.end_us + 60_000_000) }
        );
        assert_eq!(ix.archive_first_unsent(t, Takes::All, 0).unwrap(), Some(ids[1]));
        assert!(ix.archive_key_taken(t, "box/c/20261121/c.20261121.1450.chunk", ids[1]).unwrap());
        assert_eq!(ix.archive_unlisted_days(t).unwrap(), vec![("c".to_owned(), "20261121".to_owned())]);

        ix.mark_deleting(&ids).unwrap();
        ix.forget_local(&ids).unwrap();
        assert_eq!(ix.chunk(ids[0]).unwrap().unwrap().state, ChunkState::Archived);
        assert!(ix.chunk(ids[1]).unwrap().is_none());
        assert_eq!(ix.bytes_on_root(root).unwrap(), 0);
        // The running totals /status reads follow, now and after reopening (totals.rs).
        assert_eq!(ix.root_totals(root), crate::index::totals::RootTotals { bytes: 0, oldest_us: None });
        assert_eq!(ix.oldest_on_root(root).unwrap(), None);
        assert_eq!(ix.oldest_sealed_on_root(root, 10).unwrap(), vec![]);
        assert_eq!(ix.chunks_for_camera("c", 0, i64::MAX).unwrap().len(), 1);
        assert_eq!(ix.archived_only_spans("c", 0, i64::MAX).unwrap(), vec![(first.start_us, first.end_us)]);
        let row = &ix.archive_targets().unwrap()[0];
        assert_eq!((row.objects_sent, row.bytes_sent, row.reaped_unsent), (1, 1000, 1));
        assert_eq!(ix.archive_copy(ids[0]).unwrap().unwrap().key, "box/c/20261121/c.20261121.1450.chunk");
        // Recording late for the same path later (a restarted service in that minute) is still refused
        // by the unique path, so the writer picks the next free name.
        assert!(ix.has_path(root, &first.rel_path).unwrap());
    }
}
