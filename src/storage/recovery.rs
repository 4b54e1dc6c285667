//! Bringing index and files back into agreement: at every startup (automatically, before
//! recording) and on demand (`edgenvr check [--repair]`, in `storage::check`).
//!
//! Startup recovery is cheap: it looks only where a crash can leave work undone: rows in
//! state `open` (the chunks being written at the crash: scanned, torn tails cut, sealed with
//! their true end), rows in state `deleting` (the reaper's unfinished deletions), and the
//! newest day directories, for files whose index row was lost with the un-synced WAL tail
//! of a power cut. Everything older that the index does not know is found later, in the
//! background, by the background indexer (`storage::indexer`). Only a process holding the index lock
//! ([`crate::index::lock`]) runs this: open rows belong to the lock holder.
//!
//! Every file is reached through [`confined`] and found by
//! [`walk`]: nothing here follows a symlink or leaves its root.

use super::confined::{self, Access};
use super::walk::{walk, Flow, Found};
use crate::chunk::audio::whole_records;
use crate::chunk::path::{parse_rel_path, sibling_path};
use crate::chunk::scan::{scan_open, ChunkSummary};
use crate::error::{Error, Result};
use crate::index::row::DamagedRow;
use crate::index::{ChunkRow, ChunkState, Index, NewChunk, Seal};
use crate::media::h26x::Codec;
use crate::storage::reaper::Reaper;
use crate::storage::{Root, Storage};
use crate::time::{Civil, US_PER_DAY};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One disagreement between index and files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A row whose file is gone.
    MissingFile {
        /// Row id.
        id: i64,
        /// Absolute path.
        path: PathBuf,
    },
    /// A file whose tail is not a whole record (or is corrupt from some offset on).
    TornTail {
        /// Absolute path.
        path: PathBuf,
        /// Length of the valid prefix.
        good_len: u64,
        /// Length on disk.
        file_len: u64,
        /// What the reader found.
        why: String,
    },
    /// A row that disagrees with its (valid) file about size or frames.
    Stale {
        /// Row id.
        id: i64,
        /// Absolute path.
        path: PathBuf,
    },
    /// A chunk file the index does not know.
    Unindexed {
        /// Absolute path.
        path: PathBuf,
    },
    /// A chunk file that does not begin with a keyframe, or holds no frame.
    Undecodable {
        /// Absolute path.
        path: PathBuf,
    },
    /// A row left open or half-deleted by a crash.
    Unfinished {
        /// Row id.
        id: i64,
    },
    /// A row that breaks the index's rules (`index::row`): unknown state or codec, a bad
    /// path or keyframe table, counts that cannot be true.
    Damaged {
        /// Row id.
        id: i64,
        /// Which rule it breaks.
        why: String,
    },
    /// A row whose path is no longer a regular file (a symlink, a directory).
    NotRegular {
        /// Row id.
        id: i64,
        /// Absolute path.
        path: PathBuf,
    },
    /// An audio sibling whose chunk is gone (lost, or removed by hand): never exported, and
    /// never reaped, since the reaper follows chunk rows. Repair removes it.
    OrphanAudio {
        /// Absolute path.
        path: PathBuf,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingFile { id, path } => {
                write!(f, "chunk {id}: file {} is missing", path.display())
            }
            Problem::TornTail { path, good_len, file_len, why } => {
                write!(f, "{}: {why}; valid up to byte {good_len} of {file_len}", path.display())
            }
            Problem::Stale { id, path } => {
                write!(f, "chunk {id}: index disagrees with {}", path.display())
            }
            Problem::Unindexed { path } => write!(f, "{}: not in the index", path.display()),
            Problem::Undecodable { path } => {
                write!(f, "{}: does not start with a keyframe or holds no frame", path.display())
            }
            Problem::Unfinished { id } => {
                write!(f, "chunk {id}: left open or half-deleted by a crash")
            }
            Problem::Damaged { id, why } => write!(f, "chunk {id}: the index row is damaged: {why}"),
            Problem::NotRegular { id, path } => {
                write!(f, "chunk {id}: {} is not a regular file (left alone)", path.display())
            }
            Problem::OrphanAudio { path } => {
                write!(f, "{}: audio whose chunk is gone (it can never be played; repair removes it)", path.display())
            }
        }
    }
}

