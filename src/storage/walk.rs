//! Finding chunk files in a storage root, for startup recovery, `check` and the background
//! indexer: `{root}/{camera}/{YYYYMMDD}/*.chunk`, one directory's names in memory at a
//! time (at most [`MAX_DIR_ENTRIES`]), in name order (oldest day first). Audio siblings
//! (`*.audio`, `docs/design/audio.md`) whose chunk is not in their directory are offered
//! too: nothing else would ever remove them.
//!
//! A camera or day directory that is a symlink is not entered, and a chunk-named entry that
//! is not a regular file is not offered as a file: both are reported as skipped. Listing
//! follows nothing, and every file offered is then opened through
//! [`confined`](super::confined), which re-checks each component, so a directory swapped
//! for a symlink after the listing is still refused.

use crate::chunk::path::{chunk_of_sibling, parse_rel_path, AUDIO_EXTENSION, EXTENSION};
use crate::config::valid_camera_id;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Most names read from one directory (a day holds at most 1440 minutes' chunks, a camera
/// directory about 45 years of days); the rest of a larger, hostile directory is ignored
/// with a warning.
pub const MAX_DIR_ENTRIES: usize = 16_384;

/// What the walk offers.
pub enum Found<'a> {
    /// A day directory and its chunk files (regular files with chunk names), sorted.
    Day {
        /// Camera directory name.
        camera: &'a str,
        /// Day directory name (`YYYYMMDD`).
        day: &'a str,
        /// File names.
        files: &'a [String],
    },
    /// An audio sibling (a regular file) whose chunk is not in its directory: the chunk was
    /// lost or removed by hand, and the audio alone can never be exported.
    OrphanAudio {
        /// Path relative to the root.
        rel: PathBuf,
    },
    /// A chunk-like path left alone: a symlink or not a regular file.
    Skipped {
        /// Path relative to the root.
        rel: PathBuf,
        /// Why.
        why: &'static str,
    },
}

/// Whether the walk goes on after a callback.
pub type Flow = std::ops::ControlFlow<()>;

struct Entry {
    name: String,
    kind: Option<std::fs::FileType>,
}

