//! Where a chunk file lives: `{root}/{camera}/YYYYMMDD/{camera}.YYYYMMDD.HHMM.chunk` (UTC).
//!
//! Files are never overwritten. If the name for a minute is taken (the service restarted
//! within that minute, or the clock stepped back), the next free name
//! `{camera}.YYYYMMDD.HHMM.{n}.chunk` (n = 1, 2, ...) is used; PyNVR's tools list `*.chunk`
//! and read these too.

use crate::config::valid_camera_id;
use crate::time::{parse_yyyymmdd_hhmm, Civil};
use std::path::{Path, PathBuf};

/// File-name suffix of every chunk.
pub const EXTENSION: &str = "chunk";

/// File-name suffix of a chunk's audio sibling (`docs/design/audio.md`): not `*.chunk`, so
/// PyNVR's tools, which list `*.chunk`, never take it for video.
pub const AUDIO_EXTENSION: &str = "audio";

/// The sibling's path for a chunk's path (relative or absolute): the `.chunk` suffix
/// replaced; `None` for a path that is not a chunk's.
pub fn sibling_path(chunk: &Path) -> Option<PathBuf> {
    let name = chunk.file_name()?.to_str()?;
    let stem = name.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    Some(chunk.with_file_name(format!("{stem}.{AUDIO_EXTENSION}")))
}

/// The chunk's path for an audio sibling's path; `None` for a path that is not a sibling's.
pub fn chunk_of_sibling(sibling: &Path) -> Option<PathBuf> {
    let name = sibling.file_name()?.to_str()?;
    let stem = name.strip_suffix(AUDIO_EXTENSION)?.strip_suffix('.')?;
    Some(sibling.with_file_name(format!("{stem}.{}", EXTENSION)))
}

/// The path of a chunk relative to its storage root. `seq` 0 is the plain name.
pub fn rel_path(camera: &str, start_us: i64, seq: u32) -> PathBuf {
    let c = Civil::from_us(start_us);
    let day = c.yyyymmdd();
    let name = if seq == 0 {
        format!("{camera}.{day}.{}.{EXTENSION}", c.hhmm())
    } else {
        format!("{camera}.{day}.{}.{seq}.{EXTENSION}", c.hhmm())
    };
    [camera, &day, &name].iter().collect()
}

/// What a chunk's relative path says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPath {
    /// Camera id (directory and name agree).
    pub camera: String,
    /// Start of the UTC minute in the name, µs.
    pub minute_us: i64,
    /// Collision sequence number (0 for the plain name).
    pub seq: u32,
}

/// Parses a relative path made by [`rel_path`] (or by PyNVR). Returns `None` for anything
/// else, so stray files in a storage root are never taken for footage.
pub fn parse_rel_path(rel: &Path) -> Option<ParsedPath> {
    // Exactly three normal components: no root, no `..`, no `.`, nothing else.
    let mut parts = rel.components().map(|c| match c {
        std::path::Component::Normal(p) => p.to_str(),
        _ => None,
    });
    let (Some(Some(camera)), Some(Some(day)), Some(Some(name)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !valid_camera_id(camera) {
        return None;
    }
    let rest = name.strip_prefix(camera)?.strip_prefix('.')?.strip_suffix(EXTENSION)?.strip_suffix('.')?;
    // rest = "YYYYMMDD.HHMM" or "YYYYMMDD.HHMM.N"
    let (stamp, seq) = match rest.len() {
        13 => (rest, 0),
        n if n > 14 && rest.as_bytes()[13] == b'.' => {
            let seq_str = &rest[14..];
            if seq_str.starts_with('0') || !seq_str.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&rest[..13], seq_str.parse().ok()?)
        }
        _ => return None,
    };
    if !stamp.starts_with(day) {
        return None;
    }
    let minute_us = parse_yyyymmdd_hhmm(stamp)?;
    Some(ParsedPath { camera: camera.to_owned(), minute_us, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_272_963_000_000; // 2026-11-21T14:56:03Z

    #[test]
    fn names_match_pynvr_layout() {
        assert_eq!(rel_path("door", T, 0), Path::new("door/20261121/door.20261121.1456.chunk"));
        assert_eq!(rel_path("door", T, 2), Path::new("door/20261121/door.20261121.1456.2.chunk"));
    }

    #[test]
    fn parse_round_trips_and_rejects_strays() {
        for seq in [0, 1, 17] {
            let p = parse_rel_path(&rel_path("cam_1", T, seq)).unwrap();
            assert_eq!(p, ParsedPath { camera: "cam_1".into(), minute_us: T - 3_000_000, seq });
        }
        for bad in [
            "door/20261121/door.20261121.1456.chunk.tmp",
            "door/20261121/other.20261121.1456.chunk",
            "door/20261120/door.20261121.1456.chunk",
            "door/20261121/door.20261121.1456.0.chunk",
            "door/20261121/door.20261121.1456.x.chunk",
            "door/20261121/door.20261121.2556.chunk",
            "door/door.20261121.1456.chunk",
            "../20261121/...20261121.1456.chunk",
            "/door/20261121/door.20261121.1456.chunk",
            "./door/20261121/door.20261121.1456.chunk",
            "door/20261121/door.20261121.1456.chunk/x",
            "index.db",
        ] {
            assert_eq!(parse_rel_path(Path::new(bad)), None, "{bad}");
        }
    }
}
