//! Just enough H.264/H.265 bitstream knowledge for a recorder: splitting Annex B streams into
//! NAL units and classifying them (parameter set, keyframe slice, other).
//!
//! Nothing here parses slice headers: the recorder stores video as it arrives and only needs
//! to know where decoding can start.

/// The video codec of a stream, as stored in the index.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

impl Codec {
    /// The name stored in the index and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }

    /// Parses an index value.
    pub fn from_name(s: &str) -> Option<Codec> {
        match s {
            "h264" => Some(Codec::H264),
            "h265" => Some(Codec::H265),
            _ => None,
        }
    }

    /// What a NAL unit is, from its header byte(s).
    pub fn classify(self, nal: &[u8]) -> NalKind {
        let Some(&first) = nal.first() else {
            return NalKind::Other;
        };
        match self {
            Codec::H264 => match first & 0x1f {
                7 => NalKind::Sps,
                8 => NalKind::Pps,
                5 => NalKind::IdrSlice,
                1..=4 => NalKind::Slice,
                _ => NalKind::Other,
            },
            Codec::H265 => match (first >> 1) & 0x3f {
                32 => NalKind::Vps,
                33 => NalKind::Sps,
                34 => NalKind::Pps,
                16..=21 => NalKind::IdrSlice,
                0..=9 => NalKind::Slice,
                _ => NalKind::Other,
            },
        }
    }
}

/// The role of a NAL unit for recording purposes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NalKind {
    /// H.265 video parameter set.
    Vps,
    /// Sequence parameter set.
    Sps,
    /// Picture parameter set.
    Pps,
    /// A slice of a random-access (IDR, or IRAP for H.265) picture: decoding can start here.
    IdrSlice,
    /// A slice of any other picture.
    Slice,
    /// SEI, AUD and everything else.
    Other,
}

impl NalKind {
    /// True for VPS/SPS/PPS.
    pub fn is_parameter_set(self) -> bool {
        matches!(self, NalKind::Vps | NalKind::Sps | NalKind::Pps)
    }

    /// True for picture data (the NALs that make a frame).
    pub fn is_slice(self) -> bool {
        matches!(self, NalKind::IdrSlice | NalKind::Slice)
    }
}

/// Splits an Annex B byte stream (`00 00 01` or `00 00 00 01` start codes) into NAL units
/// without their start codes. Bytes before the first start code are ignored; trailing zero
/// bytes of a NAL (part of the next 4-byte start code) are trimmed.
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i + 2 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                out.push(trim_trailing_zeros(&data[s..i]));
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        if s < data.len() {
            out.push(&data[s..]);
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

fn trim_trailing_zeros(mut n: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = n {
        n = rest;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let s = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0];
        let nals = split_annex_b(&s);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5, 0][..]]);
        assert!(split_annex_b(&[1, 2, 3]).is_empty());
        assert!(split_annex_b(&[]).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any bytes split into non-empty NAL units that hold no start code and
        /// lie inside the input; every NAL classifies under both codecs.
        #[test]
        fn fuzz_split_and_classify(data in proptest::collection::vec(
            proptest::prop_oneof![proptest::prelude::Just(0u8), proptest::prelude::Just(1u8), proptest::prelude::any::<u8>()],
            0..300,
        )) {
            let nals = split_annex_b(&data);
            let total: usize = nals.iter().map(|n| n.len()).sum();
            proptest::prop_assert!(total <= data.len());
            for n in &nals {
                proptest::prop_assert!(!n.is_empty());
                proptest::prop_assert!(!n.windows(3).any(|w| w == [0, 0, 1]), "{:?}", n);
                for c in [Codec::H264, Codec::H265] {
                    let k = c.classify(n);
                    proptest::prop_assert!(!(k.is_slice() && k.is_parameter_set()));
                }
            }
            // Joined again with start codes, they split the same way.
            let mut joined = Vec::new();
            for n in nals.iter().filter(|n| n.last() != Some(&0)) {
                joined.extend_from_slice(&[0, 0, 0, 1]);
                joined.extend_from_slice(n);
            }
            let again: Vec<&[u8]> = nals.iter().copied().filter(|n| n.last() != Some(&0)).collect();
            proptest::prop_assert_eq!(split_annex_b(&joined), again);
        }
    }

    #[test]
    fn classifies_h264_and_h265() {
        assert_eq!(Codec::H264.classify(&[0x67]), NalKind::Sps);
        assert_eq!(Codec::H264.classify(&[0x68]), NalKind::Pps);
        assert_eq!(Codec::H264.classify(&[0x65]), NalKind::IdrSlice);
        assert_eq!(Codec::H264.classify(&[0x41]), NalKind::Slice);
        assert_eq!(Codec::H264.classify(&[0x06]), NalKind::Other);
        assert_eq!(Codec::H265.classify(&[0x40, 1]), NalKind::Vps);
        assert_eq!(Codec::H265.classify(&[0x42, 1]), NalKind::Sps);
        assert_eq!(Codec::H265.classify(&[0x44, 1]), NalKind::Pps);
        assert_eq!(Codec::H265.classify(&[0x26, 1]), NalKind::IdrSlice);
        assert_eq!(Codec::H265.classify(&[0x02, 1]), NalKind::Slice);
        assert_eq!(Codec::H264.classify(&[]), NalKind::Other);
    }
}
