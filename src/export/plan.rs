//! Turns (camera, from, to) into the list of chunk-file byte ranges an export reads.
//!
//! Rules (see `docs/design/export.md`):
//! - The chunk being written is exported too, up to its last whole frame on disk at the
//!   moment of planning (the writer flushes at every keyframe and sync interval), so an
//!   export reaches to within a few seconds of now. Its index row is not final, so the
//!   file itself is scanned, and the last frame group is left out: a later record proves a
//!   group complete, the end of a growing file does not.
//! - The export starts at the keyframe at or before `from` (the edit list then starts
//!   playback at `from`); if `from` falls in a gap, at the first keyframe after it.
//! - It ends with the last frame at or before `to`.
//! - Whole chunks use the counts stored in the index; only the first and last chunk (and
//!   rows from before schema version 2) are scanned, so planning a 24-hour export reads two
//!   files.

use crate::chunk::frames::{FrameGroup, FrameGroups};
use crate::chunk::reader::{ChunkReader, ReadError};
use crate::error::{Error, Result};
use crate::index::{ChunkState, ReadChunks};
use crate::media::h26x::{Codec, NalKind};
use crate::storage::Storage;
use crate::time::format_rfc3339;
use crate::{bail, err};
use std::path::PathBuf;

/// The longest range one export may cover.
pub const MAX_RANGE_US: i64 = 24 * 3600 * 1_000_000;

/// One chunk file's contribution to an export: records `start_off..end_off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index id of the chunk.
    pub chunk_id: i64,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Offset of the first record (a keyframe's parameter sets, or 0).
    pub start_off: u64,
    /// Offset just past the last record.
    pub end_off: u64,
    /// Records in the range.
    pub records: u64,
    /// Frames (samples) in the range.
    pub samples: u64,
    /// Keyframes in the range.
    pub keyframes: u64,
    /// Timestamp of the first frame, µs.
    pub first_ts: i64,
    /// The latest timestamp of a frame, µs: the last frame presented, and the last
    /// sample's decode time (with B-frames, not the last frame stored).
    pub last_ts: i64,
}

impl Segment {
    /// Bytes of the segment once each 17-byte record header becomes a 4-byte length or
    /// start code.
    pub fn payload_len(&self) -> u64 {
        (self.end_off.saturating_sub(self.start_off)).saturating_sub(13 * self.records)
    }
}

/// Everything an export needs to know before producing a byte.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Camera id.
    pub camera: String,
    /// Codec of the footage.
    pub codec: Codec,
    /// Requested start, µs.
    pub from_us: i64,
    /// Requested end, µs.
    pub to_us: i64,
    /// The file ranges, in time order.
    pub segments: Vec<Segment>,
    /// First SPS of the export (without start code).
    pub sps: Vec<u8>,
    /// First PPS.
    pub pps: Vec<u8>,
    /// First VPS (H.265 only).
    pub vps: Option<Vec<u8>>,
    /// One chapter per event in the range (MP4 only).
    pub chapters: Vec<super::chapters::Chapter>,
    /// The sound track (MP4 only, once [`Plan::with_audio`] found one).
    pub audio: Option<super::audio::AudioPlan>,
}

impl Plan {
    /// The plan with its chunks' audio, if they have any (`super::audio`): what an MP4
    /// export plays. Raw `.h264`/`.h265` exports and single-frame files skip this.
    pub fn with_audio(mut self) -> Plan {
        // Playback ends at `to`, or at the end of the last frame when that is earlier.
        let play_end_us = self.to_us.min(self.last_ts() + self.frame_duration_us());
        let videos = self.segments.iter().map(|s| s.path.as_path());
        self.audio = super::audio::plan_audio(videos, (self.first_ts(), play_end_us));
        self
    }

    /// Total frames.
    pub fn samples(&self) -> u64 {
        self.segments.iter().map(|s| s.samples).sum()
    }

    /// Total keyframes.
    pub fn keyframes(&self) -> u64 {
        self.segments.iter().map(|s| s.keyframes).sum()
    }

    /// Timestamp of the first frame.
    pub fn first_ts(&self) -> i64 {
        self.segments[0].first_ts
    }

    /// The latest timestamp of a frame (the last one presented).
    pub fn last_ts(&self) -> i64 {
        self.segments.last().expect("a plan has segments").last_ts
    }

    /// The (chunk id, byte range) of every segment, as bytes: what an export's content
    /// depends on, for ETags.
    pub fn segment_key(&self) -> Vec<u8> {
        self.segments
            .iter()
            .flat_map(|s| [s.chunk_id as u64, s.start_off, s.end_off].into_iter().flat_map(u64::to_be_bytes))
            .collect()
    }