/// Most skipped paths a report lists (the count goes on).
const MAX_LISTED_SKIPS: usize = 100;

/// What a check or recovery found and did.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems found.
    pub problems: Vec<Problem>,
    /// Problems fixed (with `repair`).
    pub repaired: usize,
    /// Chunk files read.
    pub files_checked: u64,
    /// Roots skipped because they are not present.
    pub roots_absent: Vec<PathBuf>,
    /// Chunk-like paths left alone (symlinks, not regular files), up to 100, and why.
    pub skipped: Vec<(PathBuf, &'static str)>,
    /// How many paths were left alone in all.
    pub skipped_count: u64,
    /// Chunks being written by a running service, which a check leaves alone.
    pub live_left_alone: u64,
}

impl Report {
    /// Problems still standing.
    pub fn remaining(&self) -> usize {
        self.problems.len() - self.repaired
    }

    /// Notes a path left alone.
    pub(super) fn skip(&mut self, root: &Path, rel: PathBuf, why: &'static str) {
        self.skipped_count += 1;
        if self.skipped.len() < MAX_LISTED_SKIPS {
            self.skipped.push((root.join(rel), why));
        }
    }
}

/// The facts of a scan, for the index.
pub(super) fn seal_from(id: i64, s: &ChunkSummary) -> Seal {
    Seal {
        id,
        start_us: s.start_us,
        end_us: s.end_us,
        bytes: s.good_len,
        frames: s.frames,
        keyframes: s.keyframes.clone(),
        records: s.records,
        audio_bytes: s.audio_len,
    }
}

/// What [`examine`] found.
pub(super) enum Examined {
    /// The file is not there.
    Missing,
    /// It is there but not a regular file (a symlink: not followed).
    NotRegular,
    /// It holds no decodable frame, or does not start with a keyframe.
    Undecodable,
    /// Its summary (after cutting a torn tail, when repairing).
    Chunk(ChunkSummary),
}

/// Scans the chunk `rel` of `root` (confined), cutting a torn tail when `repair`.
pub(super) fn examine(
    root: &Root,
    rel: &Path,
    codec: Option<Codec>,
    repair: bool,
    report: &mut Report,
) -> Result<Examined> {
    let path = root.path().join(rel);
    let file = match confined::open_chunk(root.path(), rel, Access::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Examined::Missing),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => return Ok(Examined::NotRegular),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => return Ok(Examined::NotRegular),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let mut s = scan_open(file, codec).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    report.files_checked += 1;
    if !s.is_clean() {
        report.problems.push(Problem::TornTail {
            path: path.clone(),
            good_len: s.good_len,
            file_len: s.file_len,
            why: s.error.clone().unwrap_or_else(|| "trailing bytes".into()),
        });
        if repair {
            let f = confined::open_chunk(root.path(), rel, Access::Write)
                .map_err(|e| Error::io(format!("opening {} to cut its torn tail", path.display()), e))?;
            f.set_len(s.good_len).map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
            f.sync_all().map_err(|e| Error::io(format!("fsync {}", path.display()), e))?;
            s.file_len = s.good_len;
            s.error = None;
            report.repaired += 1;
        }
    }
    s.audio_len = examine_sibling(root, rel, repair, report)?;
    if s.frames == 0 || !s.starts_with_keyframe {
        return Ok(Examined::Undecodable);
    }
    Ok(Examined::Chunk(s))
}

