//! Footage the reaper removed locally but an archive holds, fetched back for an export.
//!
//! Before an export is planned, every archived-only chunk in its range is downloaded,
//! streamed to a file in the fetch cache (`archive-cache/` beside the index) and checked
//! against the MD5 recorded at upload; the planner then reads those files like any chunk,
//! so the export keeps its exact-length virtual-file model. The cache is capped at
//! [`CACHE_BYTES`]: the least recently used files go first, and an export whose archived
//! part alone is larger is refused with a clear error (export a shorter range).

use super::s3::Store;
use super::settings::{read_login, ArchiveConfig};
use super::throttle::PacedReader;
use crate::error::{Error, Result};
use crate::index::{ChunkRow, ChunkState, Index};
use crate::storage::Storage;
use crate::{bail, err};
use std::path::{Path, PathBuf};

/// Most bytes the fetch cache keeps on disk.
pub const CACHE_BYTES: u64 = 1 << 30;

/// The fetch cache's directory for an index at `index_path`.
pub fn cache_dir(index_path: &Path) -> PathBuf {
    index_path.parent().unwrap_or(Path::new(".")).join("archive-cache")
}

/// Fetches back the archived-only chunks of `camera` in `[from_us, to_us]` into the cache
/// `storage` knows (`Storage::set_fetch_dir`). Returns how many were downloaded.
pub fn fetch_range(
    index: &Index,
    storage: &Storage,
    archive: &[ArchiveConfig],
    (camera, from_us, to_us): (&str, i64, i64),
) -> Result<usize> {
    let rows: Vec<ChunkRow> = index
        .chunks_for_camera(camera, from_us, to_us)?
        .into_iter()
        .filter(|r| r.state == ChunkState::Archived)
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let need: u64 = rows.iter().map(|r| r.bytes).sum();
    if need > CACHE_BYTES {
        bail!(
            InvalidArgument,
            "{need} bytes of this range are only in the archive, more than the fetch cache holds ({CACHE_BYTES}); export a shorter range"
        );
    }
    let Some(dir) = storage.fetched_path(0).and_then(|p| p.parent().map(Path::to_owned)) else {
        bail!(Internal, "no fetch cache set up for archived footage");
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let keep: Vec<PathBuf> = rows.iter().filter_map(|r| storage.fetched_path(r.id)).collect();
    evict(&dir, CACHE_BYTES - need, &keep)?;
    let mut fetched = 0;
    for row in &rows {
        let path = storage.fetched_path(row.id).expect("the fetch directory is set");
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == row.bytes) {
            continue;
        }
        fetch_one(index, archive, row, &path)?;
        fetched += 1;
    }
    Ok(fetched)
}

/// Downloads one chunk to `path` through a `.part` file, checking its length and MD5.
fn fetch_one(index: &Index, archive: &[ArchiveConfig], row: &ChunkRow, path: &Path) -> Result<()> {
    let (location, key, md5) =
        index.archive_copy(row.id)?.ok_or_else(|| err!(NotFound, "chunk {} has no archived copy", row.id))?;
    let cfg = archive
        .iter()
        .find(|a| a.holds(&location))
        .ok_or_else(|| err!(NotFound, "chunk {} is archived at {location}, which is no longer configured", row.id))?;
    let store = Store::new(cfg, &read_login(&cfg.credentials_file)?)?;
    let mut body = PacedReader::new(store.get(&key, row.bytes + 1)?, None, crate::shutdown::Shutdown::new());
    let part = path.with_extension("part");
    let mut out = std::fs::File::create(&part).map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
    std::io::copy(&mut body, &mut out).map_err(|e| Error::io(format!("GET {key}"), e))?;
    let got = body.md5_hex();
    if std::fs::metadata(&part).map(|m| m.len()).ok() != Some(row.bytes) || got != md5 {
        let _ = std::fs::remove_file(&part);
        bail!(DataLoss, "GET {key}: the object is not the chunk that was archived (length or MD5 differs)");
    }
    std::fs::rename(&part, path).map_err(|e| Error::io(format!("renaming {}", part.display()), e))?;
    Ok(())
}

/// Removes the least recently fetched files until at most `budget` bytes remain, never
/// one in `keep`.
fn evict(dir: &Path, budget: u64, keep: &[PathBuf]) -> Result<()> {
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .filter(|(_, _, p)| !keep.contains(p))
        .collect();
    let kept: u64 = keep.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut total = kept + files.iter().map(|f| f.1).sum::<u64>();
    files.sort();
    for (_, len, p) in files {
        if total <= budget {
            break;
        }
        if std::fs::remove_file(&p).is_ok() {
            total -= len;
        }
    }
    Ok(())
}