    /// A typical frame duration (µs), for the last frame, whose successor is unknown.
    pub fn frame_duration_us(&self) -> i64 {
        let s = self.segments.last().expect("a plan has segments");
        if s.samples > 1 {
            ((s.last_ts - s.first_ts) / (s.samples as i64 - 1)).clamp(1_000, 1_000_000)
        } else {
            66_667
        }
    }
}

/// What a scan of part of a chunk found.
struct RegionScan {
    end_off: u64,
    records: u64,
    samples: u64,
    keyframes: u64,
    first_ts: Option<i64>,
    last_ts: i64,
}

impl RegionScan {
    /// Nothing yet, from `start_off`.
    fn at(start_off: u64) -> RegionScan {
        RegionScan { end_off: start_off, records: 0, samples: 0, keyframes: 0, first_ts: None, last_ts: 0 }
    }

    /// Counts frame group `g`, which follows what was counted so far.
    fn add(&mut self, g: &FrameGroup) {
        self.records += g.records;
        self.end_off = g.end;
        self.keyframes += g.has_idr as u64;
        if g.has_slice {
            self.samples += 1;
            self.last_ts = if self.samples == 1 { g.ts_us } else { self.last_ts.max(g.ts_us) };
            self.first_ts.get_or_insert(g.ts_us);
        }
    }
}

/// Scans records from `start_off`, stopping before the first record later than `to_us`.
fn scan_region(path: &std::path::Path, codec: Codec, start_off: u64, to_us: i64) -> Result<RegionScan> {
    let r = ChunkReader::open_at(path, start_off).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut groups = FrameGroups::new(r, Some(codec)).until(u64::MAX, to_us);
    let mut s = RegionScan::at(start_off);
    loop {
        match groups.next_group() {
            Ok(Some(g)) => s.add(&g),
            Ok(None) => break,
            Err(ReadError::Io(e)) => return Err(Error::io(format!("reading {}", path.display()), e)),
            Err(e) => {
                log::warn!("{}: {e}; exporting up to byte {}", path.display(), s.end_off);
                break;
            }
        }
    }
    Ok(s)
}

/// Scans a chunk still being written, in one pass: from the last keyframe group at or
/// before `from_us` (or the start), up to the last frame group known to be whole (one
/// followed by a later record, or by a frame after `to_us`). Returns where it starts.
fn scan_live(path: &std::path::Path, codec: Codec, from_us: i64, to_us: i64) -> Result<(u64, RegionScan)> {
    let r = ChunkReader::open_at(path, 0).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut groups = FrameGroups::new(r, Some(codec));
    let (mut start_off, mut s) = (0, RegionScan::at(0));
    // The last group read, not yet known to be whole.
    let mut unproven: Option<FrameGroup> = None;
    loop {
        match groups.next_group() {
            Ok(Some(g)) => {
                if let Some(prev) = unproven.take() {
                    s.add(&prev);
                }
                if g.ts_us > to_us {
                    break;
                }
                if g.has_idr && g.ts_us <= from_us {
                    (start_off, s) = (g.offset, RegionScan::at(g.offset));
                }
                unproven = Some(g);
            }
            // The end of what the writer has put on disk so far; a torn last record is
            // normal here, not damage.
            Ok(None) | Err(ReadError::Truncated { .. }) => break,
            Err(ReadError::Io(e)) => return Err(Error::io(format!("reading {}", path.display()), e)),
            Err(e) => {
                log::warn!("{}: {e}; exporting up to byte {}", path.display(), s.end_off);
                break;
            }
        }
    }
    Ok((start_off, s))
}

/// SPS, PPS and (H.265) VPS.
type ParameterSets = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// Reads the parameter sets at the start of a segment.
fn parameter_sets(seg: &Segment, codec: Codec) -> Result<ParameterSets> {
    let mut r = ChunkReader::open_at(&seg.path, seg.start_off)
        .map_err(|e| Error::io(format!("opening {}", seg.path.display()), e))?;
    let (mut sps, mut pps, mut vps) = (None, None, None);
    let mut nal = Vec::new();
    for _ in 0..16 {
        match r.next_into(&mut nal) {
            Ok(Some(_)) => match codec.classify(&nal) {
                NalKind::Sps => sps = sps.or(Some(nal.clone())),
                NalKind::Pps => pps = pps.or(Some(nal.clone())),
                NalKind::Vps => vps = vps.or(Some(nal.clone())),
                _ => {}
            },
            _ => break,
        }
        if sps.is_some() && pps.is_some() && (codec == Codec::H264 || vps.is_some()) {
            break;
        }
    }
    match (sps, pps) {
        (Some(s), Some(p)) => Ok((s, p, vps)),
        _ => Err(err!(DataLoss, "{}: no parameter sets before the first keyframe", seg.path.display())),
    }
}

