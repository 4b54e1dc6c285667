//! Motion JPEG → I420, for webcams that only deliver high resolutions as MJPEG. Decoding
//! uses `zune-jpeg` (pure Rust, no C library to cross-compile). Many UVC cameras send frames
//! without Huffman tables (the standard tables are implied, as in AVI's MJPEG); zune-jpeg
//! applies the standard tables only to frames marked with an `AVI1` APP0 segment, so a
//! table-less frame gets that marker added before decoding.

use super::convert::ycbcr444_to_i420;
use super::yuv::I420;
use crate::error::Result;
use crate::{bail, err};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// A reusable MJPEG decoder with its scratch buffer (one picture of YCbCr, kept between
/// frames so a camera's steady state allocates nothing).
#[derive(Default)]
pub struct MjpegDecoder {
    scratch: Vec<u8>,
    /// A table-less frame with the AVI1 marker inserted (reused).
    patched: Vec<u8>,
}

/// `APP0 "AVI1\0"`: tells the decoder the standard Huffman tables apply.
const AVI1_APP0: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0];

/// Whether the frame defines Huffman tables (a DHT segment before the scan starts).
fn has_huffman_tables(jpeg: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        match jpeg[i + 1] {
            0xC4 => return true,
            0xDA => return false,
            _ => i += 2 + u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize,
        }
    }
    false
}

impl MjpegDecoder {
    /// Decodes one JPEG into `dst`, which must have the JPEG's size (a camera whose JPEGs do
    /// not match its negotiated size is reported, not resized).
    pub fn decode(&mut self, jpeg: &[u8], dst: &mut I420) -> Result<()> {
        // The size is checked against the camera's right after the headers, before any
        // picture memory is allocated.
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::YCbCr);
        let jpeg = if jpeg.len() > 2 && !has_huffman_tables(jpeg) {
            self.patched.clear();
            self.patched.extend_from_slice(&jpeg[..2]);
            self.patched.extend_from_slice(&AVI1_APP0);
            self.patched.extend_from_slice(&jpeg[2..]);
            &self.patched[..]
        } else {
            jpeg
        };
        let mut d = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        d.decode_headers().map_err(|e| err!(Media, "bad MJPEG frame").with_source(e))?;
        let (w, h) = d.dimensions().ok_or_else(|| err!(Media, "MJPEG frame without a size"))?;
        if (w, h) != (dst.width, dst.height) {
            bail!(Media, "MJPEG frame is {w}x{h}, the camera was set to {}x{}", dst.width, dst.height);
        }
        let size = d.output_buffer_size().ok_or_else(|| err!(Media, "MJPEG frame without a size"))?;
        self.scratch.resize(size, 0);
        d.decode_into(&mut self.scratch).map_err(|e| err!(Media, "bad MJPEG frame").with_source(e))?;
        match d.output_colorspace() {
            Some(ColorSpace::YCbCr) => ycbcr444_to_i420(&self.scratch, dst),
            Some(ColorSpace::Luma) => {
                let n = dst.width * dst.height;
                dst.data[..n].copy_from_slice(&self.scratch[..n]);
                dst.data[n..].fill(128);
            }
            other => {
                log::debug!("MJPEG frame decodes to {other:?}");
                bail!(Media, "MJPEG frame decodes to neither YCbCr nor greyscale")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn ffmpeg(args: &[&str]) -> Vec<u8> {
        let out = Command::new("ffmpeg")
            .args(["-v", "error"])
            .args(args)
            .output()
            .expect("ffmpeg is required (the README test command installs it)");
        assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// Drops the Huffman tables (DHT segments), as many UVC webcams send MJPEG frames.
    fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        while i + 4 <= jpeg.len() {
            let (marker, len) = (jpeg[i + 1], u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize);
            if marker == 0xDA {
                out.extend_from_slice(&jpeg[i..]);
                break;
            }
            if marker != 0xC4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        out
    }

    fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as f64).sum::<f64>() / a.len() as f64
    }

    /// A small real JPEG (4:2:2, as webcams send), made once.
    fn small_jpeg() -> &'static [u8] {
        static JPEG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        JPEG.get_or_init(|| {
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=32x16:rate=1",
                "-frames:v",
                "1",
                "-pix_fmt",
                "yuvj422p",
                "-q:v",
                "5",
                "-f",
                "mjpeg",
                "-",
            ])
        })
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: the header scan and the decoder take any frame (a real one damaged,
        /// its tables stripped, or random bytes after an SOI) without a panic; a frame that
        /// decodes fills the picture.
        #[test]
        fn fuzz_mjpeg(
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
            damage in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..6),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            source in 0u8..3,
        ) {
            let mut jpeg = match source {
                0 => small_jpeg().to_vec(),
                1 => strip_dht(small_jpeg()),
                _ => [&[0xFFu8, 0xD8][..], &random].concat(),
            };
            for (at, v) in damage {
                let i = at.index(jpeg.len());
                jpeg[i] = v;
            }
            if source < 2 {
                jpeg.truncate(cut.index(jpeg.len()) + 1);
            }
            let _ = has_huffman_tables(&jpeg);
            let mut pic = I420::new(32, 16);
            if MjpegDecoder::default().decode(&jpeg, &mut pic).is_ok() {
                proptest::prop_assert_eq!(pic.data.len(), 32 * 16 * 3 / 2);
            }
        }
    }

    /// A 4:2:2 MJPEG frame (what webcams send) decodes to the picture ffmpeg's own decoder
    /// makes of it, with and without its Huffman tables.
    #[test]
    fn decodes_like_ffmpeg_with_and_without_huffman_tables() {
        let (w, h) = (320usize, 240usize);
        let jpeg = ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=1",
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuvj422p",
            "-huffman",
            "default",
            "-q:v",
            "3",
            "-f",
            "mjpeg",
            "-",
        ]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.jpg");
        std::fs::write(&file, &jpeg).unwrap();
        let reference = ffmpeg(&["-i", file.to_str().unwrap(), "-pix_fmt", "yuvj420p", "-f", "rawvideo", "-"]);
        assert_eq!(reference.len(), w * h * 3 / 2);
        for input in [jpeg.clone(), strip_dht(&jpeg)] {
            let mut pic = I420::new(w, h);
            MjpegDecoder::default().decode(&input, &mut pic).unwrap();
            let (y, c) = (w * h, w * h / 2);
            let luma = mean_abs_diff(&pic.data[..y], &reference[..y]);
            let chroma = mean_abs_diff(&pic.data[y..y + c], &reference[y..y + c]);
            assert!(luma < 1.0 && chroma < 2.0, "luma {luma:.2} chroma {chroma:.2} levels off ffmpeg");
        }
        assert!(strip_dht(&jpeg).len() < jpeg.len(), "the test frame had tables to strip");
        // A frame of the wrong size and a truncated one are errors, not panics.
        let mut small = I420::new(160, 120);
        assert!(MjpegDecoder::default().decode(&jpeg, &mut small).unwrap_err().to_string().contains("320x240"));
        let mut pic = I420::new(w, h);
        assert!(MjpegDecoder::default().decode(&jpeg[..200], &mut pic).is_err());
    }
}
