//! HLS for browsers without Media Source Extensions (iPhone Safari): the live fragments
//! grouped into one segment per GOP, a small ring of the newest segments, and the playlist
//! that lists them (RFC 8216, fMP4 segments with `EXT-X-MAP`).
//!
//! The ring exists only while HLS clients are active (the hub creates it on the first
//! request and drops it [`HLS_IDLE`] after the last). Its segments are the hub's per-frame
//! fragments (`moof`+`mdat`, shared `Bytes`, not copied), so a segment is served as the list
//! of its fragments.
//!
//! Memory: at most [`RING_SEGMENTS`] finished segments plus the one being filled, and never
//! more than [`RING_BYTES`] of fragments in all (oldest segments go first); a GOP longer than
//! [`SEGMENT_MAX_BYTES`] is not kept (the next segment is marked as a discontinuity).

use super::fmp4::Fragment;
use crate::time::format_rfc3339;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt::Write;
use std::time::Duration;

/// Finished segments kept (the playlist's length).
pub const RING_SEGMENTS: usize = 5;
/// Most fragment bytes the ring holds, finished and open segments together.
pub const RING_BYTES: usize = 8 << 20;
/// Largest segment kept (one GOP of a high-bitrate camera with a long GOP is dropped).
pub const SEGMENT_MAX_BYTES: usize = 4 << 20;
/// The ring is dropped this long after the last HLS request.
pub const HLS_IDLE: Duration = Duration::from_secs(30);

/// One GOP of fragments.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Media sequence number.
    pub seq: u64,
    /// The stream generation (init segment) its fragments belong to.
    pub generation: u64,
    /// Wall-clock time of its first frame, µs.
    pub start_us: i64,
    /// Wall-clock time where it ends (the next segment's start, or its last frame plus one
    /// frame), µs.
    pub end_us: i64,
    /// Its fragments, in order.
    pub parts: Vec<Bytes>,
    /// Their total length.
    pub bytes: usize,
    /// Something is missing before it (a dropped segment or a new stream).
    pub discontinuity: bool,
}

/// The newest segments of one camera.
#[derive(Default)]
pub struct HlsRing {
    done: VecDeque<Segment>,
    open: Option<Segment>,
    next_seq: u64,
    /// Discontinuities that have left the ring (for `EXT-X-DISCONTINUITY-SEQUENCE`).
    discontinuity_seq: u64,
    /// The next segment must be marked as a discontinuity.
    pending_discontinuity: bool,
}

impl HlsRing {
    /// Adds a fragment of stream `generation` with expected duration `duration_us`; a
    /// keyframe finishes the open segment and starts the next. Returns true when a segment
    /// was finished.
    pub fn push(&mut self, generation: u64, frag: &Fragment, duration_us: i64) -> bool {
        let mut finished = false;
        if frag.keyframe {
            if let Some(mut s) = self.open.take() {
                s.end_us = frag.ts_us;
                if s.generation != generation {
                    self.pending_discontinuity = true;
                }
                self.done.push_back(s);
                finished = true;
            }
            let discontinuity = std::mem::take(&mut self.pending_discontinuity)
                || self.done.back().is_some_and(|s| s.generation != generation);
            self.open = Some(Segment {
                seq: self.next_seq,
                generation,
                start_us: frag.ts_us,
                end_us: frag.ts_us,
                parts: Vec::new(),
                bytes: 0,
                discontinuity,
            });
            self.next_seq += 1;
        }
        if let Some(s) = self.open.as_mut() {
            if s.generation != generation || s.bytes + frag.bytes.len() > SEGMENT_MAX_BYTES {
                // A stream change mid-GOP, or a GOP too large to keep: drop it.
                self.open = None;
                self.pending_discontinuity = true;
            } else {
                s.parts.push(frag.bytes.clone());
                s.bytes += frag.bytes.len();
                s.end_us = frag.ts_us + duration_us;
            }
        }
        self.evict();
        finished
    }

    /// Marks the next segment as following a break (the stream ended).
    pub fn break_stream(&mut self) {
        if self.open.take().is_some() || !self.done.is_empty() {
            self.pending_discontinuity = true;
        }
    }

    fn evict(&mut self) {
        let open = self.open.as_ref().map_or(0, |s| s.bytes);
        while self.done.len() > RING_SEGMENTS || (open + self.bytes_done() > RING_BYTES && !self.done.is_empty()) {
            if let Some(s) = self.done.pop_front() {
                if s.discontinuity {
                    self.discontinuity_seq += 1;
                }
            }
        }
    }

