//! Finds a keyframe in the footage and reads it back as one Annex B access unit
//! (parameter sets + IDR/IRAP slices), which is all a decoder needs for one picture.
//!
//! Sealed chunks are found through their keyframe table in the index (no file scan); the
//! chunk being written has no table yet, so it is scanned, and only keyframes followed by
//! a later record count (the last one may still be being written).

use crate::chunk::frames::FrameGroups;
use crate::chunk::reader::{ChunkReader, ReadError};
use crate::error::{Error, Result};
use crate::index::{ChunkRow, ChunkState, ReadChunks};
use crate::media::h26x::Codec;
use crate::storage::Storage;
use crate::time::{format_rfc3339, US_PER_MIN};
use crate::{bail, err};
use std::path::Path;

/// How far back a keyframe "at or before" a time may lie.
pub const LOOKBACK_US: i64 = 5 * US_PER_MIN;
/// Most bytes of one access unit read back (a 4K IDR is a few MB).
pub const MAX_AU_BYTES: usize = 16 << 20;

/// Which keyframe.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The last keyframe at or before this time (µs), within [`LOOKBACK_US`].
    AtOrBefore(i64),
    /// The first keyframe of the minute starting at this time (PyNVR's "first frame of the
    /// minute"), else the last one before the minute ends.
    FirstInMinute(i64),
}

/// One keyframe, read back.
#[derive(Clone, Debug)]
pub struct Keyframe {
    /// The chunk it is in.
    pub chunk_id: i64,
    /// Its wall-clock time, µs.
    pub ts_us: i64,
    /// Its codec.
    pub codec: Codec,
    /// Parameter sets and slices, with start codes.
    pub annex_b: Vec<u8>,
}

/// Finds the keyframe `pick` names in `camera`'s footage.
pub fn find_keyframe(index: &impl ReadChunks, storage: &Storage, camera: &str, pick: Pick) -> Result<Keyframe> {
    let found = match pick {
        Pick::AtOrBefore(at) => last_at_or_before(index, storage, camera, at)?,
        Pick::FirstInMinute(m) => match first_in(index, storage, camera, m, m + US_PER_MIN)? {
            Some(k) => Some(k),
            None => last_at_or_before(index, storage, camera, m + US_PER_MIN - 1)?,
        },
    };
    let (row, path, ts_us, offset) = found.ok_or_else(|| {
        let at = match pick {
            Pick::AtOrBefore(t) | Pick::FirstInMinute(t) => t,
        };
        err!(NotFound, "camera {camera} has no keyframe near {}", format_rfc3339(at))
    })?;
    let annex_b = read_access_unit(&path, offset, ts_us)?;
    Ok(Keyframe { chunk_id: row.id, ts_us, codec: row.codec, annex_b })
}

type Found = Option<(ChunkRow, std::path::PathBuf, i64, u64)>;

fn last_at_or_before(index: &impl ReadChunks, storage: &Storage, camera: &str, at: i64) -> Result<Found> {
    let rows = index.chunks_for_camera(camera, at - LOOKBACK_US, at)?;
    for row in rows.into_iter().rev() {
        let Some(root) = storage.root(row.root_id) else { continue };
        let path = root.path().join(&row.rel_path);
        let hit = if row.state == ChunkState::Open {
            open_chunk_keyframes(&path, row.codec)?.into_iter().rev().find(|(ts, _)| *ts <= at)
        } else {
            row.keyframes.iter().rev().find(|(ts, _)| *ts <= at).copied()
        };
        if let Some((ts, off)) = hit.filter(|(ts, _)| *ts >= at - LOOKBACK_US) {
            return Ok(Some((row, path, ts, off)));
        }
    }
    Ok(None)
}

fn first_in(index: &impl ReadChunks, storage: &Storage, camera: &str, from: i64, to: i64) -> Result<Found> {
    for row in index.chunks_for_camera(camera, from, to - 1)? {
        let Some(root) = storage.root(row.root_id) else { continue };
        let path = root.path().join(&row.rel_path);
        let kfs =
            if row.state == ChunkState::Open { open_chunk_keyframes(&path, row.codec)? } else { row.keyframes.clone() };
        if let Some((ts, off)) = kfs.into_iter().find(|(ts, _)| (from..to).contains(ts)) {
            return Ok(Some((row, path, ts, off)));
        }
    }
    Ok(None)
}

