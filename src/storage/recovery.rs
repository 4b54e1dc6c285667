//! Bringing index and files back into agreement: at every startup (automatically, before
//! recording) and on demand (`edgenvr check [--repair]`).
//!
//! Startup recovery is cheap: it looks only where a crash can leave work undone: rows in
//! state `open` (the chunks being written at the crash: scanned, torn tails cut, sealed with
//! their true end), rows in state `deleting` (the reaper's unfinished deletions), and the
//! newest day directories, for files whose index row was lost with the un-synced WAL tail
//! of a power cut. `check` reads everything: every row against its file, every file against
//! the index, every record of every chunk. Both use bounded memory: rows are paged and files
//! are visited one at a time.

use crate::chunk::path::{parse_rel_path, EXTENSION};
use crate::chunk::scan::{scan_file, ChunkSummary};
use crate::error::{Error, Result};
use crate::index::{ChunkRow, ChunkState, Index, NewChunk, Seal};
use crate::storage::reaper::Reaper;
use crate::storage::{Root, Storage};
use crate::time::{Civil, US_PER_DAY};
use std::fs::OpenOptions;
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
        }
    }
}

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
}

impl Report {
    /// Problems still standing.
    pub fn remaining(&self) -> usize {
        self.problems.len() - self.repaired
    }
}

/// Cuts a file back to its valid prefix and makes that durable.
fn truncate_to(path: &Path, len: u64) -> Result<()> {
    let f =
        OpenOptions::new().write(true).open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    f.set_len(len).map_err(|e| Error::io(format!("truncating {}", path.display()), e))?;
    f.sync_all().map_err(|e| Error::io(format!("fsync {}", path.display()), e))
}

fn seal_from(id: i64, s: &ChunkSummary) -> Seal {
    Seal {
        id,
        start_us: s.start_us,
        end_us: s.end_us,
        bytes: s.good_len,
        frames: s.frames,
        keyframes: s.keyframes.clone(),
        records: s.records,
    }
}

/// Scans a file that belongs (or should belong) to the index, cutting a torn tail when
/// `repair`. Returns the summary, or `None` when the file holds no decodable frame (the
/// caller removes it when repairing).
fn examine(
    path: &Path,
    codec: Option<crate::media::h26x::Codec>,
    repair: bool,
    report: &mut Report,
) -> Result<Option<ChunkSummary>> {
    let mut s = scan_file(path, codec).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    report.files_checked += 1;
    if !s.is_clean() {
        report.problems.push(Problem::TornTail {
            path: path.to_owned(),
            good_len: s.good_len,
            file_len: s.file_len,
            why: s.error.clone().unwrap_or_else(|| "trailing bytes".into()),
        });
        if repair {
            truncate_to(path, s.good_len)?;
            s.file_len = s.good_len;
            s.error = None;
            report.repaired += 1;
        }
    }
    if s.frames == 0 || !s.starts_with_keyframe {
        return Ok(None);
    }
    Ok(Some(s))
}

/// Startup recovery: finishes deletions, recovers open chunks, indexes lost recent files.
pub fn recover_at_startup(index: &Arc<Index>, storage: &Arc<Storage>) -> Result<Report> {
    let mut report = Report::default();
    let reaper = Reaper::new(index.clone(), storage.clone(), None, crate::time::now_us);
    let finished = reaper.finish_deletions()?;
    report.repaired += finished.len();
    report.problems.extend(finished.into_iter().map(|id| Problem::Unfinished { id }));
    for row in index.chunks_in_state(ChunkState::Open)? {
        report.problems.push(Problem::Unfinished { id: row.id });
        let Some(root) = storage.root(row.root_id) else {
            continue;
        };
        if root.check_usable().is_err() {
            // Its disk is away; recover when it returns (next start or `check --repair`).
            continue;
        }
        recover_open_row(index, root, &row, &mut report)?;
        report.repaired += 1;
    }
    // Files newer than the index knows (WAL tail lost in a power cut).
    let newest = index.newest_start_per_root()?;
    for root in storage.roots() {
        if root.check_usable().is_err() {
            continue;
        }
        let since = newest.iter().find(|(id, _)| *id == root.id).map(|(_, t)| *t - US_PER_DAY);
        let Some(since) = since else { continue };
        let first_day = Civil::from_us(since).yyyymmdd();
        visit_files(root, Some(&first_day), &mut |rel, abs| {
            if !index.has_path(root.id, rel)? {
                index_file(index, root, rel, abs, true, &mut report)?;
            }
            Ok(())
        })?;
    }
    if !report.problems.is_empty() {
        log::info!("startup recovery: {} problems, {} repaired", report.problems.len(), report.repaired);
        for p in &report.problems {
            log::info!("  {p}");
        }
    }
    Ok(report)
}

fn recover_open_row(index: &Index, root: &Root, row: &ChunkRow, report: &mut Report) -> Result<()> {
    let abs = root.path().join(&row.rel_path);
    if !abs.exists() {
        index.delete_rows(&[row.id])?;
        return Ok(());
    }
    match examine(&abs, Some(row.codec), true, report)? {
        Some(s) => {
            log::info!(
                "recovered {} ({} frames, ends {})",
                abs.display(),
                s.frames,
                crate::time::format_rfc3339(s.end_us)
            );
            index.seal(&seal_from(row.id, &s))
        }
        None => {
            let _ = std::fs::remove_file(&abs);
            index.delete_rows(&[row.id])
        }
    }
}

