//! Reading a `chunk` row strictly: every value is checked before it becomes a [`ChunkRow`],
//! so a damaged row (a bit flip on the SD card, a hand edit, another program's writes)
//! becomes an error that names the row instead of a wrong row that an export trusts.
//!
//! Rules (see `docs/design/index.md`, "Validation"):
//! 1. `state` is one of the [`ChunkState`] values, `codec` one of the [`Codec`] names.
//! 2. `rel_path` is exactly `{camera}/{YYYYMMDD}/{camera}.YYYYMMDD.HHMM[.N].chunk` with
//!    normal components, and names the row's camera: it is safe to join to a root.
//! 3. Times are not negative; `bytes` and `frames` are not negative; `records` is -1
//!    (unknown, schema version 1) or not negative.
//! 4. The keyframe table decodes; its offsets increase strictly and lie inside `bytes`; it
//!    has no more entries than `frames`.
//! 5. The counts fit the size: `frames <= records` and `records * 17 <= bytes` (each record
//!    has a 17-byte header), or `frames * 17 <= bytes` while `records` is unknown.
//!
//! Rules that need the file (its length, its frames) are checked where the file is read
//! (`export::plan`, `export::samples`, `storage::recovery`).

use super::keyframes;
use crate::chunk::format::HEADER_LEN;
use crate::chunk::path::parse_rel_path;
use crate::media::h26x::Codec;
use rusqlite::types::ValueRef;
use rusqlite::Row;
use std::path::PathBuf;

/// The columns every chunk query selects, in the order [`decode`] reads them.
pub const CHUNK_COLUMNS: &str =
    "id, camera, root_id, rel_path, start_us, end_us, bytes, frames, codec, state, keyframes, records";

/// Lifecycle state of a chunk row. SQL spells the values through constants made from it
/// (in the index module), never bare numbers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChunkState {
    /// Being written; recovered (scanned, truncated, sealed) at startup.
    Open = 0,
    /// Complete.
    Sealed = 1,
    /// The reaper decided to delete it; startup finishes the deletion.
    Deleting = 2,
    /// The reaper removed the file, but a copy is in an archive (`docs/design/archive.md`):
    /// listed and exported (fetched back), never deleted again. Its `bytes` are the
    /// archived copy's; no root holds them.
    Archived = 3,
}

/// One chunk as the index knows it (decoded and checked here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRow {
    /// Stable id (used by the HTTP API).
    pub id: i64,
    /// Camera id.
    pub camera: String,
    /// Storage root id.
    pub root_id: i64,
    /// Path relative to the root; checked to be a chunk path of this camera.
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

/// A row that breaks a rule above: what is known of it and why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRow {
    /// Row id.
    pub id: i64,
    /// Storage root id (0 when unreadable).
    pub root_id: i64,
    /// The stored state value, as it is (may be unknown).
    pub state: i64,
    /// The stored relative path, as it is (may be unsafe: never join it to a root unchecked).
    pub rel_path: String,
    /// Which rule the row breaks.
    pub why: String,
}

impl std::fmt::Display for DamagedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "index row {} ({:?}) is damaged: {}", self.id, self.rel_path, self.why)
    }
}

/// A decoded row, or why it could not be.
pub type RowResult = std::result::Result<ChunkRow, DamagedRow>;

impl ChunkState {
    /// The state stored as `v`, or `None` for a value this binary never writes.
    pub fn from_i64(v: i64) -> Option<ChunkState> {
        match v {
            0 => Some(ChunkState::Open),
            1 => Some(ChunkState::Sealed),
            2 => Some(ChunkState::Deleting),
            3 => Some(ChunkState::Archived),
            _ => None,
        }
    }
}

fn int(r: &Row<'_>, i: usize) -> Option<i64> {
    match r.get_ref(i).ok()? {
        ValueRef::Integer(v) => Some(v),
        _ => None,
    }
}

fn text(r: &Row<'_>, i: usize) -> Option<String> {
    match r.get_ref(i).ok()? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::to_owned),
        _ => None,
    }
}

/// Decodes the row `r` (selected with [`CHUNK_COLUMNS`]). Only a failure of SQLite itself is
/// an `Err` of the outer result; a damaged row is an `Err` of the inner one.
pub fn decode(r: &Row<'_>) -> rusqlite::Result<RowResult> {
    let id: i64 = r.get(0)?;
    let mut damaged = DamagedRow {
        id,
        root_id: int(r, 2).unwrap_or(0),
        state: int(r, 9).unwrap_or(-1),
        rel_path: text(r, 3).unwrap_or_default(),
        why: String::new(),
    };
    Ok(check(r).map_err(|why| {
        damaged.why = why;
        damaged
    }))
}

