//! Summarises a chunk file by reading it once: time span, frames, keyframe offsets, and
//! where it stops being valid. Used by startup recovery, `check` and import.

use super::reader::{ChunkReader, ReadError};
use crate::h264::{Codec, NalKind};
use std::path::Path;

/// What a scan learned about a chunk file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkSummary {
    /// Timestamp of the first record, µs.
    pub start_us: i64,
    /// Timestamp of the last complete frame, µs.
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
}

impl ChunkSummary {
    /// True when the file needs no repair.
    pub fn is_clean(&self) -> bool {
        self.error.is_none() && self.good_len == self.file_len
    }
}

/// Guesses the codec from a stream's first NAL: H.265 streams begin with a VPS (type 32),
/// H.264 ones with an SPS (type 7).
fn guess_codec(first_nal: &[u8]) -> Codec {
    if Codec::H265.classify(first_nal) == NalKind::Vps {
        Codec::H265
    } else {
        Codec::H264
    }
}

/// Reads `path` to the end (or the first bad record) and summarises it. Memory is bounded by
/// the keyframe list (one entry per GOP), never by NAL sizes.
pub fn scan_file(path: &Path, codec: Option<Codec>) -> std::io::Result<ChunkSummary> {
    let mut r = ChunkReader::open(path)?;
    let mut s = ChunkSummary { file_len: std::fs::metadata(path)?.len(), codec, ..Default::default() };
    let mut prefix = Vec::with_capacity(2);
    // The timestamp group being read: its ts, first offset, and what it holds.
    let mut group: Option<(i64, u64, bool, bool)> = None;
    let mut first = true;
    let finish = |s: &mut ChunkSummary, g: (i64, u64, bool, bool)| {
        let (ts, off, slice, idr) = g;
        if slice {
            if s.frames == 0 {
                s.starts_with_keyframe = idr;
            }
            s.frames += 1;
            s.end_us = ts;
        }
        if idr {
            s.keyframes.push((ts, off));
        }
    };
    loop {
        let offset = r.good_len();
        match r.next_prefix(&mut prefix, 2) {
            Ok(Some(h)) => {
                s.records += 1;
                if first {
                    s.start_us = h.ts_us;
                    s.end_us = h.ts_us;
                    s.codec = Some(s.codec.unwrap_or_else(|| guess_codec(&prefix)));
                    first = false;
                }
                let kind = s.codec.expect("set at first record").classify(&prefix);
                match &mut group {
                    Some(g) if g.0 == h.ts_us => {
                        g.2 |= kind.is_slice();
                        g.3 |= kind == NalKind::IdrSlice;
                    }
                    _ => {
                        if let Some(g) = group.take() {
                            finish(&mut s, g);
                        }
                        group = Some((h.ts_us, offset, kind.is_slice(), kind == NalKind::IdrSlice));
                    }
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
    if let Some(g) = group.take() {
        finish(&mut s, g);
    }
    s.good_len = r.good_len();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::format::append_record;
    use super::*;

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