/// Adds a file the index does not know (when `repair`), after cutting a torn tail.
fn index_file(index: &Index, root: &Root, rel: &Path, abs: &Path, repair: bool, report: &mut Report) -> Result<()> {
    report.problems.push(Problem::Unindexed { path: abs.to_owned() });
    let Some(parsed) = parse_rel_path(rel) else {
        return Ok(());
    };
    let Some(s) = examine(abs, None, repair, report)? else {
        report.problems.push(Problem::Undecodable { path: abs.to_owned() });
        return Ok(());
    };
    if repair {
        let n = NewChunk {
            camera: &parsed.camera,
            root_id: root.id,
            rel_path: rel,
            start_us: s.start_us,
            codec: s.codec.unwrap_or(crate::media::h26x::Codec::H264),
        };
        index.insert_sealed(&n, &seal_from(0, &s))?;
        report.repaired += 1;
    }
    Ok(())
}

/// Calls `f(rel, abs)` for every chunk file under `root`, in path order, one directory
/// level in memory at a time. With `from_day`, day directories before it are skipped.
fn visit_files(root: &Root, from_day: Option<&str>, f: &mut dyn FnMut(&Path, &Path) -> Result<()>) -> Result<()> {
    let sorted_dir = |p: &Path| -> Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .map_err(|e| Error::io(format!("listing {}", p.display()), e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        Ok(v)
    };
    for cam in sorted_dir(root.path())? {
        let cam_dir = root.path().join(&cam);
        if !crate::config::valid_camera_id(&cam) || !cam_dir.is_dir() {
            continue;
        }
        for day in sorted_dir(&cam_dir)? {
            if day.len() != 8 || from_day.is_some_and(|d| day.as_str() < d) {
                continue;
            }
            let day_dir = cam_dir.join(&day);
            if !day_dir.is_dir() {
                continue;
            }
            for name in sorted_dir(&day_dir)? {
                if !name.ends_with(EXTENSION) {
                    continue;
                }
                let rel: PathBuf = [cam.as_str(), day.as_str(), name.as_str()].iter().collect();
                if parse_rel_path(&rel).is_some() {
                    f(&rel, &day_dir.join(&name))?;
                }
            }
        }
    }
    Ok(())
}

/// `edgenvr check`: every row against its file and every file against the index; with
/// `repair`, fixes what it finds (torn tails cut, unknown files indexed, rows of missing
/// files dropped, stale rows rewritten).
pub fn check(index: &Arc<Index>, storage: &Arc<Storage>, repair: bool) -> Result<Report> {
    let mut report = Report::default();
    if repair {
        let r = recover_at_startup(index, storage)?;
        report.problems.extend(r.problems);
        report.repaired += r.repaired;
        report.files_checked += r.files_checked;
    } else {
        for row in index.chunks_in_state(ChunkState::Open)?.iter().chain(&index.chunks_in_state(ChunkState::Deleting)?)
        {
            report.problems.push(Problem::Unfinished { id: row.id });
        }
    }
    for root in storage.roots() {
        if root.check_usable().is_err() {
            report.roots_absent.push(root.path().to_owned());
            continue;
        }
        // Rows → files, a page at a time.
        let mut after_id = 0;
        loop {
            let page = index.chunks_on_root_page(root.id, after_id, 512)?;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            for row in page {
                check_row(index, root, &row, repair, &mut report)?;
            }
        }
        // Files → rows.
        visit_files(root, None, &mut |rel, abs| {
            if !index.has_path(root.id, rel)? {
                index_file(index, root, rel, abs, repair, &mut report)?;
            }
            Ok(())
        })?;
    }
    Ok(report)
}

fn check_row(index: &Index, root: &Root, row: &ChunkRow, repair: bool, report: &mut Report) -> Result<()> {
    if row.state != ChunkState::Sealed {
        return Ok(());
    }
    let abs = root.path().join(&row.rel_path);
    if !abs.exists() {
        report.problems.push(Problem::MissingFile { id: row.id, path: abs });
        if repair {
            index.delete_rows(&[row.id])?;
            report.repaired += 1;
        }
        return Ok(());
    }
    match examine(&abs, Some(row.codec), repair, report)? {
        None => {
            report.problems.push(Problem::Undecodable { path: abs.clone() });
            if repair {
                std::fs::remove_file(&abs).map_err(|e| Error::io(format!("removing {}", abs.display()), e))?;
                index.delete_rows(&[row.id])?;
                report.repaired += 1;
            }
        }
        Some(s) => {
            if s.good_len != row.bytes
                || s.frames != row.frames
                || s.end_us != row.end_us
                || row.records != Some(s.records)
            {
                report.problems.push(Problem::Stale { id: row.id, path: abs });
                if repair {
                    index.seal(&seal_from(row.id, &s))?;
                    report.repaired += 1;
                }
            }
        }
    }
    Ok(())
}
