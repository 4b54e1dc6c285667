//! Reads a [`Segment`] of a chunk file back as samples (frames) or as records.
//!
//! A sample is a timestamp group holding at least one slice; records of a group without a
//! slice (a stray SEI) are carried into the next sample, or the last one at the end, so
//! sample sizes always add up to the segment's payload length.
//!
//! Decode times: records hold presentation times in decode order (B-frames come after the
//! later frames they depend on, `docs/design/time.md` rule 7). A segment starts at a
//! keyframe and every keyframe is presented after all frames decoded before it, so the
//! segment's presentation times, sorted, are a strictly increasing series with one value
//! per sample: the n-th sample is decoded at the n-th smallest presentation time. The MP4's
//! `ctts` holds the difference (negative for a frame decoded after a later one: version 1),
//! see `docs/design/export.md`.

use super::plan::Segment;
use crate::chunk::frames::FrameGroups;
use crate::chunk::reader::ChunkReader;
use crate::error::{Error, Result};
use crate::media::h26x::Codec;
use crate::{bail, err};

/// One frame of an export.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Timestamp (presentation time), µs.
    pub ts_us: i64,
    /// Decode time, µs: the segment's presentation times sorted (the module doc says why).
    pub dts_us: i64,
    /// Bytes in the MP4 (4-byte length + NAL, for each record).
    pub size: u32,
    /// Whether decoding can start here.
    pub key: bool,
}

/// Most samples reserved up front: a segment's count comes from the index, which is
/// checked but not trusted with memory.
const RESERVE: u64 = 4096;

/// Reads every sample of `seg` (at most about a minute of frames: bounded), checking the
/// counts the plan took from the index (frames, keyframes) against the file.
pub fn segment_samples(seg: &Segment, codec: Codec) -> Result<Vec<Sample>> {
    let r = ChunkReader::open_at(&seg.path, seg.start_off)
        .map_err(|e| Error::io(format!("opening {}", seg.path.display()), e))?;
    let mut groups = FrameGroups::new(r, Some(codec)).until(seg.end_off, i64::MAX);
    let mut out: Vec<Sample> = Vec::with_capacity(seg.samples.min(RESERVE) as usize);
    let mut carry = 0u64;
    while let Some(g) = groups.next_group().map_err(|e| err!(DataLoss, "{}", seg.path.display()).with_source(e))? {
        let size = g.nal_bytes + 4 * g.records;
        if g.has_slice {
            let size = u32::try_from(size + carry)
                .map_err(|_| err!(DataLoss, "{}: a frame of {} bytes", seg.path.display(), size + carry))?;
            out.push(Sample { ts_us: g.ts_us, dts_us: g.ts_us, size, key: g.has_idr });
            carry = 0;
        } else {
            carry += size;
        }
    }
    if carry > 0 {
        if let Some(last) = out.last_mut() {
            last.size = last.size.saturating_add(u32::try_from(carry).unwrap_or(u32::MAX));
        }
    }
    let mut decode: Vec<i64> = out.iter().map(|s| s.ts_us).collect();
    decode.sort_unstable();
    for (s, d) in out.iter_mut().zip(decode) {
        s.dts_us = d;
    }
    let keys = out.iter().filter(|s| s.key).count() as u64;
    if out.len() as u64 != seg.samples || keys != seg.keyframes {
        bail!(
            DataLoss,
            "{}: {} frames ({keys} keyframes) on disk, {} ({}) indexed; run `edgenvr check --repair`",
            seg.path.display(),
            out.len(),
            seg.samples,
            seg.keyframes
        );
    }
    Ok(out)
}

/// What goes before each record's bytes in a [`RecordStream`]'s output.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// A 4-byte big-endian length (MP4 video samples).
    Length,
    /// An Annex B start code (raw `.h264`/`.h265`).
    StartCode,
    /// Nothing: the payload as it is (MP4 audio samples).
    None,
}

impl Prefix {
    fn len(self) -> u64 {
        match self {
            Prefix::Length | Prefix::StartCode => 4,
            Prefix::None => 0,
        }
    }
}

/// Streams the records of a byte range of a chunk (or audio sibling) file, each as a
/// [`Prefix`] + its payload.
pub struct RecordStream {
    reader: ChunkReader<std::fs::File>,
    end_off: u64,
    prefix: Prefix,
    path: std::path::PathBuf,
}

impl RecordStream {
    /// Opens video segment `seg` at its first record.
    pub fn open(seg: &Segment, start_codes: bool) -> Result<RecordStream> {
        let prefix = if start_codes { Prefix::StartCode } else { Prefix::Length };
        RecordStream::open_range(&seg.path, seg.start_off, seg.end_off, prefix)
    }

    /// Opens records `start_off..end_off` of `path`.
    pub fn open_range(path: &std::path::Path, start_off: u64, end_off: u64, prefix: Prefix) -> Result<RecordStream> {
        let reader =
            ChunkReader::open_at(path, start_off).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(RecordStream { reader, end_off, prefix, path: path.to_owned() })
    }

    /// Replaces `out` with the next record's bytes; false at the segment's end.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if self.reader.good_len() >= self.end_off {
            return Ok(false);
        }
        out.clear();
        let p = self.prefix.len() as usize;
        out.resize(p, 0);
        let h = self
            .reader
            .next_appending(out)
            .map_err(|e| err!(DataLoss, "{}", self.path.display()).with_source(e))?
            .ok_or_else(|| err!(DataLoss, "{}: shorter than indexed", self.path.display()))?;
        match self.prefix {
            Prefix::Length => out[..4].copy_from_slice(&(h.len as u32).to_be_bytes()),
            Prefix::StartCode => out[..4].copy_from_slice(&[0, 0, 0, 1]),
            Prefix::None => {}
        }
        Ok(true)
    }

    /// Skips whole records (without reading their payloads into memory) while they end at
    /// or before `target` output bytes from here; returns the output bytes skipped. The
    /// next record read is the one holding byte `target`.
    pub fn skip_to(&mut self, target: u64) -> Result<u64> {
        let mut skipped = 0;
        let mut p = Vec::new();
        while self.reader.good_len() < self.end_off {
            let err = |e| err!(DataLoss, "{}", self.path.display()).with_source(e);
            let Some(h) = self.reader.peek_header().map_err(err)? else { break };
            if skipped + self.prefix.len() + h.len > target {
                break;
            }
            self.reader.next_prefix(&mut p, 0).map_err(err)?;
            skipped += self.prefix.len() + h.len;
        }
        Ok(skipped)
    }
}
