//! Fragmented MP4 for the live view: an init segment per stream, then one small fragment
//! per frame, so a frame's bytes can leave the socket as soon as the camera delivers it.
//!
//! ```text
//! init:      ftyp
//!            moov ─ mvhd, trak ─ tkhd, mdia ─ mdhd, hdlr, minf ─ vmhd, dinf, stbl ─ stsd/avc1|hvc1
//!                 │                                                         (empty stts stsc stsz stco)
//!                 └ mvex ─ trex
//! fragment:  moof ─ mfhd (sequence number)
//!                 └ traf ─ tfhd (default-base-is-moof), tfdt (v1), trun (1 sample)
//!            mdat ─ the frame's NAL units with 4-byte lengths (parameter sets left out)
//! ```
//!
//! Timescale 90 kHz; `tfdt` is the frame's wall-clock time (`ts_us` × 0.09, counted from the
//! Unix epoch), so a player's `currentTime` in seconds *is* Unix time: a page relates what it
//! shows to the wall clock without any side channel. The sample entry (`avcC`/`hvcC`) is the
//! export's (`export::mp4::sample_entry`); parameter sets live there only, and a
//! change of them ends the stream (the hub's rule 4).

use crate::error::Result;
use crate::export::boxes::{full_header, matrix, u16b, u32b, u64b, TIMESCALE};
use crate::export::mp4::{sample_entry, stsd};
use crate::media::frame::EncodedFrame;
use crate::media::h26x::Codec;
use bytes::Bytes;

/// One frame as a movie fragment, shared by every consumer.
#[derive(Clone, Debug)]
pub struct Fragment {
    /// `moof` + `mdat`.
    pub bytes: Bytes,
    /// The frame's wall-clock time, µs.
    pub ts_us: i64,
    /// Whether playback can start here.
    pub keyframe: bool,
}

/// The parameter sets of a stream (NAL units without start codes): what its init segment is
/// made of. Two frames with different ones cannot share a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamParams {
    /// Codec.
    pub codec: Codec,
    /// H.265 video parameter set.
    pub vps: Option<Vec<u8>>,
    /// Sequence parameter set.
    pub sps: Vec<u8>,
    /// Picture parameter set.
    pub pps: Vec<u8>,
}

impl StreamParams {
    /// The parameter sets a keyframe carries in-band, if it carries a complete set.
    pub fn from_keyframe(f: &EncodedFrame) -> Option<StreamParams> {
        use crate::media::h26x::NalKind;
        let (mut vps, mut sps, mut pps) = (None, None, None);
        for nal in f.nals() {
            match f.codec.classify(nal) {
                NalKind::Vps => vps = Some(nal.to_vec()),
                NalKind::Sps => sps = Some(nal.to_vec()),
                NalKind::Pps => pps = Some(nal.to_vec()),
                _ => {}
            }
        }
        if f.codec == Codec::H265 && vps.is_none() {
            return None;
        }
        Some(StreamParams { codec: f.codec, vps, sps: sps?, pps: pps? })
    }

    /// Whether `f` carries exactly these parameter sets (or none at all).
    pub fn matches(&self, f: &EncodedFrame) -> bool {
        use crate::media::h26x::NalKind;
        f.codec == self.codec
            && f.nals().all(|nal| match f.codec.classify(nal) {
                NalKind::Vps => self.vps.as_deref() == Some(nal),
                NalKind::Sps => self.sps == nal,
                NalKind::Pps => self.pps == nal,
                _ => true,
            })
    }

    /// The RFC 6381 codec string for a MIME type (`avc1.64001f`, `hvc1.1.6.L93.B0`), which a
    /// page needs for `MediaSource.addSourceBuffer`.
    pub fn rfc6381(&self) -> String {
        match self.codec {
            Codec::H264 if self.sps.len() >= 4 => {
                format!("avc1.{:02x}{:02x}{:02x}", self.sps[1], self.sps[2], self.sps[3])
            }
            Codec::H264 => "avc1".to_owned(),
            Codec::H265 => match crate::export::hvcc::HevcSps::parse(&self.sps) {
                Ok(s) => hevc_codec_string(&s.general_ptl),
                Err(_) => "hvc1".to_owned(),
            },
        }
    }
}