/// Checks a sealed row against its file before anything trusts the row: the file is a
/// regular file (a symlink is not followed) holding at least the bytes the row counts.
pub fn check_file(row: &crate::index::ChunkRow, path: &std::path::Path) -> Result<()> {
    let damaged = |what: String| err!(DataLoss, "chunk {}: {what}; run `edgenvr check --repair`", row.id);
    let meta = std::fs::symlink_metadata(path).map_err(|e| damaged(format!("{}: {e}", path.display())))?;
    if !meta.file_type().is_file() {
        return Err(damaged(format!("{} is not a regular file", path.display())));
    }
    if meta.len() < row.bytes {
        return Err(damaged(format!("{} holds {} bytes, the index says {}", path.display(), meta.len(), row.bytes)));
    }
    Ok(())
}

/// The file of `row`: on its root, or for an archived-only chunk its fetched-back copy
/// (`docs/design/archive.md`); checked against the row unless it is being written. `None`
/// when there is none to read (its root or the fetched copy is missing). The row's path was
/// checked when it was read (`index::row`): it stays in the root.
fn file_of(storage: &Storage, row: &crate::index::ChunkRow) -> Result<Option<PathBuf>> {
    let path = match row.state {
        ChunkState::Archived => match storage.fetched_path(row.id).filter(|p| p.exists()) {
            Some(p) => p,
            None => return Ok(None),
        },
        _ => match storage.root(row.root_id) {
            Some(root) => root.path().join(&row.rel_path),
            None => return Ok(None),
        },
    };
    if matches!(row.state, ChunkState::Sealed | ChunkState::Archived) {
        check_file(row, &path)?;
    }
    Ok(Some(path))
}

/// Plans an export of `camera` from `from_us` to `to_us`.
pub fn make_plan(index: &impl ReadChunks, storage: &Storage, camera: &str, from_us: i64, to_us: i64) -> Result<Plan> {
    if from_us >= to_us {
        bail!(InvalidArgument, "from must be before to");
    }
    if to_us - from_us > MAX_RANGE_US {
        bail!(InvalidArgument, "a range may cover at most 24 hours; export longer spans in parts");
    }
    let rows = index.chunks_for_camera(camera, from_us, to_us)?;
    let mut segments = Vec::new();
    let mut codec = None;
    for row in rows.into_iter().filter(|r| r.state != ChunkState::Deleting) {
        let Some(path) = file_of(storage, &row)? else { continue };
        if codec.is_some_and(|c| c != row.codec) {
            break; // the camera switched codec: the export ends at the switch
        }
        // The chunk being written is scanned now; a sealed one only if partly in range.
        let (start_off, live) = if row.state == ChunkState::Open {
            match scan_live(&path, row.codec, from_us, to_us) {
                Ok((start_off, s)) => (start_off, Some(s)),
                Err(e) => {
                    // Its disk may have just gone (the writer notices at its next sync);
                    // the finished footage is still worth exporting.
                    log::warn!("{e}; the chunk being written is left out of this export");
                    continue;
                }
            }
        } else {
            let start = row.keyframes.iter().rev().find(|(ts, _)| *ts <= from_us).copied();
            (if row.start_us < from_us { start.map_or(0, |(_, off)| off) } else { 0 }, None)
        };
        let whole = if live.is_none() && start_off == 0 && row.end_us <= to_us { row.records } else { None };
        let seg = if let Some(records) = whole {
            Segment {
                chunk_id: row.id,
                path,
                start_off: 0,
                end_off: row.bytes,
                records,
                samples: row.frames,
                keyframes: row.keyframes.len() as u64,
                first_ts: row.start_us,
                last_ts: row.end_us,
            }
        } else {
            let s = match live {
                Some(s) => s,
                None => scan_region(&path, row.codec, start_off, to_us)?,
            };
            let Some(first_ts) = s.first_ts else { continue };
            Segment {
                chunk_id: row.id,
                path,
                start_off,
                end_off: s.end_off,
                records: s.records,
                samples: s.samples,
                keyframes: s.keyframes,
                first_ts,
                last_ts: s.last_ts,
            }
        };
        if seg.samples > 0 {
            codec = Some(row.codec);
            segments.push(seg);
        }
    }
    let Some(codec) = codec else {
        bail!(
            NotFound,
            "camera {camera} has no footage between {} and {}",
            format_rfc3339(from_us),
            format_rfc3339(to_us)
        );
    };
    let (sps, pps, vps) = parameter_sets(&segments[0], codec)?;
    let chapters = super::chapters::of_range(index, camera, from_us, to_us)?;
    Ok(Plan { camera: camera.to_owned(), codec, from_us, to_us, segments, sps, pps, vps, chapters, audio: None })
}