    fn bytes_done(&self) -> usize {
        self.done.iter().map(|s| s.bytes).sum()
    }

    /// Fragment bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes_done() + self.open.as_ref().map_or(0, |s| s.bytes)
    }

    /// Finished segments.
    pub fn segments(&self) -> usize {
        self.done.len()
    }

    /// A finished segment by sequence number.
    pub fn segment(&self, seq: u64) -> Option<&Segment> {
        self.done.iter().find(|s| s.seq == seq)
    }

    /// The playlist, with URIs under `prefix` (`{prefix}init-{generation}.mp4`,
    /// `{prefix}{seq}.m4s`); `None` while no segment is finished.
    pub fn playlist(&self, prefix: &str) -> Option<String> {
        let first = self.done.front()?;
        let target = self.done.iter().map(|s| (s.end_us - s.start_us + 999_999) / 1_000_000).max().unwrap_or(1).max(1);
        let mut p = String::with_capacity(256 + 160 * self.done.len());
        let _ = write!(
            p,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{}\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
            first.seq, self.discontinuity_seq
        );
        let mut generation = None;
        for (i, s) in self.done.iter().enumerate() {
            if s.discontinuity && i > 0 {
                p.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if generation != Some(s.generation) {
                let _ = writeln!(p, "#EXT-X-MAP:URI=\"{prefix}init-{}.mp4\"", s.generation);
                generation = Some(s.generation);
            }
            let _ = write!(
                p,
                "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.3},\n{prefix}{}.m4s\n",
                format_rfc3339(s.start_us),
                (s.end_us - s.start_us) as f64 / 1e6,
                s.seq
            );
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(ts_us: i64, keyframe: bool, len: usize) -> Fragment {
        Fragment { bytes: Bytes::from(vec![0u8; len]), ts_us, keyframe }
    }

    #[test]
    fn segments_are_gops_and_the_ring_is_bounded() {
        let mut r = HlsRing::default();
        assert!(r.playlist("live/").is_none());
        // 10 GOPs of 1 s at 10 fps, 1 KB per frame.
        for i in 0..100i64 {
            r.push(1, &frag(1_000_000_000 + i * 100_000, i % 10 == 0, 1000), 100_000);
        }
        assert_eq!(r.segments(), RING_SEGMENTS);
        assert!(r.bytes() <= RING_BYTES);
        let s = r.segment(8).unwrap();
        assert_eq!((s.parts.len(), s.start_us, s.end_us), (10, 1_008_000_000, 1_009_000_000));
        assert!(r.segment(3).is_none(), "evicted");
        let p = r.playlist("live/").unwrap();
        assert!(p.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:4\n"), "{p}");
        assert_eq!(p.matches("#EXTINF:1.000,").count(), 5, "{p}");
        assert_eq!(p.matches("#EXT-X-MAP:URI=\"live/init-1.mp4\"").count(), 1);
        assert!(p.contains("live/8.m4s\n"));
        assert!(p.contains("#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:16:44.000Z"), "{p}");
    }

    #[test]
    fn a_new_stream_or_a_dropped_gop_is_a_discontinuity() {
        let mut r = HlsRing::default();
        for i in 0..20i64 {
            r.push(1, &frag(i * 100_000, i % 10 == 0, 100), 100_000);
        }
        // Generation 2 starts: the finished segment of generation 1 stays, the new one is
        // marked and gets its own map.
        for i in 20..40i64 {
            r.push(2, &frag(i * 100_000, i % 10 == 0, 100), 100_000);
        }
        let p = r.playlist("").unwrap();
        assert_eq!(p.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{p}");
        assert!(p.contains("init-1.mp4") && p.contains("init-2.mp4"), "{p}");
        // A GOP larger than a segment may be is dropped; the one after it is marked.
        r.push(2, &frag(4_000_000, true, SEGMENT_MAX_BYTES), 100_000);
        r.push(2, &frag(4_100_000, false, 100), 100_000);
        r.push(2, &frag(5_000_000, true, 100), 100_000);
        r.push(2, &frag(6_000_000, true, 100), 100_000);
        assert!(r.segment(4).is_none_or(|s| s.bytes <= SEGMENT_MAX_BYTES));
        assert!(r.segment(5).unwrap().discontinuity);
        assert!(r.bytes() <= RING_BYTES);
    }
}