/// `hvc1.<space><profile>.<compat flags, bit-reversed, hex>.<tier><level>.<constraints>`
/// (ISO/IEC 14496-15 Annex E) from the 12 general profile_tier_level bytes.
fn hevc_codec_string(ptl: &[u8; 12]) -> String {
    let space = ["", "A", "B", "C"][(ptl[0] >> 6) as usize];
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = ptl[0] & 0x1f;
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{}", ptl[11]);
    let constraints = &ptl[5..11];
    let last = constraints.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for b in &constraints[..last] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// Writes a box whose content `f` appends, patching its size afterwards.
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], f: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    f(out);
    let size = u32::try_from(out.len() - start).expect("live boxes are small");
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// [`boxed`] for a full box.
fn full_boxed(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, f: impl FnOnce(&mut Vec<u8>)) {
    boxed(out, kind, |out| {
        u32b(out, (version as u32) << 24 | flags);
        f(out);
    });
}

/// The init segment (`ftyp` + `moov` with `mvex`) of a stream with these parameter sets.
pub fn init_segment(params: &StreamParams) -> Result<Bytes> {
    let (entry, width, height, config) = sample_entry(params.codec, &params.sps, &params.pps, params.vps.as_deref())?;
    let mut out = Vec::with_capacity(768 + config.len());
    boxed(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso5");
        u32b(o, 0x200);
        o.extend_from_slice(b"iso5iso6mp41");
    });
    boxed(&mut out, b"moov", |o| {
        full_boxed(o, b"mvhd", 0, 0, |o| {
            o.extend_from_slice(&[0; 8]); // creation, modification
            u32b(o, TIMESCALE);
            u32b(o, 0); // duration: unknown (fragments follow)
            u32b(o, 0x0001_0000); // rate 1.0
            u16b(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            matrix(o);
            o.extend_from_slice(&[0; 24]);
            u32b(o, 2); // next_track_ID
        });
        boxed(o, b"trak", |o| {
            full_boxed(o, b"tkhd", 0, 3, |o| {
                o.extend_from_slice(&[0; 8]);
                u32b(o, 1); // track_ID
                u32b(o, 0);
                u32b(o, 0); // duration
                o.extend_from_slice(&[0; 8]);
                o.extend_from_slice(&[0; 8]); // layer, alternate_group, volume, reserved
                matrix(o);
                u32b(o, width << 16);
                u32b(o, height << 16);
            });
            boxed(o, b"mdia", |o| {
                full_boxed(o, b"mdhd", 0, 0, |o| {
                    o.extend_from_slice(&[0; 8]);
                    u32b(o, TIMESCALE);
                    u32b(o, 0);
                    u16b(o, 0x55c4); // "und"
                    u16b(o, 0);
                });
                full_boxed(o, b"hdlr", 0, 0, |o| {
                    u32b(o, 0);
                    o.extend_from_slice(b"vide");
                    o.extend_from_slice(&[0; 12]);
                    o.extend_from_slice(b"VideoHandler\0");
                });
                boxed(o, b"minf", |o| {
                    full_boxed(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                    boxed(o, b"dinf", |o| {
                        full_boxed(o, b"dref", 0, 0, |o| {
                            u32b(o, 1);
                            full_header(o, 12, b"url ", 0, 1);
                        });
                    });
                    boxed(o, b"stbl", |o| {
                        o.extend_from_slice(&stsd(entry, width, height, &config));
                        full_boxed(o, b"stts", 0, 0, |o| u32b(o, 0));
                        full_boxed(o, b"stsc", 0, 0, |o| u32b(o, 0));
                        full_boxed(o, b"stsz", 0, 0, |o| o.extend_from_slice(&[0; 8]));
                        full_boxed(o, b"stco", 0, 0, |o| u32b(o, 0));
                    });
                });
            });
        });
        boxed(o, b"mvex", |o| {
            full_boxed(o, b"trex", 0, 0, |o| {
                u32b(o, 1); // track_ID
                u32b(o, 1); // default_sample_description_index
                o.extend_from_slice(&[0; 12]); // default duration, size, flags
            });
        });
    });
    Ok(Bytes::from(out))
}

/// `tfdt` ticks of a wall-clock time (90 kHz since the Unix epoch).
pub fn ticks(ts_us: i64) -> u64 {
    (ts_us.max(0) as u128 * 9 / 100) as u64
}

/// Sample flags of a sync sample (depends on no other) and of any other sample.
const SYNC_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// One frame as a movie fragment (`moof` + `mdat`), parameter sets left out.
/// `duration_us` is the frame's expected duration (its successor is not known yet: the
/// fragment leaves before the next frame arrives); players place frames by `tfdt`, which is
/// the frame's decode time `dts_us` ([`super::decode`]); the `trun` (version 1) carries the
/// presentation time less it as a signed composition offset (0 without B-frames).
pub fn fragment(sequence: u32, f: &EncodedFrame, dts_us: i64, duration_us: i64) -> Bytes {
    let payload: usize = media_nals(f).map(|n| 4 + n.len()).sum();
    let mut out = Vec::with_capacity(112 + payload);
    let mut data_offset_at = 0;
    boxed(&mut out, b"moof", |o| {
        full_boxed(o, b"mfhd", 0, 0, |o| u32b(o, sequence));
        boxed(o, b"traf", |o| {
            full_boxed(o, b"tfhd", 0, 0x02_0000, |o| u32b(o, 1)); // default-base-is-moof
            full_boxed(o, b"tfdt", 1, 0, |o| u64b(o, ticks(dts_us)));
            let offset = (ticks(f.ts_us) as i64 - ticks(dts_us) as i64).clamp(i32::MIN as i64, i32::MAX as i64);
            // data-offset, sample duration, size, flags and composition offset present.
            full_boxed(o, b"trun", 1, 0x000f01, |o| {
                u32b(o, 1);
                data_offset_at = o.len();
                u32b(o, 0); // data_offset, patched below
                u32b(o, (duration_us.clamp(1, 10_000_000) as u64 * 9 / 100).max(1) as u32);
                u32b(o, payload as u32);
                u32b(o, if f.keyframe { SYNC_FLAGS } else { NON_SYNC_FLAGS });
                o.extend_from_slice(&(offset as i32).to_be_bytes());
            });
        });
    });
    let data_offset = (out.len() + 8) as u32;
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    u32b(&mut out, (8 + payload) as u32);
    out.extend_from_slice(b"mdat");
    for nal in media_nals(f) {
        u32b(&mut out, nal.len() as u32);
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

/// The NAL units of a frame that go into a sample: all but parameter sets (they are in the
/// init segment).
fn media_nals(f: &EncodedFrame) -> impl Iterator<Item = &[u8]> + '_ {
    f.nals().filter(move |n| !f.codec.classify(n).is_parameter_set())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyframe with openh264's real parameter sets (64x48) and a small IDR slice, or a
    /// small P slice.
    fn h264_frame(ts_us: i64, key: bool) -> EncodedFrame {
        let mut f = EncodedFrame::new(ts_us, Codec::H264);
        if key {
            let real = crate::testutil::encoded_frames(64, 48, 0, 1).remove(0);
            for n in real.nals().filter(|n| Codec::H264.classify(n).is_parameter_set()) {
                f.push_nal(n);
            }
            f.push_nal(&[0x65, 0x88, 0x84, 0x00, 0x33]);
        } else {
            f.push_nal(&[0x41, 0x9a, 0x21, 0x6c]);
        }
        f
    }

    /// (kind, offset, size) of top-level boxes.
    fn top_boxes(d: &[u8]) -> Vec<([u8; 4], usize, usize)> {
        let mut v = Vec::new();
        let mut pos = 0;
        while pos + 8 <= d.len() {
            let size = u32::from_be_bytes(d[pos..pos + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && pos + size <= d.len(), "box at {pos} overruns");
            v.push((d[pos + 4..pos + 8].try_into().unwrap(), pos, size));
            pos += size;
        }
        assert_eq!(pos, d.len());
        v
    }

    #[test]
    fn init_segment_has_the_sample_entry_and_mvex() {
        let p = StreamParams::from_keyframe(&h264_frame(0, true)).unwrap();
        let init = init_segment(&p).unwrap();
        let kinds: Vec<[u8; 4]> = top_boxes(&init).into_iter().map(|b| b.0).collect();
        assert_eq!(kinds, [*b"ftyp", *b"moov"]);
        for needle in [&b"avcC"[..], b"mvex", b"trex", b"avc1"] {
            assert!(init.windows(4).any(|w| w == needle), "{}", String::from_utf8_lossy(needle));
        }
        assert_eq!(p.rfc6381(), format!("avc1.{:02x}{:02x}{:02x}", p.sps[1], p.sps[2], p.sps[3]));
        assert!(p.rfc6381().starts_with("avc1.42"), "openh264 writes constrained baseline");
    }

    #[test]
    fn fragment_offsets_point_at_the_sample_and_tfdt_is_wall_clock() {
        let f = h264_frame(1_795_273_010_123_456, true);
        let frag = fragment(7, &f, f.ts_us, 66_667);
        let b = top_boxes(&frag);
        assert_eq!((b[0].0, b[1].0), (*b"moof", *b"mdat"));
        let u32_at = |o: usize| u32::from_be_bytes(frag[o..o + 4].try_into().unwrap());
        let find = |k: &[u8]| frag.windows(4).position(|w| w == k).unwrap() - 4;
        assert_eq!(u32_at(find(b"mfhd") + 12), 7);
        let tfdt = find(b"tfdt");
        let t = u64::from_be_bytes(frag[tfdt + 12..tfdt + 20].try_into().unwrap());
        assert_eq!(t, 1_795_273_010_123_456 * 9 / 100);
        let trun = find(b"trun");
        let data_offset = u32_at(trun + 16) as usize;
        assert_eq!(data_offset, b[1].1 + 8, "data offset (from moof start) is the mdat payload");
        assert_eq!(u32_at(trun + 20), 6000);
        // Only the IDR slice is in the sample: 4-byte length + 5 bytes.
        assert_eq!(u32_at(trun + 24), 9);
        assert_eq!(u32_at(trun + 28), SYNC_FLAGS);
        assert_eq!(&frag[data_offset..], &[0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33]);
    }

    #[test]
    fn params_match_only_the_same_sets() {
        let key = h264_frame(0, true);
        let p = StreamParams::from_keyframe(&key).unwrap();
        assert!(p.matches(&key) && p.matches(&h264_frame(1, false)));
        let mut other = EncodedFrame::new(0, Codec::H264);
        other.push_nal(&[0x68, 0xee]);
        assert!(!p.matches(&other));
        assert!(StreamParams::from_keyframe(&h264_frame(0, false)).is_none());
    }

    #[test]
    fn hevc_codec_strings_follow_annex_e() {
        // Main profile, Main tier, level 3.1 (93), progressive+frame-only constraints.
        let ptl = [0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        assert_eq!(hevc_codec_string(&ptl), "hvc1.1.6.L93.90");
        let ptl = [0x01, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 120];
        assert_eq!(hevc_codec_string(&ptl), "hvc1.1.6.L120");
    }
}
