//! The `hvcC` box (HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 §8.3.3) of an H.265
//! export, and the few fields of the H.265 SPS it needs.
//!
//! Most IP cameras sold today default to H.265, so their footage must come out as an MP4
//! a player opens, not only as a raw `.h265` stream. The record copies the SPS's
//! `profile_tier_level` fields, chroma format and bit depths; fields that would need the
//! VUI (`min_spatial_segmentation_idc`, frame rate) are written as "unknown" (0), which the
//! format allows. The sample entry is `hvc1` (what Apple's players require), so the record
//! claims its parameter-set arrays are complete; the parameter sets also stay in-band, as
//! they do for H.264, so a change of resolution inside an export still decodes.

use crate::error::{Error, Result};
use crate::{bail, err};
use h264_reader::rbsp::{BitRead, BitReader, BitReaderError, ByteReader};
use std::io::Read;
use std::num::NonZeroUsize;

/// What an H.265 SPS says that the MP4 needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcSps {
    /// `sps_max_sub_layers_minus1 + 1`.
    pub temporal_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nested: bool,
    /// The general `profile_tier_level` bytes as they appear in the RBSP: profile space,
    /// tier and profile (1 byte), compatibility flags (4), constraint flags (6), level (1).
    pub general_ptl: [u8; 12],
    /// `chroma_format_idc` (1 = 4:2:0).
    pub chroma_format_idc: u8,
    /// `bit_depth_luma_minus8`.
    pub bit_depth_luma_minus8: u8,
    /// `bit_depth_chroma_minus8`.
    pub bit_depth_chroma_minus8: u8,
    /// Displayed width in pixels (after the conformance window).
    pub width: u32,
    /// Displayed height in pixels (after the conformance window).
    pub height: u32,
}

fn bad(what: impl std::fmt::Display) -> Error {
    err!(DataLoss, "cannot parse the H.265 SPS: {what}")
}

/// What stopped h264-reader's bit reader, in words: its errors have only `Debug`, which
/// must not reach a user.
pub(crate) fn bit_reader_problem(e: &BitReaderError) -> String {
    match e {
        BitReaderError::ReaderErrorFor(field, _) => format!("it ends before {field}"),
        BitReaderError::ExpGolombTooLarge(field) => format!("{field} does not fit in 32 bits"),
        BitReaderError::RemainingData => "it goes on after its end".to_owned(),
        BitReaderError::Unaligned => "it is not byte-aligned where it must be".to_owned(),
    }
}

impl HevcSps {
    /// Parses `nal` (an SPS NAL unit with its 2-byte header, no start code).
    pub fn parse(nal: &[u8]) -> Result<HevcSps> {
        if nal.len() < 3 || (nal[0] >> 1) & 0x3f != 33 {
            return Err(bad("not an SPS NAL unit"));
        }
        let mut rbsp = Vec::with_capacity(nal.len());
        ByteReader::skipping_bytes(nal, NonZeroUsize::new(2).expect("2 is not zero"))
            .read_to_end(&mut rbsp)
            .map_err(|e| err!(DataLoss, "cannot read the H.265 SPS").with_source(e))?;
        let mut r = BitReader::new(&rbsp[..]);
        let e = |e: BitReaderError| bad(bit_reader_problem(&e));
        r.skip(4, "sps_video_parameter_set_id").map_err(e)?;
        let max_sub_layers_minus1: u8 = r.read(3, "sps_max_sub_layers_minus1").map_err(e)?;
        let temporal_id_nested = r.read_bool("sps_temporal_id_nesting_flag").map_err(e)?;
        let general_ptl = profile_tier_level(&mut r, max_sub_layers_minus1).map_err(e)?;
        r.read_ue("sps_seq_parameter_set_id").map_err(e)?;
        let chroma_format_idc = r.read_ue("chroma_format_idc").map_err(e)?;
        if chroma_format_idc > 3 {
            return Err(bad(format!("chroma_format_idc {chroma_format_idc}")));
        }
        let separate_planes = chroma_format_idc == 3 && r.read_bool("separate_colour_plane_flag").map_err(e)?;
        let width = r.read_ue("pic_width_in_luma_samples").map_err(e)?;
        let height = r.read_ue("pic_height_in_luma_samples").map_err(e)?;
        let mut crop = [0u32; 4];
        if r.read_bool("conformance_window_flag").map_err(e)? {
            for c in &mut crop {
                *c = r.read_ue("conf_win_offset").map_err(e)?;
            }
        }
        let bit_depth_luma_minus8 = r.read_ue("bit_depth_luma_minus8").map_err(e)?;
        let bit_depth_chroma_minus8 = r.read_ue("bit_depth_chroma_minus8").map_err(e)?;
        if bit_depth_luma_minus8 > 7 || bit_depth_chroma_minus8 > 7 {
            return Err(bad("bit depth above 16"));
        }
        let (crop_w, crop_h) = crop_size(chroma_format_idc, separate_planes, crop);
        if width == 0
            || height == 0
            || crop_w >= width as u64
            || crop_h >= height as u64
            || width > 16_384
            || height > 16_384
        {
            return Err(bad(format!("picture {width}x{height} with a crop of {crop_w}x{crop_h}")));
        }
        Ok(HevcSps {
            temporal_layers: max_sub_layers_minus1 + 1,
            temporal_id_nested,
            general_ptl,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
            bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
            width: width - crop_w as u32,
            height: height - crop_h as u32,
        })
    }
}