fn check(r: &Row<'_>) -> std::result::Result<ChunkRow, String> {
    let need_int = |i: usize, name: &str| int(r, i).ok_or_else(|| format!("{name} is not an integer"));
    let camera = text(r, 1).ok_or("camera is not text")?;
    let rel = text(r, 3).ok_or("rel_path is not text")?;
    let parsed = parse_rel_path(std::path::Path::new(&rel))
        .ok_or_else(|| format!("rel_path {rel:?} is not CAMERA/YYYYMMDD/CAMERA.YYYYMMDD.HHMM.chunk"))?;
    if parsed.camera != camera {
        return Err(format!("rel_path {rel:?} is not camera {camera:?}'s"));
    }
    let state_v = need_int(9, "state")?;
    let state = ChunkState::from_i64(state_v).ok_or_else(|| format!("unknown state {state_v}"))?;
    let codec_s = text(r, 8).ok_or("codec is not text")?;
    let codec = Codec::from_name(&codec_s).ok_or_else(|| format!("unknown codec {codec_s:?}"))?;
    let (start_us, end_us) = (need_int(4, "start_us")?, need_int(5, "end_us")?);
    if start_us < 0 || end_us < 0 {
        return Err(format!("negative time (start {start_us}, end {end_us})"));
    }
    let count = |i: usize, name: &str| -> std::result::Result<u64, String> {
        let v = need_int(i, name)?;
        u64::try_from(v).map_err(|_| format!("negative {name} {v}"))
    };
    let (bytes, frames) = (count(6, "bytes")?, count(7, "frames")?);
    let records = match need_int(11, "records")? {
        -1 => None,
        v => Some(u64::try_from(v).map_err(|_| format!("negative records {v}"))?),
    };
    let blob = match r.get_ref(10).map_err(|e| e.to_string())? {
        ValueRef::Blob(b) => b,
        _ => return Err("keyframes is not a blob".into()),
    };
    let keyframes = keyframes::decode(start_us, blob).ok_or("the keyframe table is malformed")?;
    check_counts(bytes, frames, records, &keyframes)?;
    Ok(ChunkRow {
        id: r.get(0).map_err(|e| e.to_string())?,
        camera,
        root_id: need_int(2, "root_id")?,
        rel_path: PathBuf::from(rel),
        start_us,
        end_us,
        bytes,
        frames,
        codec,
        state,
        keyframes,
        records,
    })
}

/// Rules 4 and 5.
pub(crate) fn check_counts(
    bytes: u64,
    frames: u64,
    records: Option<u64>,
    kf: &[(i64, u64)],
) -> std::result::Result<(), String> {
    let header = HEADER_LEN as u64;
    match records {
        Some(n) if frames > n => return Err(format!("{frames} frames in {n} records")),
        Some(n) if n.checked_mul(header).is_none_or(|b| b > bytes) => {
            return Err(format!("{n} records cannot fit in {bytes} bytes"))
        }
        None if frames.checked_mul(header).is_none_or(|b| b > bytes) => {
            return Err(format!("{frames} frames cannot fit in {bytes} bytes"))
        }
        _ => {}
    }
    if kf.len() as u64 > frames {
        return Err(format!("{} keyframes but {frames} frames", kf.len()));
    }
    if kf.windows(2).any(|w| w[1].1 <= w[0].1) {
        return Err("keyframe offsets do not increase".into());
    }
    if let Some(&(_, last)) = kf.last() {
        if last >= bytes {
            return Err(format!("a keyframe at byte {last} lies past the end ({bytes} bytes)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_fit_the_size() {
        let kf = [(0, 0), (5, 100)];
        assert_eq!(check_counts(1_000, 10, Some(20), &kf), Ok(()));
        assert!(check_counts(1_000, 10, Some(5), &kf).unwrap_err().contains("frames in"));
        assert!(check_counts(100, 2, Some(20), &[]).unwrap_err().contains("cannot fit"));
        assert!(check_counts(100, u64::MAX / 2, None, &[]).unwrap_err().contains("cannot fit"));
        assert!(check_counts(1_000, 1, Some(20), &kf).unwrap_err().contains("keyframes but"));
        assert!(check_counts(1_000, 10, Some(20), &[(0, 5), (1, 5)]).unwrap_err().contains("increase"));
        assert!(check_counts(1_000, 10, Some(20), &[(0, 1_000)]).unwrap_err().contains("past the end"));
        assert_eq!(check_counts(0, 0, Some(0), &[]), Ok(()), "an open row");
    }
}