/// The sorted entries of `dir` (never following symlinks: `file_type` is the entry's own).
fn list(dir: &Path) -> Result<Vec<Entry>> {
    let mut v = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for e in rd.flatten() {
        if v.len() == MAX_DIR_ENTRIES {
            log::warn!("{} holds more than {MAX_DIR_ENTRIES} entries; the rest are not looked at", dir.display());
            break;
        }
        if let Ok(name) = e.file_name().into_string() {
            v.push(Entry { name, kind: e.file_type().ok() });
        }
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// Calls `f` for each day directory of each camera directory under `root` (days before
/// `from_day` skipped), and for each chunk-like entry it leaves alone.
pub fn walk(root: &Path, from_day: Option<&str>, f: &mut dyn FnMut(Found<'_>) -> Result<Flow>) -> Result<()> {
    for cam in list(root)? {
        if !valid_camera_id(&cam.name) {
            continue;
        }
        let Some(kind) = cam.kind else { continue };
        if kind.is_symlink() {
            let rel = PathBuf::from(&cam.name);
            if f(Found::Skipped { rel, why: "a symlinked camera directory (not followed)" })?.is_break() {
                return Ok(());
            }
            continue;
        }
        if !kind.is_dir() {
            continue;
        }
        let cam_dir = root.join(&cam.name);
        for day in list(&cam_dir)? {
            let dated = day.name.len() == 8 && day.name.bytes().all(|b| b.is_ascii_digit());
            if !dated || from_day.is_some_and(|d| day.name.as_str() < d) {
                continue;
            }
            let Some(kind) = day.kind else { continue };
            if kind.is_symlink() {
                let rel: PathBuf = [&cam.name, &day.name].iter().collect();
                if f(Found::Skipped { rel, why: "a symlinked day directory (not followed)" })?.is_break() {
                    return Ok(());
                }
                continue;
            }
            if !kind.is_dir() {
                continue;
            }
            if visit_day(root, &cam.name, &day.name, f)?.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn visit_day(root: &Path, cam: &str, day: &str, f: &mut dyn FnMut(Found<'_>) -> Result<Flow>) -> Result<Flow> {
    let day_dir: PathBuf = [root, Path::new(cam), Path::new(day)].iter().collect();
    let mut files = Vec::new();
    let entries = list(&day_dir)?;
    // A listing cut at MAX_DIR_ENTRIES may miss a sibling's chunk: no orphans from it.
    let complete = entries.len() < MAX_DIR_ENTRIES;
    for e in &entries {
        if e.name.ends_with(AUDIO_EXTENSION) && e.kind.is_some_and(|k| k.is_file()) {
            let rel: PathBuf = [cam, day, &e.name].iter().collect();
            let chunk = chunk_of_sibling(&rel).filter(|c| parse_rel_path(c).is_some());
            let chunk_name = chunk.as_ref().and_then(|c| c.file_name()).and_then(|n| n.to_str());
            // Any entry of that name (a symlinked chunk too) keeps its sibling.
            let orphan =
                complete && chunk_name.is_some_and(|n| entries.binary_search_by(|x| x.name.as_str().cmp(n)).is_err());
            if orphan && f(Found::OrphanAudio { rel })?.is_break() {
                return Ok(Flow::Break(()));
            }
            continue;
        }
        if !e.name.ends_with(EXTENSION) {
            continue;
        }
        let rel: PathBuf = [cam, day, &e.name].iter().collect();
        if parse_rel_path(&rel).is_none() {
            continue;
        }
        if e.kind.is_some_and(|k| k.is_file()) {
            files.push(e.name.clone());
        } else if f(Found::Skipped { rel, why: "not a regular file (a symlink is not followed)" })?.is_break() {
            return Ok(Flow::Break(()));
        }
    }
    if files.is_empty() {
        return Ok(Flow::Continue(()));
    }
    f(Found::Day { camera: cam, day, files: &files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn offers_regular_chunk_files_and_reports_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let (root, outside) = (d.path().join("root"), d.path().join("outside"));
        for dir in ["root/cam/20261121", "root/cam/20261120", "outside/20261122", "root/cam/notaday"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        for f in [
            "root/cam/20261121/cam.20261121.1456.chunk",
            "root/cam/20261121/cam.20261121.1455.chunk",
            "root/cam/20261120/cam.20261120.0000.chunk",
            "root/cam/20261121/stray.txt",
            "root/cam/20261121/cam.20261121.1456.audio",
            "root/cam/20261121/cam.20261121.1457.audio",
            "root/cam/20261121/cam.20261121.1458.audio",
            "root/cam/notaday/cam.20261121.1456.chunk",
            "outside/x",
        ] {
            std::fs::write(d.path().join(f), b"").unwrap();
        }
        symlink(outside.join("x"), root.join("cam/20261121/cam.20261121.1457.chunk")).unwrap();
        symlink(outside.join("20261122"), root.join("cam/20261122")).unwrap();
        symlink(&outside, root.join("other")).unwrap();
        let mut seen = Vec::new();
        walk(&root, Some("20261121"), &mut |f| {
            seen.push(match f {
                Found::Day { camera, day, files } => format!("{camera}/{day}: {}", files.join(" ")),
                Found::Skipped { rel, .. } => format!("skipped {}", rel.display()),
                Found::OrphanAudio { rel } => format!("orphan {}", rel.display()),
            });
            Ok(Flow::Continue(()))
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                // 1456's and 1457's chunks are there (1457's a symlink); 1458's is not.
                "skipped cam/20261121/cam.20261121.1457.chunk",
                "orphan cam/20261121/cam.20261121.1458.audio",
                "cam/20261121: cam.20261121.1455.chunk cam.20261121.1456.chunk",
                "skipped cam/20261122",
                "skipped other",
            ]
        );
    }
}