/// The audio sibling of the chunk `rel` (`docs/design/audio.md`), if there is one: a torn
/// tail is reported and, when `repair`, cut like a chunk's. Returns its length on disk
/// afterwards (0 without one).
fn examine_sibling(root: &Root, rel: &Path, repair: bool, report: &mut Report) -> Result<u64> {
    let Some(sib) = sibling_path(rel) else { return Ok(0) };
    let path = root.path().join(&sib);
    let file = match confined::open_chunk(root.path(), &sib, Access::Read) {
        Ok(f) => f,
        // No audio, or not a file of ours (a symlink is never followed): nothing to check.
        Err(_) => return Ok(0),
    };
    let (good_len, file_len, why) =
        whole_records(&file).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    report.files_checked += 1;
    let Some(why) = why.or_else(|| (good_len < file_len).then(|| "trailing bytes".into())) else { return Ok(file_len) };
    report.problems.push(Problem::TornTail { path: path.clone(), good_len, file_len, why });
    if repair {
        let f = confined::open_chunk(root.path(), &sib, Access::Write)
            .map_err(|e| Error::io(format!("opening {} to cut its torn tail", path.display()), e))?;
        f.set_len(good_len).map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
        f.sync_all().map_err(|e| Error::io(format!("fsync {}", path.display()), e))?;
        report.repaired += 1;
        return Ok(good_len);
    }
    Ok(file_len)
}

/// The length of the audio sibling of the chunk `rel` (0 without one; a symlink is never
/// followed): what the index counts beside the chunk's bytes.
pub(super) fn sibling_len(root: &Root, rel: &Path) -> u64 {
    sibling_path(rel)
        .and_then(|sib| confined::open_chunk(root.path(), &sib, Access::Read).ok())
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len())
}

/// Removes the file `rel` of `root` (confined; an audio sibling) and makes that durable.
fn remove_file(root: &Root, rel: &Path) -> Result<()> {
    change_day_dir(root, rel, |dir, name, path| match dir.unlink(name) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!("removing {}", path.display()), e)),
        _ => Ok(()),
    })
}

/// Removes the chunk `rel` of `root` (confined) and makes that durable.
pub(super) fn remove_chunk(root: &Root, rel: &Path) -> Result<()> {
    change_day_dir(root, rel, |dir, name, path| {
        dir.unlink(name).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
        dir.unlink_audio_of(name).map_err(|e| Error::io(format!("removing the audio of {}", path.display()), e))
    })
}

/// Runs `change` on the day directory of `rel` (confined) with the file's name and full
/// path, then syncs the directory (or prunes it when left empty).
fn change_day_dir(
    root: &Root,
    rel: &Path,
    change: impl FnOnce(&confined::DayDir, &str, &Path) -> Result<()>,
) -> Result<()> {
    let path = root.path().join(rel);
    let io = |e| Error::io(format!("removing {}", path.display()), e);
    let [camera, day, name] = confined::split(rel).map_err(io)?;
    let dir = confined::DayDir::open(root.path(), camera, day, false).map_err(io)?;
    change(&dir, name, &path)?;
    dir.sync_or_prune().map_err(|e| Error::io(format!("syncing the directory of {}", path.display()), e))
}

/// Startup recovery: finishes deletions, recovers open chunks, indexes lost recent files.
/// The caller holds the index lock.
pub fn recover_at_startup(index: &Arc<Index>, storage: &Arc<Storage>) -> Result<Report> {
    let mut report = Report::default();
    recover_unfinished(index, storage, &mut report)?;
    // Files newer than the index knows (WAL tail lost in a power cut).
    let newest = index.newest_start_per_root()?;
    for root in storage.roots() {
        if root.check_usable().is_err() {
            continue;
        }
        let since = newest.iter().find(|(id, _)| *id == root.id).map(|(_, t)| t.saturating_sub(US_PER_DAY));
        let Some(since) = since else { continue };
        let first_day = Civil::from_us(since).yyyymmdd();
        index_unknown(index, root, Some(&first_day), true, &mut report)?;
    }
    if !report.problems.is_empty() {
        log::info!("startup recovery: {} problems, {} repaired", report.problems.len(), report.repaired);
        for p in &report.problems {
            log::info!("  {p}");
        }
    }
    Ok(report)
}

