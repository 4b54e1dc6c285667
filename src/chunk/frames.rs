//! Groups a chunk's records into frames: a frame is the run of records sharing one
//! timestamp. The scanner, the export planner and the export's sample tables all read
//! chunks this way, through [`FrameGroups`].

use super::format::HEADER_LEN;
use super::reader::{ChunkReader, ReadError};
use crate::media::h26x::{Codec, NalKind};
use std::io::Read;

/// One timestamp's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameGroup {
    /// The records' timestamp, µs.
    pub ts_us: i64,
    /// Offset of the first record.
    pub offset: u64,
    /// Offset just past the last record.
    pub end: u64,
    /// Records in the group.
    pub records: u64,
    /// NAL bytes in the group (without record headers).
    pub nal_bytes: u64,
    /// Whether it holds a slice (is a picture, not only headers).
    pub has_slice: bool,
    /// Whether it holds an IDR/IRAP slice.
    pub has_idr: bool,
}

/// An iterator over the frame groups of a chunk, from the reader's position.
pub struct FrameGroups<R> {
    reader: ChunkReader<R>,
    codec: Option<Codec>,
    /// Stop before the first record at or past this offset.
    max_off: u64,
    /// Stop before the first record later than this timestamp.
    max_ts: i64,
    pending: Option<FrameGroup>,
    /// A read error met while a group was pending: reported on the next call.
    deferred: Option<ReadError>,
    prefix: Vec<u8>,
}

impl<R: Read> FrameGroups<R> {
    /// Groups from `reader`; `codec` is guessed from the first NAL when `None` (H.265
    /// streams start with a VPS, H.264 ones with an SPS).
    pub fn new(reader: ChunkReader<R>, codec: Option<Codec>) -> FrameGroups<R> {
        FrameGroups {
            reader,
            codec,
            max_off: u64::MAX,
            max_ts: i64::MAX,
            pending: None,
            deferred: None,
            prefix: Vec::new(),
        }
    }

    /// Stops before the record at `max_off` (exclusive) and before records later than
    /// `max_ts`.
    pub fn until(mut self, max_off: u64, max_ts: i64) -> FrameGroups<R> {
        self.max_off = max_off;
        self.max_ts = max_ts;
        self
    }

    /// The codec (known once a record was read).
    pub fn codec(&self) -> Option<Codec> {
        self.codec
    }

    /// Offset just past the last complete record read.
    pub fn good_len(&self) -> u64 {
        self.reader.good_len()
    }

    /// The next group; `None` at the end (or at a limit). A read error is returned after
    /// the complete group before it.
    pub fn next_group(&mut self) -> Result<Option<FrameGroup>, ReadError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        loop {
            let offset = self.reader.good_len();
            let header = match self.reader.peek_header() {
                Ok(h) => h.filter(|h| offset < self.max_off && h.ts_us <= self.max_ts),
                Err(e) => match self.pending.take() {
                    Some(g) => {
                        self.deferred = Some(e);
                        return Ok(Some(g));
                    }
                    None => return Err(e),
                },
            };
            let Some(h) = header else { return Ok(self.pending.take()) };
            if let Err(e) = self.reader.next_prefix(&mut self.prefix, 2) {
                match self.pending.take() {
                    Some(g) => {
                        self.deferred = Some(e);
                        return Ok(Some(g));
                    }
                    None => return Err(e),
                }
            }
            let codec = *self.codec.get_or_insert_with(|| {
                if Codec::H265.classify(&self.prefix) == NalKind::Vps {
                    Codec::H265
                } else {
                    Codec::H264
                }
            });
            let kind = codec.classify(&self.prefix);
            let end = offset + HEADER_LEN as u64 + h.len;
            match &mut self.pending {
                Some(g) if g.ts_us == h.ts_us => {
                    g.end = end;
                    g.records += 1;
                    g.nal_bytes += h.len;
                    g.has_slice |= kind.is_slice();
                    g.has_idr |= kind == NalKind::IdrSlice;
                }
                _ => {
                    let next = FrameGroup {
                        ts_us: h.ts_us,
                        offset,
                        end,
                        records: 1,
                        nal_bytes: h.len,
                        has_slice: kind.is_slice(),
                        has_idr: kind == NalKind::IdrSlice,
                    };
                    if let Some(done) = self.pending.replace(next) {
                        return Ok(Some(done));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::append_record;
    use super::*;

    fn groups(data: &[u8], max_off: u64, max_ts: i64) -> (Vec<FrameGroup>, bool) {
        let mut g = FrameGroups::new(ChunkReader::with_len(data, Some(data.len() as u64)), None).until(max_off, max_ts);
        let mut out = Vec::new();
        loop {
            match g.next_group() {
                Ok(Some(x)) => out.push(x),
                Ok(None) => return (out, false),
                Err(_) => return (out, true),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any bytes group into frames that tile the good prefix in order and
        /// respect the limits.
        #[test]
        fn fuzz_frame_groups(
            data in crate::testutil::chunk_like_bytes(),
            max_off in proptest::prelude::any::<u16>(),
            max_ts in proptest::prelude::any::<u32>(),
            limited in proptest::prelude::any::<bool>(),
        ) {
            let (max_off, max_ts) = if limited { (max_off as u64, max_ts as i64) } else { (u64::MAX, i64::MAX) };
            let (all, _) = groups(&data, max_off, max_ts);
            let mut at = 0;
            for g in &all {
                proptest::prop_assert_eq!(g.offset, at, "groups follow each other");
                proptest::prop_assert!(g.records >= 1 && g.end <= data.len() as u64);
                proptest::prop_assert_eq!(g.end - g.offset, g.nal_bytes + HEADER_LEN as u64 * g.records);
                proptest::prop_assert!(!g.has_idr || g.has_slice);
                proptest::prop_assert!(g.offset < max_off && g.ts_us <= max_ts);
                at = g.end;
            }
        }
    }

    #[test]
    fn groups_by_timestamp_honours_limits_and_defers_errors() {
        let mut b = Vec::new();
        append_record(&mut b, 10, &[0x67, 0]);
        append_record(&mut b, 10, &[0x65, 0, 0]);
        let g2 = b.len() as u64;
        append_record(&mut b, 20, &[0x41, 1]);
        append_record(&mut b, 20, &[0x41, 2]);
        let g3 = b.len() as u64;
        append_record(&mut b, 30, &[0x06, 9]);
        let (all, err) = groups(&b, u64::MAX, i64::MAX);
        assert!(!err);
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].records, all[0].has_idr, all[0].end), (2, true, g2));
        assert_eq!((all[1].offset, all[1].records, all[1].nal_bytes, all[1].has_slice), (g2, 2, 4, true));
        assert!(!all[2].has_slice);
        assert_eq!(groups(&b, u64::MAX, 25).0.len(), 2, "stops before ts 30");
        assert_eq!(groups(&b, g3, i64::MAX).0.len(), 2, "stops before offset g3");
        // A torn last record: the complete groups come first, then the error.
        let (some, err) = groups(&b[..b.len() - 1], u64::MAX, i64::MAX);
        assert_eq!((some.len(), err), (2, true));
    }
}
