//! A picture as a camera delivered it, and its conversion to I420 for the encoders.

use super::convert::{nv12_to_i420, yu12_to_i420, yuyv_to_i420};
use super::mjpeg::MjpegDecoder;
use super::yuv::I420;
use crate::bail;
use crate::error::Result;
use crate::kernel::v4l2::Fourcc;

/// One raw or MJPEG picture, borrowed from a capture buffer.
#[derive(Copy, Clone, Debug)]
pub struct RawFrame<'a> {
    /// YUYV, NV12, YU12 or MJPG.
    pub fourcc: Fourcc,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes per (luma) row.
    pub stride: usize,
    /// Rows between the starts of the luma and chroma planes (≥ height; drivers may pad).
    pub plane_rows: usize,
    /// The bytes.
    pub data: &'a [u8],
}

impl RawFrame<'_> {
    /// Checks the buffer holds a whole picture of its format, so conversion cannot read
    /// past it (a truncated USB transfer gives a short buffer).
    pub fn validate(&self) -> Result<()> {
        // First, so the sizes below cannot underflow.
        if self.width == 0 || self.height == 0 || self.width % 2 != 0 || self.height % 2 != 0 {
            bail!(Media, "{}x{} is not an even picture size", self.width, self.height);
        }
        let need = match self.fourcc {
            Fourcc::YUYV => self.stride * (self.height - 1) + self.width * 2,
            Fourcc::NV12 => self.stride * self.plane_rows + self.stride * (self.height / 2 - 1) + self.width,
            Fourcc::YU12 => {
                let cs = self.stride / 2;
                self.stride * self.plane_rows + cs * (self.plane_rows / 2) + cs * (self.height / 2 - 1) + self.width / 2
            }
            Fourcc::MJPG => 2,
            f => bail!(Media, "pixel format {f} is not supported"),
        };
        let min_stride = if self.fourcc == Fourcc::YUYV { self.width * 2 } else { self.width };
        if (self.fourcc != Fourcc::MJPG && (self.stride < min_stride || self.plane_rows < self.height))
            || self.data.len() < need
        {
            bail!(
                Media,
                "short {} frame: {} bytes, {need} needed for {}x{}",
                self.fourcc,
                self.data.len(),
                self.width,
                self.height
            );
        }
        Ok(())
    }
}

/// Converts camera pictures to I420, keeping the picture and MJPEG scratch between frames.
pub struct Converter {
    pic: I420,
    mjpeg: MjpegDecoder,
}

impl Converter {
    /// A converter for pictures of `width` x `height`.
    pub fn new(width: usize, height: usize) -> Converter {
        Converter { pic: I420::new(width, height), mjpeg: MjpegDecoder::default() }
    }

    /// Converts (or decodes) `raw` and returns the I420 picture.
    pub fn to_i420(&mut self, raw: &RawFrame<'_>) -> Result<&I420> {
        raw.validate()?;
        if (raw.width, raw.height) != (self.pic.width, self.pic.height) {
            self.pic = I420::new(raw.width, raw.height);
        }
        match raw.fourcc {
            Fourcc::YUYV => yuyv_to_i420(raw.data, raw.stride, &mut self.pic),
            Fourcc::NV12 => nv12_to_i420(raw.data, raw.stride, raw.plane_rows, &mut self.pic),
            Fourcc::YU12 => yu12_to_i420(raw.data, raw.stride, raw.plane_rows, &mut self.pic),
            Fourcc::MJPG => self.mjpeg.decode(raw.data, &mut self.pic)?,
            f => bail!(Media, "pixel format {f} is not supported"),
        }
        Ok(&self.pic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_odd_frames_are_refused_not_read_past() {
        let data = vec![0u8; 640 * 480 * 2 - 1];
        let f = RawFrame { fourcc: Fourcc::YUYV, width: 640, height: 480, stride: 1280, plane_rows: 480, data: &data };
        let e = f.validate().unwrap_err().to_string();
        assert!(e.contains("short YUYV frame"), "{e}");
        let mut c = Converter::new(640, 480);
        assert!(c.to_i420(&f).is_err());
        let f = RawFrame { width: 639, ..f };
        assert!(f.validate().unwrap_err().to_string().contains("even"));
        let ok = vec![0u8; 640 * 480 * 2];
        let f = RawFrame { fourcc: Fourcc::YUYV, width: 640, height: 480, stride: 1280, plane_rows: 480, data: &ok };
        assert!(c.to_i420(&f).is_ok());
        let f = RawFrame { fourcc: Fourcc(*b"RGB3"), ..f };
        assert!(f.validate().unwrap_err().to_string().contains("not supported"));
    }
}
