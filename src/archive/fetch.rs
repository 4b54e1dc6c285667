//! Footage the reaper removed locally but an archive holds, fetched back for an export.
//!
//! Before an export is planned, every archived-only chunk in its range is downloaded,
//! streamed to a file in the fetch cache (`archive-cache/` beside the index) and checked
//! against the MD5 recorded at upload; the planner then reads those files like any chunk,
//! so the export keeps its exact-length virtual-file model. A chunk archived with its audio
//! sibling gets the sibling back beside it, checked the same way, under the sibling's name
//! for the fetched chunk (`{id}.chunk` and `{id}.audio`, `chunk::path::sibling_path`), so
//! the export finds it as it finds a local chunk's. A sibling that cannot be fetched (the
//! object is missing or differs) is logged and the chunk is exported without its audio. The
//! cache is capped at [`CACHE_BYTES`] (audio included): the least recently used files go
//! first, and an export whose archived part alone is larger is refused with a clear error
//! (export a shorter range).

use super::s3::Store;
use super::settings::{read_login, ArchiveConfig};
use super::throttle::PacedReader;
use crate::chunk::path::sibling_path;
use crate::error::{Error, Result};
use crate::index::archive::{audio_key, ArchivedCopy};
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

/// Fetches back the archived-only chunks of `camera` in `[from_us, to_us]` (and their audio
/// siblings) into the cache `storage` knows (`Storage::set_fetch_dir`). Returns how many
/// chunks were downloaded.
pub fn fetch_range(
    index: &Index,
    storage: &Storage,
    archive: &[ArchiveConfig],
    (camera, from_us, to_us): (&str, i64, i64),
) -> Result<usize> {
    let mut rows: Vec<(ChunkRow, Option<ArchivedCopy>)> = Vec::new();
    for r in index.chunks_for_camera(camera, from_us, to_us)? {
        if r.state == ChunkState::Archived {
            let copy = index.archive_copy(r.id)?;
            rows.push((r, copy));
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    let audio_len = |c: &Option<ArchivedCopy>| c.as_ref().and_then(|c| c.audio.as_ref()).map_or(0, |a| a.bytes);
    let need: u64 = rows.iter().map(|(r, c)| r.bytes + audio_len(c)).sum();
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
    let keep: Vec<PathBuf> = rows
        .iter()
        .filter_map(|(r, _)| storage.fetched_path(r.id))
        .flat_map(|p| [sibling_path(&p), Some(p)])
        .flatten()
        .collect();
    evict(&dir, CACHE_BYTES - need, &keep)?;
    let mut fetched = 0;
    for (row, copy) in &rows {
        let path = storage.fetched_path(row.id).expect("the fetch directory is set");
        if !cached(&path, row.bytes) {
            let copy = copy.as_ref().ok_or_else(|| err!(NotFound, "chunk {} has no archived copy", row.id))?;
            fetch_one(archive, copy, (&copy.key, row.bytes, &copy.md5), &path)?;
            fetched += 1;
        }
        let Some((copy, a)) = copy.as_ref().and_then(|c| Some((c, c.audio.as_ref()?))) else { continue };
        let (Some(key), Some(sib)) = (audio_key(&copy.key), sibling_path(&path)) else { continue };
        if !cached(&sib, a.bytes) {
            if let Err(e) = fetch_one(archive, copy, (&key, a.bytes, &a.md5), &sib) {
                log::warn!("chunk {}: exported without its audio: {e}", row.id);
            }
        }
    }
    Ok(fetched)
}

/// Whether the cache holds `path` at its full length.
fn cached(path: &Path, len: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == len)
}

/// Downloads object `key` of `copy`'s target to `path` through a `.part` file, checking its
/// length and MD5.
fn fetch_one(
    archive: &[ArchiveConfig],
    copy: &ArchivedCopy,
    (key, len, md5): (&str, u64, &str),
    path: &Path,
) -> Result<()> {
    let location = &copy.location;
    let cfg = archive
        .iter()
        .find(|a| a.holds(location))
        .ok_or_else(|| err!(NotFound, "{key} is archived at {location}, which is no longer configured"))?;
    let store = Store::new(cfg, &read_login(&cfg.credentials_file)?)?;
    let mut body = PacedReader::new(store.get(key, len + 1)?, None, crate::shutdown::Shutdown::new());
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let mut out = std::fs::File::create(&part).map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
    std::io::copy(&mut body, &mut out).map_err(|e| Error::io(format!("GET {key}"), e))?;
    let got = body.md5_hex();
    if std::fs::metadata(&part).map(|m| m.len()).ok() != Some(len) || got != md5 {
        let _ = std::fs::remove_file(&part);
        bail!(DataLoss, "GET {key}: the object is not the file that was archived (length or MD5 differs)");
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