/// `profile_tier_level` (H.265 §7.3.3): the general bytes, with the sub-layer fields it
/// announces skipped.
fn profile_tier_level(r: &mut BitReader<&[u8]>, max_sub_layers_minus1: u8) -> Result<[u8; 12], BitReaderError> {
    let mut general_ptl = [0u8; 12];
    for b in &mut general_ptl {
        *b = r.read(8, "general_profile_tier_level")?;
    }
    // Sub-layer profile/level presence, then the sub-layer fields it announces.
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1 as usize) {
        *p = (r.read_bool("sub_layer_profile_present_flag")?, r.read_bool("sub_layer_level_present_flag")?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1 as u32), "reserved_zero_2bits")?;
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1 as usize) {
        if profile {
            r.skip(88, "sub_layer_profile")?;
        }
        if level {
            r.skip(8, "sub_layer_level_idc")?;
        }
    }
    Ok(general_ptl)
}

/// The conformance window in luma samples: its offsets count chroma samples (H.265 table
/// 6-1).
fn crop_size(chroma_format_idc: u32, separate_planes: bool, crop: [u32; 4]) -> (u64, u64) {
    let (sub_w, sub_h) = match (chroma_format_idc, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    (sub_w * (crop[0] as u64 + crop[1] as u64), sub_h * (crop[2] as u64 + crop[3] as u64))
}

/// The `hvcC` box (header included) for `sps` and the parameter sets `vps`, `sps_nal`,
/// `pps`, each with its NAL header and no start code. Lengths in samples are 4 bytes.
pub fn hvcc_box(sps: &HevcSps, vps: &[u8], sps_nal: &[u8], pps: &[u8]) -> Result<Vec<u8>> {
    let arrays = [(32u8, vps), (33, sps_nal), (34, pps)];
    if let Some((kind, _)) = arrays.iter().find(|(_, n)| n.len() > u16::MAX as usize || n.is_empty()) {
        bail!(DataLoss, "H.265 parameter set of type {kind} is empty or too long");
    }
    let len = 8 + 23 + arrays.iter().map(|(_, n)| 3 + 2 + n.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(b"hvcC");
    out.push(1); // configurationVersion
    out.extend_from_slice(&sps.general_ptl);
    out.extend_from_slice(&[0xf0, 0x00]); // reserved '1111', min_spatial_segmentation_idc 0
    out.push(0xfc); // reserved '111111', parallelismType 0 (unknown)
    out.push(0xfc | sps.chroma_format_idc);
    out.push(0xf8 | sps.bit_depth_luma_minus8);
    out.push(0xf8 | sps.bit_depth_chroma_minus8);
    out.extend_from_slice(&[0, 0]); // avgFrameRate: unspecified
                                    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    out.push((sps.temporal_layers & 7) << 3 | (sps.temporal_id_nested as u8) << 2 | 3);
    out.push(arrays.len() as u8);
    for (kind, nal) in arrays {
        out.push(0x80 | kind); // array_completeness 1 ('hvc1'), reserved 0
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        out.extend_from_slice(nal);
    }
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameter sets of a real libx265 stream with the given size and options, made by ffmpeg.
    pub(crate) fn x265_parameter_sets(size: &str, pix_fmt: &str, params: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=10:duration=0.2")])
            .args(["-pix_fmt", pix_fmt, "-c:v", "libx265", "-x265-params", &format!("log-level=error:{params}")])
            .args(["-f", "hevc", "-"])
            .output()
            .expect("ffmpeg runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let nals = crate::media::h26x::split_annex_b(&out.stdout);
        let find = |t: u8| nals.iter().find(|n| (n[0] >> 1) & 0x3f == t).unwrap_or_else(|| panic!("type {t}")).to_vec();
        (find(32), find(33), find(34))
    }

    #[test]
    fn sps_fields_match_what_the_encoder_was_asked_for() {
        // 1280x720 is coded as 1280x720; 642x362 needs a conformance window (coded 648x368).
        for (size, pix_fmt, w, h, chroma, depth) in [
            ("1280x720", "yuv420p", 1280, 720, 1, 0),
            ("642x362", "yuv420p", 642, 362, 1, 0),
            ("320x240", "yuv422p10le", 320, 240, 2, 2),
        ] {
            let (_, sps, _) = x265_parameter_sets(size, pix_fmt, "");
            let p = HevcSps::parse(&sps).unwrap();
            assert_eq!((p.width, p.height), (w, h), "{size}");
            assert_eq!(
                (p.chroma_format_idc, p.bit_depth_luma_minus8, p.bit_depth_chroma_minus8),
                (chroma, depth, depth)
            );
            assert_eq!(
                p.general_ptl[0] & 0x1f,
                if depth == 0 { 1 } else { 4 },
                "profile: Main, or RExt for 4:2:2 10-bit"
            );
            assert_eq!(p.temporal_layers, 1);
        }
    }

    #[test]
    fn sub_layers_are_skipped_correctly() {
        // Temporal sub-layers put per-layer profile/level fields before the picture size.
        let (_, sps, _) = x265_parameter_sets("352x288", "yuv420p", "bframes=4:b-pyramid=1:temporal-layers=1");
        let p = HevcSps::parse(&sps).unwrap();
        assert!(p.temporal_layers > 1, "x265 wrote {} temporal layer(s)", p.temporal_layers);
        assert_eq!((p.width, p.height), (352, 288));
    }

    #[test]
    fn hvcc_record_layout() {
        let (vps, sps_nal, pps) = x265_parameter_sets("320x240", "yuv420p", "");
        let sps = HevcSps::parse(&sps_nal).unwrap();
        let b = hvcc_box(&sps, &vps, &sps_nal, &pps).unwrap();
        assert_eq!(u32::from_be_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(&b[4..8], b"hvcC");
        assert_eq!(b[8], 1);
        assert_eq!(b[9..21], sps.general_ptl);
        assert_eq!(b[8 + 21] & 3, 3, "4-byte lengths");
        assert_eq!(b[8 + 22], 3, "VPS, SPS, PPS arrays");
        let mut pos = 8 + 23;
        for (kind, nal) in [(32, &vps), (33, &sps_nal), (34, &pps)] {
            assert_eq!(b[pos], 0x80 | kind);
            assert_eq!(u16::from_be_bytes([b[pos + 1], b[pos + 2]]), 1);
            let n = u16::from_be_bytes([b[pos + 3], b[pos + 4]]) as usize;
            assert_eq!(&b[pos + 5..pos + 5 + n], &nal[..]);
            pos += 5 + n;
        }
        assert_eq!(pos, b.len());
    }

    fn real_sps() -> &'static [u8] {
        static SPS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SPS.get_or_init(|| x265_parameter_sets("320x240", "yuv420p", "").1)
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any SPS (random bytes, or a real one damaged) parses or is refused
        /// without a panic; what parses has a sane picture and makes a well-formed `hvcC`.
        #[test]
        fn fuzz_sps_and_hvcc(
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            damage in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            use_real in proptest::prelude::any::<bool>(),
            pps in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..8),
        ) {
            let nal = if use_real {
                let mut n = real_sps().to_vec();
                for (at, v) in damage {
                    let i = at.index(n.len() - 2) + 2;
                    n[i] = v;
                }
                n.truncate(cut.index(n.len()) + 1);
                n
            } else {
                [&[0x42u8, 0x01][..], &random].concat()
            };
            if let Ok(sps) = HevcSps::parse(&nal) {
                proptest::prop_assert!((1..=16_384).contains(&sps.width) && (1..=16_384).contains(&sps.height));
                if let Ok(b) = hvcc_box(&sps, &[0x40, 1], &nal, &pps) {
                    proptest::prop_assert_eq!(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize, b.len());
                }
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (_, sps, _) = x265_parameter_sets("320x240", "yuv420p", "");
        assert!(HevcSps::parse(&[0x40, 0x01, 0x0c]).is_err(), "a VPS is not an SPS");
        for cut in 2..sps.len() - 1 {
            let _ = HevcSps::parse(&sps[..cut]);
        }
        assert!(HevcSps::parse(&sps[..8]).is_err());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut nal = vec![0x42, 0x01];
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                nal.push(x as u8);
            }
            let _ = HevcSps::parse(&nal);
        }
    }
}