/// `(ts, offset)` of the keyframes of the chunk being written that are known to be whole.
fn open_chunk_keyframes(path: &Path, codec: Codec) -> Result<Vec<(i64, u64)>> {
    let r = match ChunkReader::open_at(path, 0) {
        Ok(r) => r,
        // Its disk may have just gone; the sealed footage still counts.
        Err(e) => {
            log::warn!("{}: {e}; leaving the chunk being written out", path.display());
            return Ok(Vec::new());
        }
    };
    let mut groups = FrameGroups::new(r, Some(codec));
    let mut out = Vec::new();
    let mut unproven = None;
    loop {
        match groups.next_group() {
            Ok(Some(g)) => {
                if let Some(k) = unproven.take() {
                    out.push(k);
                }
                if g.has_idr {
                    unproven = Some((g.ts_us, g.offset));
                }
            }
            Ok(None) | Err(ReadError::Truncated { .. }) => break,
            Err(ReadError::Io(e)) => return Err(Error::io(format!("reading {}", path.display()), e)),
            Err(e) => {
                log::warn!("{}: {e}", path.display());
                break;
            }
        }
    }
    Ok(out)
}

/// The records at `offset` sharing timestamp `ts_us`, as Annex B.
fn read_access_unit(path: &Path, offset: u64, ts_us: i64) -> Result<Vec<u8>> {
    let mut r = ChunkReader::open_at(path, offset).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut out = Vec::new();
    let mut nal = Vec::new();
    loop {
        match r.next_into(&mut nal) {
            Ok(Some(h)) if h.ts_us == ts_us => {
                if out.len() + nal.len() + 4 > MAX_AU_BYTES {
                    bail!(DataLoss, "{}: keyframe too large", path.display());
                }
                out.extend_from_slice(&[0, 0, 0, 1]);
                out.extend_from_slice(&nal);
            }
            Ok(_) | Err(ReadError::Truncated { .. }) => break,
            Err(e) => return Err(err!(DataLoss, "reading {} at byte {offset}", path.display()).with_source(e)),
        }
    }
    if out.is_empty() {
        bail!(DataLoss, "{}: no keyframe at byte {offset}", path.display());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::media::h26x::{split_annex_b, NalKind};

    /// 2026-11-21T14:56:50Z.
    const T0: i64 = 1_795_273_010_000_000;

    #[test]
    fn finds_keyframes_in_sealed_and_open_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture_syncing(dir.path(), std::time::Duration::ZERO);
        // 15 s at 10 fps from :50, keyframes every second: sealed until the minute, then open.
        for f in crate::testutil::encoded_frames(64, 48, T0, 150) {
            w.write_frame(&f);
        }
        let k = find_keyframe(&index, &storage, "cam", Pick::AtOrBefore(T0 + 5_550_000)).unwrap();
        assert_eq!(k.ts_us, T0 + 5_000_000);
        let kinds: Vec<NalKind> = split_annex_b(&k.annex_b).into_iter().map(|n| Codec::H264.classify(n)).collect();
        assert_eq!(kinds.first(), Some(&NalKind::Sps));
        assert!(kinds.contains(&NalKind::IdrSlice) && !kinds.contains(&NalKind::Slice));
        // In the chunk being written (a keyframe counts once a later frame follows it).
        let k = find_keyframe(&index, &storage, "cam", Pick::AtOrBefore(T0 + 12_300_000)).unwrap();
        assert_eq!(k.ts_us, T0 + 12_000_000);
        let k = find_keyframe(&index, &storage, "cam", Pick::AtOrBefore(T0 + 30_000_000)).unwrap();
        assert_eq!(k.ts_us, T0 + 14_000_000);
        // The minute from :00 starts with the keyframe at 10 s.
        let k = find_keyframe(&index, &storage, "cam", Pick::FirstInMinute(T0 + 10_000_000)).unwrap();
        assert_eq!(k.ts_us, T0 + 10_000_000);
        // Before the footage, or too long after it: not found.
        let e = find_keyframe(&index, &storage, "cam", Pick::AtOrBefore(T0 - 1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = find_keyframe(&index, &storage, "cam", Pick::AtOrBefore(T0 + 20 * US_PER_MIN)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        drop(w);
    }
}
