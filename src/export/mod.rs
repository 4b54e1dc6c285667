//! Exports of a camera's footage over a time range, as a *virtual file*: its length, ETag
//! and every byte are known without building it, so HTTP `Range` works and memory stays
//! bounded however long the range.
//!
//! - [`plan`]: which byte ranges of which chunk files make up the export, with the counts
//!   (records, frames, keyframes) that fix every size in advance.
//! - [`audio`]: the sound track's part of a plan (the chunks' audio siblings) and its
//!   frames.
//! - [`samples`]: reads a segment of a chunk file back as samples (frames) or records.
//! - [`stream`]: a virtual file as parts (bytes, tables generated while reading, payload)
//!   and the reader that produces any byte range of it.
//! - [`mp4`]: an ISO BMFF file, `moov` first, built on the fly (`docs/design/export.md`);
//!   [`hvcc`]: the `hvcC` box of an H.265 export; [`sound`]: its sound track.
//! - [`annexb`]: the raw H.264/H.265 elementary stream with start codes.

pub mod annexb;
pub mod audio;
pub mod boxes;
pub mod chapters;
pub mod hvcc;
pub mod mp4;
pub mod plan;
pub mod samples;
pub mod sound;
pub mod stream;

use crate::media::h26x::Codec;
use std::io::Read;

/// What an export is written as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// An MP4 file (H.264 or H.265 inside).
    Mp4,
    /// The raw H.264 stream (Annex B).
    H264,
    /// The raw H.265 stream (Annex B).
    H265,
}

impl Format {
    /// From an API route's last segment: `export.mp4`, `export.h264`, `export.h265`.
    pub fn from_export_name(s: &str) -> Option<Format> {
        s.strip_prefix("export.").and_then(Format::from_name)
    }

    /// From a name or file extension: `mp4`, `h264`/`264`, `h265`/`265`/`hevc`.
    pub fn from_name(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "mp4" => Some(Format::Mp4),
            "h264" | "264" => Some(Format::H264),
            "h265" | "265" | "hevc" => Some(Format::H265),
            _ => None,
        }
    }

    /// Whether footage in `codec` can be written in this format (a raw stream is only
    /// what it says it is: an H.264 camera has no `.h265`).
    pub fn carries(self, codec: Codec) -> bool {
        match self {
            Format::Mp4 => true,
            Format::H264 => codec == Codec::H264,
            Format::H265 => codec == Codec::H265,
        }
    }

    /// The file extension for footage in `codec`.
    pub fn extension(self, codec: Codec) -> &'static str {
        match (self, codec) {
            (Format::Mp4, _) => "mp4",
            (_, Codec::H264) => "h264",
            (_, Codec::H265) => "h265",
        }
    }
}

/// A file whose bytes are produced on demand.
pub trait VirtualFile: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A strong validator: changes whenever any byte would.
    fn etag(&self) -> String;
    /// The MIME type.
    fn content_type(&self) -> &'static str;
    /// A reader of bytes `start..end` (`end` <= `len()`), owning what it needs so an HTTP
    /// response can stream it.
    fn reader(&self, start: u64, end: u64) -> Box<dyn Read + Send>;
}

/// 64-bit FNV-1a, for ETags (not security).
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A chunk file served as it is on disk (`GET /api/v1/chunks/{id}`), limited to the length
/// the index knows.
pub struct RawFile {
    path: std::path::PathBuf,
    len: u64,
    etag: String,
}

impl RawFile {
    /// `len` bytes of `path`, with a caller-chosen ETag.
    pub fn new(path: std::path::PathBuf, len: u64, etag: String) -> RawFile {
        RawFile { path, len, etag }
    }
}

impl VirtualFile for RawFile {
    fn len(&self) -> u64 {
        self.len
    }
    fn etag(&self) -> String {
        self.etag.clone()
    }
    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }
    fn reader(&self, start: u64, end: u64) -> Box<dyn Read + Send> {
        use std::io::{Seek, SeekFrom};
        match std::fs::File::open(&self.path).and_then(|mut f| f.seek(SeekFrom::Start(start)).map(|_| f)) {
            Ok(f) => Box::new(f.take(end - start)),
            Err(e) => Box::new(FailingReader(Some(e))),
        }
    }
}

/// A reader that fails with the error that prevented opening the real one.
struct FailingReader(Option<std::io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self.0.take().unwrap_or_else(|| std::io::Error::other("read failed")))
    }
}
