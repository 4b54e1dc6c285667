//! Summarises a chunk file by reading it once: time span, frames, keyframe offsets, and
//! where it stops being valid. Used by startup recovery, `check` and import.

use super::frames::FrameGroups;
use super::reader::{ChunkReader, ReadError};
use crate::media::h26x::Codec;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// What a scan learned about a chunk file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkSummary {
    /// Timestamp of the first record, µs.
    pub start_us: i64,
    /// The latest timestamp of a complete frame, µs (with B-frames, not always the last
    /// frame's: frames are stored in decode order).
    pub end_us: i64,
    /// Bytes of complete records (the length to truncate a torn file to).
    pub good_len: u64,
    /// Size of the file on disk.
    pub file_len: u64,
    /// Frames (timestamp groups holding at least one slice).
    pub frames: u64,
    /// Complete records (NAL units).
    pub records: u64,
    /// `(timestamp, offset)` of every group that holds an IDR slice; offset is the group's
    /// first record, i.e. the parameter sets written before the IDR.
    pub keyframes: Vec<(i64, u64)>,
    /// Codec, guessed from the first NAL when not given.
    pub codec: Option<Codec>,
    /// Whether the first frame is a keyframe (a file that decodes alone).
    pub starts_with_keyframe: bool,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
    /// Length of the chunk's audio sibling on disk (`docs/design/audio.md`), 0 without one.
    /// A scan of the chunk alone leaves it 0; `storage::recovery::examine` and the
    /// background indexer fill it in, for the index's `audio_bytes`.
    pub audio_len: u64,
}

impl ChunkSummary {
    /// True when the file needs no repair.
    pub fn is_clean(&self) -> bool {
        self.error.is_none() && self.good_len == self.file_len
    }
}

/// Reads `path` to the end (or the first bad record) and summarises it. Memory is bounded by
/// the keyframe list (one entry per GOP), never by NAL sizes. A symlink is not followed.
pub fn scan_file(path: &Path, codec: Option<Codec>) -> std::io::Result<ChunkSummary> {
    scan_open(crate::storage::confined::open_read_nofollow(path)?, codec)
}

/// [`scan_file`] of a file already open (through
/// [`confined`](crate::storage::confined), say).
pub fn scan_open(file: File, codec: Option<Codec>) -> std::io::Result<ChunkSummary> {
    let len = file.metadata()?.len();
    scan_reader(file, len, codec)
}

/// Summarises `len` bytes read from `r` (any source: the fuzz targets feed it bytes).
pub fn scan_reader<R: Read>(r: R, len: u64, codec: Option<Codec>) -> std::io::Result<ChunkSummary> {
    let mut s = ChunkSummary { file_len: len, codec, ..Default::default() };
    let mut groups = FrameGroups::new(ChunkReader::with_len(r, Some(len)), codec);
    let mut first = true;
    loop {
        match groups.next_group() {
            Ok(Some(g)) => {
                if first {
                    (s.start_us, s.end_us, first) = (g.ts_us, g.ts_us, false);
                }
                s.records += g.records;
                if g.has_slice {
                    if s.frames == 0 {
                        s.starts_with_keyframe = g.has_idr;
                    }
                    s.frames += 1;
                    s.end_us = s.end_us.max(g.ts_us);
                }
                if g.has_idr {
                    s.keyframes.push((g.ts_us, g.offset));
                }
            }
            Ok(None) => break,
            Err(ReadError::Io(e)) => return Err(e),
            Err(e) => {
                s.error = Some(e.to_string());
                break;
            }
        }
    }
    s.codec = groups.codec().or(codec);
    s.good_len = groups.good_len();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::format::{append_record, HEADER_LEN};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any bytes scan without a panic into a summary whose counts fit the
        /// bytes, and that the index accepts as a row (`index::row`), so whatever recovery,
        /// `check --repair` or the background indexer write from a hostile file reads back.
        #[test]
        fn fuzz_scanner(data in prop_oneof![
            crate::testutil::chunk_like_bytes(),
            proptest::collection::vec(any::<u8>(), 0..200),
        ], codec in prop_oneof![Just(None), Just(Some(Codec::H264)), Just(Some(Codec::H265))]) {
            let s = scan_reader(&data[..], data.len() as u64, codec).unwrap();
            prop_assert!(s.good_len <= s.file_len);
            prop_assert!(s.records * HEADER_LEN as u64 <= s.good_len);
            prop_assert!(s.frames <= s.records);
            prop_assert!(s.keyframes.windows(2).all(|w| w[0].1 < w[1].1));
            prop_assert!(s.keyframes.last().is_none_or(|k| k.1 < s.good_len));
            prop_assert_eq!(s.is_clean(), s.good_len == data.len() as u64 && s.error.is_none());
            prop_assert_eq!(
                crate::index::row::check_counts(s.good_len, s.frames, Some(s.records), &s.keyframes),
                Ok(())
            );
        }
    }

    #[test]
    fn summarises_groups_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.chunk");
        let mut b = Vec::new();
        append_record(&mut b, 100, &[0x67, 0]);
        append_record(&mut b, 100, &[0x68, 0]);
        append_record(&mut b, 100, &[0x65, 0, 0]);
        append_record(&mut b, 200, &[0x41, 0]);
        append_record(&mut b, 200, &[0x41, 1]); // second slice of the same frame
        let k2 = b.len() as u64;
        append_record(&mut b, 300, &[0x67, 0]);
        append_record(&mut b, 300, &[0x68, 0]);
        append_record(&mut b, 300, &[0x65, 0]);
        let good = b.len() as u64;
        append_record(&mut b, 400, &[0x41; 30]);
        b.truncate(b.len() - 5);
        std::fs::write(&p, &b).unwrap();
        let s = scan_file(&p, None).unwrap();
        assert_eq!(s.codec, Some(Codec::H264));
        assert_eq!((s.start_us, s.end_us, s.frames, s.records), (100, 300, 3, 8));
        assert_eq!(s.keyframes, vec![(100, 0), (300, k2)]);
        assert_eq!(s.good_len, good);
        assert!(s.starts_with_keyframe);
        assert!(!s.is_clean());
        assert!(s.error.unwrap().contains("torn"));
    }
}
