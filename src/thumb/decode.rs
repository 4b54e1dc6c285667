//! The child side of thumbnails: one H.264 keyframe (Annex B) in, one JPEG out.
//!
//! Runs in a short-lived child process (`edgenvr thumbnail-decode`, see [`super`]) so the
//! ~46 MB openh264 needs for a 1080p picture is never part of the service's memory.
//!
//! Steps: decode with openh264 → scale the Y, U and V planes with an area (box) filter to
//! the requested width (never up) → expand limited-range video levels (16-235) to JPEG's
//! full range unless the SPS says the stream is full range → encode 4:2:0 with
//! `jpeg-encoder` (pure Rust) at [`QUALITY`].

use crate::error::{Error, ErrorKind, Result};
use crate::media::h26x::{split_annex_b, Codec, NalKind};
use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};
use openh264::formats::YUVSource;
use std::io::{Read, Write};

/// JPEG quality: small files, and PSNR well above 30 dB against ffmpeg's own decode.
pub const QUALITY: u8 = 85;
/// The largest keyframe the child reads (a 4K IDR is a few MB).
pub const MAX_INPUT_BYTES: usize = 16 << 20;

/// A planar 4:2:0 picture, tightly packed.
#[derive(Clone, Debug)]
pub struct Planes {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Luma, `width * height`.
    pub y: Vec<u8>,
    /// Cb, `cw * ch` with `cw = (width + 1) / 2`, `ch = (height + 1) / 2`.
    pub u: Vec<u8>,
    /// Cr, like `u`.
    pub v: Vec<u8>,
    /// Levels span 0-255 (JPEG) rather than 16-235 (video).
    pub full_range: bool,
}

fn media(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Media, msg)
}

/// Whether the H.264 SPS in `annex_b` says the samples use the full 0-255 range.
fn full_range(annex_b: &[u8]) -> bool {
    use h264_reader::nal::Nal;
    let Some(sps) = split_annex_b(annex_b).into_iter().find(|n| Codec::H264.classify(n) == NalKind::Sps) else {
        return false;
    };
    let nal = h264_reader::nal::RefNal::new(sps, &[], true);
    h264_reader::nal::sps::SeqParameterSet::from_bits(nal.rbsp_bits())
        .ok()
        .and_then(|s| s.vui_parameters)
        .and_then(|v| v.video_signal_type)
        .is_some_and(|t| t.video_full_range_flag)
}

/// Decodes the picture of one H.264 access unit (parameter sets + IDR slices, Annex B).
pub fn decode_h264(annex_b: &[u8]) -> Result<Planes> {
    let mut dec =
        openh264::decoder::Decoder::new().map_err(|e| media("cannot start the H.264 decoder").with_source(e))?;
    let full_range = full_range(annex_b);
    let copy = |p: &dyn YUVSource| {
        let (w, h) = p.dimensions();
        let (sy, su, sv) = p.strides();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let rows = |plane: &[u8], stride: usize, w: usize, h: usize| -> Vec<u8> {
            (0..h).flat_map(|r| plane[r * stride..r * stride + w].iter().copied()).collect()
        };
        Planes {
            width: w,
            height: h,
            y: rows(p.y(), sy, w, h),
            u: rows(p.u(), su, cw, ch),
            v: rows(p.v(), sv, cw, ch),
            full_range,
        }
    };
    if let Some(p) = dec.decode(annex_b).map_err(|e| media("the keyframe does not decode").with_source(e))? {
        return Ok(copy(&p));
    }
    let rest = dec.flush_remaining().map_err(|e| media("the keyframe does not decode").with_source(e))?;
    rest.first().map(|p| copy(p)).ok_or_else(|| media("the keyframe decodes to no picture"))
}

