//! Motion JPEG → I420, for webcams that only deliver high resolutions as MJPEG. Decoding
//! uses `zune-jpeg` (pure Rust, no C library to cross-compile), which also copes with the
//! Huffman-table-less JPEGs many UVC cameras send.

use super::convert::ycbcr444_to_i420;
use super::yuv::I420;
use crate::error::{Error, ErrorKind, Result};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// A reusable MJPEG decoder with its scratch buffer (one picture of YCbCr, kept between
/// frames so a camera's steady state allocates nothing).
#[derive(Default)]
pub struct MjpegDecoder {
    scratch: Vec<u8>,
}

impl MjpegDecoder {
    /// Decodes one JPEG into `dst`, which must have the JPEG's size (a camera whose JPEGs do
    /// not match its negotiated size is reported, not resized).
    pub fn decode(&mut self, jpeg: &[u8], dst: &mut I420) -> Result<()> {
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::YCbCr)
            .set_max_width(dst.width)
            .set_max_height(dst.height);
        let mut d = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        d.decode_headers().map_err(|e| Error::new(ErrorKind::Media, format!("bad MJPEG frame: {e:?}")))?;
        let (w, h) = d.dimensions().ok_or_else(|| Error::new(ErrorKind::Media, "MJPEG frame without a size"))?;
        if (w, h) != (dst.width, dst.height) {
            return Err(Error::new(
                ErrorKind::Media,
                format!("MJPEG frame is {w}x{h}, the camera was set to {}x{}", dst.width, dst.height),
            ));
        }
        let size = d.output_buffer_size().ok_or_else(|| Error::new(ErrorKind::Media, "MJPEG frame without a size"))?;
        self.scratch.resize(size, 0);
        d.decode_into(&mut self.scratch)
            .map_err(|e| Error::new(ErrorKind::Media, format!("bad MJPEG frame: {e:?}")))?;
        match d.output_colorspace() {
            Some(ColorSpace::YCbCr) => ycbcr444_to_i420(&self.scratch, dst),
            Some(ColorSpace::Luma) => {
                let n = dst.width * dst.height;
                dst.data[..n].copy_from_slice(&self.scratch[..n]);
                dst.data[n..].fill(128);
            }
            other => return Err(Error::new(ErrorKind::Media, format!("MJPEG frame decodes to {other:?}, not YCbCr"))),
        }
        Ok(())
    }
}