/// Finishes the reaper's interrupted deletions and recovers the open rows a crash left
/// (also damaged ones). Only for the holder of the index lock.
pub(super) fn recover_unfinished(index: &Arc<Index>, storage: &Arc<Storage>, report: &mut Report) -> Result<()> {
    let reaper = Reaper::new(index.clone(), storage.clone(), None, crate::time::now_us);
    let finished = reaper.finish_deletions()?;
    report.repaired += finished.len();
    report.problems.extend(finished.into_iter().map(|id| Problem::Unfinished { id }));
    for row in index.rows_in_state(ChunkState::Open)? {
        let id = row.as_ref().map_or_else(|d| d.id, |r| r.id);
        let root_id = row.as_ref().map_or_else(|d| d.root_id, |r| r.root_id);
        let Some(root) = storage.root(root_id) else { continue };
        if root.check_usable().is_err() {
            // Its disk is away; recover when it returns (next start or `check --repair`).
            report.problems.push(Problem::Unfinished { id });
            continue;
        }
        match row {
            Ok(row) => {
                report.problems.push(Problem::Unfinished { id });
                recover_open_row(index, root, &row, report)?;
                report.repaired += 1;
            }
            Err(d) => repair_damaged(index, root, &d, true, report)?,
        }
    }
    Ok(())
}

fn recover_open_row(index: &Index, root: &Root, row: &ChunkRow, report: &mut Report) -> Result<()> {
    match examine(root, &row.rel_path, Some(row.codec), true, report)? {
        Examined::Chunk(s) => {
            log::info!(
                "recovered {} ({} frames, ends {})",
                root.path().join(&row.rel_path).display(),
                s.frames,
                crate::time::format_rfc3339(s.end_us)
            );
            index.seal(&seal_from(row.id, &s))
        }
        Examined::Undecodable => {
            remove_chunk(root, &row.rel_path)?;
            index.delete_rows(&[row.id])
        }
        Examined::Missing | Examined::NotRegular => index.delete_rows(&[row.id]),
    }
}

/// Reports a damaged row and, with `repair`, rewrites it from its file (or drops it when
/// no file of ours answers to its path). The file itself is never removed here. An
/// archived-only row is only reported: its file is in an archive (`docs/design/archive.md`).
pub(super) fn repair_damaged(
    index: &Index,
    root: &Root,
    d: &DamagedRow,
    repair: bool,
    report: &mut Report,
) -> Result<()> {
    if d.state == ChunkState::Archived as i64 {
        // Its file is in an archive, not here: dropping the row would drop the footage from
        // the timeline and exports. `archive restore` rewrites it from the bucket's manifest.
        let why = format!("{} (archived only: `edgenvr archive restore` rewrites it from the bucket)", d.why);
        report.problems.push(Problem::Damaged { id: d.id, why });
        return Ok(());
    }
    report.problems.push(Problem::Damaged { id: d.id, why: d.why.clone() });
    let rel = Path::new(&d.rel_path);
    let found = match parse_rel_path(rel) {
        Some(p) => match examine(root, rel, None, repair, report)? {
            Examined::Chunk(s) => Some((p.camera, s)),
            _ => None,
        },
        None => None,
    };
    if !repair {
        return Ok(());
    }
    match found {
        Some((camera, s)) => {
            index.rewrite(&camera, s.codec.unwrap_or(Codec::H264), &seal_from(d.id, &s))?;
            log::info!("rewrote damaged index row {} from {}", d.id, root.path().join(rel).display());
        }
        None => index.delete_rows(&[d.id])?,
    }
    report.repaired += 1;
    Ok(())
}

