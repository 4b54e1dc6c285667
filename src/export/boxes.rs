//! Writing ISO BMFF boxes: headers and big-endian fields, shared by the MP4 export (its
//! video and sound tracks) and the live view's fragmented MP4.

/// The media and movie timescale.
pub const TIMESCALE: u32 = 90_000;

/// Appends a box header (32-bit size, type).
pub(crate) fn box_header(out: &mut Vec<u8>, size: u64, kind: &[u8; 4]) {
    out.extend_from_slice(&(u32::try_from(size).expect("box fits in 32 bits")).to_be_bytes());
    out.extend_from_slice(kind);
}

/// Appends a full box header (size, type, version, flags).
pub(crate) fn full_header(out: &mut Vec<u8>, size: u64, kind: &[u8; 4], version: u8, flags: u32) {
    box_header(out, size, kind);
    out.extend_from_slice(&((version as u32) << 24 | flags).to_be_bytes());
}

/// Appends a big-endian `u16`.
pub(crate) fn u16b(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
/// Appends a big-endian `u32`.
pub(crate) fn u32b(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
/// Appends a big-endian `u64`.
pub(crate) fn u64b(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd` and `tkhd`.
pub(crate) fn matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32b(out, v);
    }
}

/// Length of a version-1 `tkhd`.
pub(crate) const TKHD_LEN: u64 = 104;
/// Length of a version-1 `mdhd`.
pub(crate) const MDHD_LEN: u64 = 44;
/// Length of an `hdlr` with a 12-byte name ([`hdlr`]).
pub(crate) const HDLR_LEN: u64 = 45;
/// Length of a `dinf` with one self-contained `url ` ([`dinf`]).
pub(crate) const DINF_LEN: u64 = 36;

/// What a track header says besides its timing.
pub(crate) struct TrackHeader {
    /// `track_ID`.
    pub id: u32,
    /// Duration on the movie timeline, movie timescale.
    pub duration: u64,
    /// `alternate_group`: tracks of a group are alternatives (0: none).
    pub alternate_group: u16,
    /// 0x0100 (1.0) for sound, 0 for video.
    pub volume: u16,
    /// Picture size (0 for sound).
    pub width: u32,
    /// Picture size (0 for sound).
    pub height: u32,
}

/// Appends a version-1 `tkhd` (enabled, in the movie).
pub(crate) fn tkhd(out: &mut Vec<u8>, t: &TrackHeader) {
    full_header(out, TKHD_LEN, b"tkhd", 1, 3);
    u64b(out, 0); // creation
    u64b(out, 0); // modification
    u32b(out, t.id);
    u32b(out, 0);
    u64b(out, t.duration);
    out.extend_from_slice(&[0; 8]);
    u16b(out, 0); // layer
    u16b(out, t.alternate_group);
    u16b(out, t.volume);
    u16b(out, 0);
    matrix(out);
    u32b(out, t.width << 16);
    u32b(out, t.height << 16);
}

/// Appends a version-1 `mdhd` (language "und").
pub(crate) fn mdhd(out: &mut Vec<u8>, timescale: u32, duration: u64) {
    full_header(out, MDHD_LEN, b"mdhd", 1, 0);
    u64b(out, 0);
    u64b(out, 0);
    u32b(out, timescale);
    u64b(out, duration);
    u16b(out, 0x55c4); // language "und"
    u16b(out, 0);
}

/// Appends an `hdlr` of `handler` (`vide`, `soun`) named `name` (12 bytes and a NUL).
pub(crate) fn hdlr(out: &mut Vec<u8>, handler: &[u8; 4], name: &[u8; 13]) {
    full_header(out, HDLR_LEN, b"hdlr", 0, 0);
    u32b(out, 0);
    out.extend_from_slice(handler);
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(name);
}

/// Appends a `dinf` whose `dref` says the media is in this file.
pub(crate) fn dinf(out: &mut Vec<u8>) {
    box_header(out, DINF_LEN, b"dinf");
    full_header(out, 28, b"dref", 0, 0);
    u32b(out, 1);
    full_header(out, 12, b"url ", 0, 1); // self-contained
}
