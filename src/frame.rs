//! The unit that flows from a source to the chunk writer: one encoded frame.

use crate::h264::{Codec, NalKind};
use std::ops::Range;

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
    /// The NAL bytes, back to back.
    data: Vec<u8>,
    /// Where each NAL lies in `data`.
    nals: Vec<Range<usize>>,
}

impl EncodedFrame {
    /// An empty frame to push NALs into.
    pub fn new(ts_us: i64, codec: Codec) -> EncodedFrame {
        EncodedFrame { ts_us, keyframe: false, codec, data: Vec::new(), nals: Vec::new() }
    }

    /// Builds a frame from an Annex B access unit; `keyframe` is derived from the NAL types.
    pub fn from_annex_b(ts_us: i64, codec: Codec, annex_b: &[u8]) -> EncodedFrame {
        let mut f = EncodedFrame::new(ts_us, codec);
        for nal in crate::h264::split_annex_b(annex_b) {
            f.push_nal(nal);
        }
        f
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