/// Area-averages a `sw`x`sh` plane down to `tw`x`th` (each target pixel is the mean of the
/// source pixels it covers).
fn scale_plane(src: &[u8], sw: usize, sh: usize, tw: usize, th: usize) -> Vec<u8> {
    let span = |i: usize, s: usize, t: usize| {
        let a = i * s / t;
        (a, ((i + 1) * s / t).max(a + 1).min(s))
    };
    let mut out = Vec::with_capacity(tw * th);
    for ty in 0..th {
        let (y0, y1) = span(ty, sh, th);
        for tx in 0..tw {
            let (x0, x1) = span(tx, sw, tw);
            let mut sum = 0u32;
            for row in y0..y1 {
                sum += src[row * sw + x0..row * sw + x1].iter().map(|&p| p as u32).sum::<u32>();
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            out.push(((sum + n / 2) / n) as u8);
        }
    }
    out
}

impl Planes {
    /// The picture scaled to `width` (even, at most its own width), keeping the aspect ratio.
    pub fn scaled(&self, width: usize) -> Planes {
        let tw = (width.min(self.width) & !1).max(2);
        if tw == self.width {
            return self.clone();
        }
        let th = ((self.height * tw + self.width / 2) / self.width).max(2) & !1;
        let (cw, ch) = (self.width.div_ceil(2), self.height.div_ceil(2));
        Planes {
            width: tw,
            height: th,
            y: scale_plane(&self.y, self.width, self.height, tw, th),
            u: scale_plane(&self.u, cw, ch, tw / 2, th / 2),
            v: scale_plane(&self.v, cw, ch, tw / 2, th / 2),
            full_range: self.full_range,
        }
    }

    /// The picture as a baseline JPEG (JFIF, 4:2:0).
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.width * self.height / 8);
        let mut enc = Encoder::new(&mut out, quality);
        enc.set_sampling_factor(SamplingFactor::F_2_2);
        if self.width > u16::MAX as usize || self.height > u16::MAX as usize {
            return Err(media("picture too large for JPEG"));
        }
        enc.encode_image(JpegRows(self)).map_err(|e| media("JPEG encoding failed").with_source(e))?;
        Ok(out)
    }
}

/// Feeds [`Planes`] to the encoder row by row, upsampling chroma and expanding levels.
struct JpegRows<'a>(&'a Planes);

impl ImageBuffer for JpegRows<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }
    fn width(&self) -> u16 {
        self.0.width as u16
    }
    fn height(&self) -> u16 {
        self.0.height as u16
    }
    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let p = self.0;
        let (row, cw) = (y as usize, p.width.div_ceil(2));
        // Limited range: Y 16-235 → 0-255, C 16-240 → 0-255 around 128.
        let luma = |v: u8| if p.full_range { v } else { ((v as i32 - 16) * 255 / 219).clamp(0, 255) as u8 };
        let chroma = |v: u8| if p.full_range { v } else { (((v as i32 - 128) * 255 / 224) + 128).clamp(0, 255) as u8 };
        let crow = (row / 2).min(p.height.div_ceil(2) - 1) * cw;
        for x in 0..p.width {
            buffers[0].push(luma(p.y[row * p.width + x]));
            buffers[1].push(chroma(p.u[crow + x / 2]));
            buffers[2].push(chroma(p.v[crow + x / 2]));
        }
    }
}

/// The JPEG of one keyframe scaled to `width`.
pub fn keyframe_jpeg(annex_b: &[u8], width: usize) -> Result<Vec<u8>> {
    decode_h264(annex_b)?.scaled(width).to_jpeg(QUALITY)
}

/// `edgenvr thumbnail-decode --width W`: the keyframe on stdin, the JPEG on stdout; an error
/// message on stderr and exit code 1 on failure.
pub fn child_main(width: usize) -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().take(MAX_INPUT_BYTES as u64 + 1).read_to_end(&mut input) {
        eprintln!("reading the keyframe: {e}");
        return 1;
    }
    if input.len() > MAX_INPUT_BYTES {
        eprintln!("the keyframe is larger than {MAX_INPUT_BYTES} bytes");
        return 1;
    }
    match keyframe_jpeg(&input, width) {
        Ok(jpeg) => match std::io::stdout().lock().write_all(&jpeg) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("writing the JPEG: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyframe(width: usize, height: usize) -> Vec<u8> {
        let f = crate::testutil::encoded_frames(width, height, 0, 1).remove(0);
        f.nals().flat_map(|n| [&[0, 0, 0, 1][..], n].concat()).collect()
    }

    #[test]
    fn a_keyframe_becomes_a_jpeg_of_the_requested_size() {
        let jpeg = keyframe_jpeg(&keyframe(320, 240), 160).unwrap();
        assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff]);
        // zune-jpeg (already used for MJPEG cameras) reads it back at 160x120.
        let mut d = zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(&jpeg));
        d.decode_headers().unwrap();
        assert_eq!(d.dimensions(), Some((160, 120)));
        // Never scaled up.
        let big = decode_h264(&keyframe(64, 48)).unwrap().scaled(1000);
        assert_eq!((big.width, big.height), (64, 48));
    }

    #[test]
    fn area_scaling_averages() {
        let src = [0u8, 100, 200, 50, 10, 20, 30, 40];
        assert_eq!(scale_plane(&src, 4, 2, 2, 1), vec![33, 80]);
        assert_eq!(scale_plane(&src, 4, 2, 4, 2), src.to_vec());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(keyframe_jpeg(&[0, 0, 0, 1, 0x65, 1, 2, 3], 100).is_err());
        assert!(keyframe_jpeg(&[], 100).is_err());
    }
}
