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