/// Finds the chunk files under `root` (days from `from_day` on) that the index does not
/// know, and (with `repair`) indexes them after cutting torn tails.
pub(super) fn index_unknown(
    index: &Index,
    root: &Root,
    from_day: Option<&str>,
    repair: bool,
    report: &mut Report,
) -> Result<()> {
    walk(root.path(), from_day, &mut |found| {
        match found {
            Found::Skipped { rel, why } => report.skip(root.path(), rel, why),
            Found::OrphanAudio { rel } => {
                report.problems.push(Problem::OrphanAudio { path: root.path().join(&rel) });
                if repair {
                    remove_file(root, &rel)?;
                    report.repaired += 1;
                }
            }
            Found::Day { camera, day, files } => {
                for name in files {
                    let rel: PathBuf = [camera, day, name.as_str()].iter().collect();
                    if !index.has_path(root.id, &rel)? {
                        index_file(index, root, &rel, repair, report)?;
                    }
                }
            }
        }
        Ok(Flow::Continue(()))
    })
}

/// Adds a file the index does not know (when `repair`), after cutting a torn tail.
fn index_file(index: &Index, root: &Root, rel: &Path, repair: bool, report: &mut Report) -> Result<()> {
    let path = root.path().join(rel);
    report.problems.push(Problem::Unindexed { path: path.clone() });
    let Some(parsed) = parse_rel_path(rel) else {
        return Ok(());
    };
    let s = match examine(root, rel, None, repair, report)? {
        Examined::Chunk(s) => s,
        Examined::Undecodable => {
            report.problems.push(Problem::Undecodable { path });
            return Ok(());
        }
        // Gone or replaced since the listing.
        Examined::Missing | Examined::NotRegular => return Ok(()),
    };
    if repair {
        let n = NewChunk {
            camera: &parsed.camera,
            root_id: root.id,
            rel_path: rel,
            start_us: s.start_us,
            codec: s.codec.unwrap_or(Codec::H264),
        };
        // A running service's indexer may have added it meanwhile: that is fine too.
        index.insert_found(&[(n, seal_from(0, &s))])?;
        report.repaired += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::{AudioCodec, AudioFrame, AudioParams};
    use crate::media::frame::EncodedFrame;

    /// A torn audio tail (a power cut mid-write) is reported and cut to whole records, like
    /// a chunk's; removing the chunk removes its sibling.
    #[test]
    fn a_torn_audio_sibling_is_cut_and_removed_with_its_chunk() {
        const T0: i64 = 1_795_272_960_000_000;
        let d = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture(d.path());
        let params = Arc::new(AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] });
        let mut f = EncodedFrame::new(T0, Codec::H264);
        for nal in [&[0x67, 1][..], &[0x68, 1], &[0x65, 1]] {
            f.push_nal(nal);
        }
        w.write_frame(&f);
        w.write_audio(&AudioFrame { ts_us: T0 + 1000, params, data: vec![0xff; 160] });
        w.close();
        let row = &index.chunks_for_camera("cam", 0, i64::MAX).unwrap()[0];
        let sib = d.path().join(sibling_path(&row.rel_path).unwrap());
        let whole = std::fs::metadata(&sib).unwrap().len();
        let mut bytes = std::fs::read(&sib).unwrap();
        bytes.extend_from_slice(&[0, 1, 2, 3, 4]);
        std::fs::write(&sib, bytes).unwrap();
        let root = &storage.roots()[0];
        let mut report = Report::default();
        assert!(matches!(examine(root, &row.rel_path, Some(Codec::H264), false, &mut report), Ok(Examined::Chunk(_))));
        assert!(
            matches!(&report.problems[..], [Problem::TornTail { path, good_len, .. }] if *path == sib && *good_len == whole)
        );
        assert_eq!(std::fs::metadata(&sib).unwrap().len(), whole + 5, "not cut without repair");
        let mut report = Report::default();
        examine(root, &row.rel_path, Some(Codec::H264), true, &mut report).unwrap();
        assert_eq!((report.repaired, std::fs::metadata(&sib).unwrap().len()), (1, whole));
        remove_chunk(root, &row.rel_path).unwrap();
        assert!(!sib.exists() && !d.path().join(&row.rel_path).exists());
    }

    /// Audio counts in a root's usage (byte budgets): the writer's seal counts the sibling's
    /// bytes; an open chunk recovered after a power cut, and a chunk found on disk by the
    /// indexer or `check --repair`, count its sibling as it is on disk after the repair.
    #[test]
    fn audio_siblings_count_in_the_root_usage() {
        const T0: i64 = 1_795_272_960_000_000;
        let d = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture_syncing(d.path(), std::time::Duration::ZERO);
        let params = Arc::new(AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] });
        let frame = |ts| {
            let mut f = EncodedFrame::new(ts, Codec::H264);
            for nal in [&[0x67, 1][..], &[0x68, 1], &[0x65, 1]] {
                f.push_nal(nal);
            }
            f
        };
        // Two chunks (a minute apart), each with audio.
        for (i, ts) in [T0, T0 + 60_000_000].into_iter().enumerate() {
            w.write_frame(&frame(ts));
            for k in 0..10 {
                w.write_audio(&AudioFrame {
                    ts_us: ts + 1000 + k * 20_000,
                    params: params.clone(),
                    data: vec![i as u8; 160],
                });
            }
            w.write_frame(&frame(ts + 500_000));
        }
        let on_disk = |dir: &Path| -> u64 {
            let day = dir.join("cam").join("20261121");
            std::fs::read_dir(day).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
        };
        // A power cut: the second chunk stays open; its sibling gets a torn tail.
        let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
        let root = &storage.roots()[0];
        assert_eq!(index.root_totals(root.id).bytes, rows[0].bytes + sibling_len(root, &rows[0].rel_path));
        let open_sib = d.path().join(sibling_path(&rows[1].rel_path).unwrap());
        let mut bytes = std::fs::read(&open_sib).unwrap();
        bytes.extend_from_slice(&[0, 1, 2]);
        std::fs::write(&open_sib, bytes).unwrap();
        std::mem::forget(w);
        let report = recover_at_startup(&index, &storage).unwrap();
        assert!(report.repaired >= 1);
        let root_id = storage.roots()[0].id;
        assert_eq!(index.bytes_on_root(root_id).unwrap(), on_disk(d.path()), "chunks and siblings, after the cut");
        assert_eq!(index.root_totals(root_id).bytes, on_disk(d.path()));
        assert!(on_disk(d.path()) > index.chunks_for_camera("cam", 0, i64::MAX).unwrap().iter().map(|r| r.bytes).sum());
    }

    /// Issue 13's review: an audio sibling whose chunk is gone (a row whose file vanished, a
    /// chunk removed by hand) was never reaped and never reported: disk lost for good. It
    /// is now reported, and removed by repair; a sibling with its chunk is left alone.
    #[test]
    fn audio_without_its_chunk_is_reported_and_removed_by_repair() {
        const T0: i64 = 1_795_272_960_000_000;
        let d = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture(d.path());
        let params = Arc::new(AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] });
        for ts in [T0, T0 + 60_000_000] {
            let mut f = EncodedFrame::new(ts, Codec::H264);
            for nal in [&[0x67, 1][..], &[0x68, 1], &[0x65, 1]] {
                f.push_nal(nal);
            }
            w.write_frame(&f);
            w.write_audio(&AudioFrame { ts_us: ts + 1000, params: params.clone(), data: vec![0xff; 160] });
        }
        w.close();
        let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
        let sib = |i: usize| d.path().join(sibling_path(&rows[i].rel_path).unwrap());
        std::fs::remove_file(d.path().join(&rows[0].rel_path)).unwrap();
        let root = &storage.roots()[0];
        let mut report = Report::default();
        index_unknown(&index, root, None, false, &mut report).unwrap();
        assert!(
            matches!(&report.problems[..], [Problem::OrphanAudio { path }] if *path == sib(0)),
            "{:?}",
            report.problems
        );
        assert!(sib(0).exists(), "not removed without repair");
        let mut report = Report::default();
        index_unknown(&index, root, None, true, &mut report).unwrap();
        assert_eq!(report.repaired, 1);
        assert!(!sib(0).exists() && sib(1).exists());
    }
}
