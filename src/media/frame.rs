//! The unit that flows from a source to the chunk writer: one encoded frame.

use crate::media::h26x::{Codec, NalKind};
use std::ops::Range;

/// How far before the latest presentation time so far a frame may be presented and still
/// count as reordering (B-frames, `docs/design/time.md` rule 7) rather than a clock going
/// back. H.264 and H.265 allow at most 16 frames of reordering: 2 s covers that at 8 fps;
/// cameras use 1-4 frames.
pub const MAX_REORDER_US: i64 = 2_000_000;

/// One encoded video frame (an access unit): its NAL units without start codes, its
/// wall-clock timestamp, and whether decoding can start at it.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    /// µs since the epoch, from the source's clock (see `docs/design/time.md`).
    pub ts_us: i64,
    /// True when the frame holds an IDR (H.264) or IRAP (H.265) picture.
    pub keyframe: bool,
    /// The codec of the NALs.
    pub codec: Codec,
    /// The first frame after the source (re)connected: the writer starts a new chunk here,
    /// so the gap shows in the index.
    pub discontinuity: bool,
    /// The NAL bytes, back to back.
    data: Vec<u8>,
    /// Where each NAL lies in `data`.
    nals: Vec<Range<usize>>,
}

impl EncodedFrame {
    /// An empty frame to push NALs into.
    pub fn new(ts_us: i64, codec: Codec) -> EncodedFrame {
        EncodedFrame { ts_us, keyframe: false, codec, discontinuity: false, data: Vec::new(), nals: Vec::new() }
    }

    /// Builds a frame from an Annex B access unit; `keyframe` is derived from the NAL types.
    pub fn from_annex_b(ts_us: i64, codec: Codec, annex_b: &[u8]) -> EncodedFrame {
        let mut f = EncodedFrame::new(ts_us, codec);
        for nal in crate::media::h26x::split_annex_b(annex_b) {
            f.push_nal(nal);
        }
        f
    }

    /// Builds a frame from NALs with 4-byte big-endian length prefixes (as RTSP depacketizers
    /// and MP4 deliver them), taking the buffer over without copying it. Fails on a length
    /// that runs past the end.
    pub fn from_length_prefixed(ts_us: i64, codec: Codec, data: Vec<u8>) -> Result<EncodedFrame, &'static str> {
        let mut nals = Vec::new();
        let mut keyframe = false;
        let mut pos = 0;
        while pos < data.len() {
            let Some(prefix) = data.get(pos..pos + 4) else { return Err("truncated NAL length prefix") };
            let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            let start = pos + 4;
            if len > data.len() - start {
                return Err("NAL length runs past the end of the frame");
            }
            if len > 0 {
                keyframe |= codec.classify(&data[start..start + len]) == NalKind::IdrSlice;
                nals.push(start..start + len);
            }
            pos = start + len;
        }
        Ok(EncodedFrame { ts_us, keyframe, codec, discontinuity: false, data, nals })
    }

    /// Appends a NAL (without start code), updating `keyframe`.
    pub fn push_nal(&mut self, nal: &[u8]) {
        if self.codec.classify(nal) == NalKind::IdrSlice {
            self.keyframe = true;
        }
        let start = self.data.len();
        self.data.extend_from_slice(nal);
        self.nals.push(start..self.data.len());
    }

    /// The NAL units in order.
    pub fn nals(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.nals.iter().map(|r| &self.data[r.clone()])
    }

    /// Total NAL bytes.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Whether the frame carries at least one slice (is a picture, not just headers).
    pub fn has_slice(&self) -> bool {
        self.nals().any(|n| self.codec.classify(n).is_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_parses_and_rejects_overruns() {
        let data = [0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x68, 0, 0, 0, 3, 0x65, 2, 3];
        let f = EncodedFrame::from_length_prefixed(5, Codec::H264, data.to_vec()).unwrap();
        assert_eq!(f.nals().collect::<Vec<_>>(), vec![&[0x67, 1][..], &[0x68][..], &[0x65, 2, 3][..]]);
        assert!(f.keyframe);
        assert!(EncodedFrame::from_length_prefixed(5, Codec::H264, vec![0, 0, 0, 9, 1]).is_err());
        assert!(EncodedFrame::from_length_prefixed(5, Codec::H264, vec![0, 0]).is_err());
    }
}
