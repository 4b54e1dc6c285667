//! An MP4 export's `moov/udta`: its title (camera and range) and, when the range holds
//! events, one chapter per event (`docs/design/events.md`).
//!
//! Chapters are a Nero `chpl` box: ffmpeg and ffprobe (`-show_chapters`), and players built
//! on them (mpv, VLC's mp4 demuxer reads it too), show them; it is a few bytes per chapter
//! with no extra track, so the export's length and every byte stay known in advance.
//! Apple's players read chapters only from a QuickTime text track (`tref/chap`), which would
//! add a track and samples to the `mdat`: not done. The title is a QuickTime `©nam` string
//! in `udta`, which ffmpeg shows as `title`.
//!
//! Layout (all sizes from the titles' lengths):
//! ```text
//! udta ─ ©nam  u16 length, u16 language, UTF-8 title
//!      └ chpl  version 1, flags 0, u32 0, u8 count, count × (u64 start in 100 ns, u8 length, UTF-8 title)
//! ```

use crate::index::events::EventRow;
use crate::time::format_rfc3339;

/// Most chapters (`chpl` counts them in one byte).
pub const MAX_CHAPTERS: usize = 255;
/// Longest chapter title and movie title, bytes (one-byte length in `chpl`).
const MAX_TITLE: usize = 255;

/// One chapter: where it starts (µs since the epoch) and its title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chapter {
    /// Start, µs since the epoch.
    pub start_us: i64,
    /// Title.
    pub title: String,
}

fn box_header(out: &mut Vec<u8>, size: u64, kind: &[u8; 4]) {
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(kind);
}

fn u16b(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u32b(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn u64b(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// `s` cut to at most [`MAX_TITLE`] bytes on a character boundary.
fn bounded(s: &str) -> &str {
    let mut end = s.len().min(MAX_TITLE);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The chapters of `events` (in start order), at most [`MAX_CHAPTERS`].
pub fn of_events(events: &[EventRow]) -> Vec<Chapter> {
    events
        .iter()
        .take(MAX_CHAPTERS)
        .map(|e| Chapter { start_us: e.start_us, title: format!("{} (event {}, {})", e.label, e.id, e.source) })
        .collect()
}

/// The chapters of `camera`'s events overlapping `[from_us, to_us]`.
pub fn of_range(
    index: &impl crate::index::ReadChunks,
    camera: &str,
    from_us: i64,
    to_us: i64,
) -> crate::error::Result<Vec<Chapter>> {
    let f = crate::index::events::EventFilter { camera: Some(camera.to_owned()), from_us, to_us, label: None };
    Ok(of_events(&index.events_page(&f, (i64::MIN, 0), MAX_CHAPTERS)?))
}

/// The movie title: camera and range.
pub fn title(camera: &str, from_us: i64, to_us: i64) -> String {
    format!("{camera} {} to {}", format_rfc3339(from_us), format_rfc3339(to_us))
}

/// The `udta` box: `title`, and `chapters` placed on the presentation timeline, which
/// starts at `origin_us` (a chapter before it starts at 0).
pub fn udta(title: &str, chapters: &[Chapter], origin_us: i64) -> Vec<u8> {
    // Bounded: 255-byte titles, at most 255 chapters: the box is under 70 KiB.
    let chapters = &chapters[..chapters.len().min(MAX_CHAPTERS)];
    let title = bounded(title);
    let nam_len = 12 + title.len() as u64;
    let chpl_len = if chapters.is_empty() {
        0
    } else {
        17 + chapters.iter().map(|c| 9 + bounded(&c.title).len() as u64).sum::<u64>()
    };
    let mut out = Vec::with_capacity((8 + nam_len + chpl_len) as usize);
    box_header(&mut out, 8 + nam_len + chpl_len, b"udta");
    box_header(&mut out, nam_len, b"\xa9nam");
    u16b(&mut out, title.len() as u16);
    u16b(&mut out, 0x55c4); // language "und"
    out.extend_from_slice(title.as_bytes());
    if !chapters.is_empty() {
        box_header(&mut out, chpl_len, b"chpl");
        u32b(&mut out, 0x0100_0000); // version 1, flags 0
        u32b(&mut out, 0);
        out.push(chapters.len() as u8);
        for c in chapters {
            let t = bounded(&c.title);
            // Chapters are sorted by start; one before the origin starts at 0.
            u64b(&mut out, (c.start_us - origin_us).max(0) as u64 * 10);
            out.push(t.len() as u8);
            out.extend_from_slice(t.as_bytes());
        }
    }
    debug_assert_eq!(out.len() as u64, 8 + nam_len + chpl_len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udta_sizes_add_up_and_long_titles_are_cut_on_a_character() {
        let long = "é".repeat(200); // 400 bytes
        let ch = [Chapter { start_us: 5_000_000, title: long.clone() }, Chapter { start_us: 0, title: "a".into() }];
        let b = udta(&long, &ch, 1_000_000);
        assert_eq!(u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        let nam = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        assert_eq!(nam, 12 + 254, "cut to 254 bytes: 127 whole characters");
        let chpl = &b[8 + nam..];
        assert_eq!(&chpl[4..8], b"chpl");
        assert_eq!(chpl[16], 2);
        assert_eq!(u64::from_be_bytes(chpl[17..25].try_into().unwrap()), 40_000_000, "4 s in 100 ns");
        assert!(udta("t", &[], 0).len() == 8 + 13, "no chapters, no chpl");
    }
}
