//! H.264 from the board's V4L2 memory-to-memory encoder (`bcm2835-codec` on the Pi 3, 4
//! and Zero 2 W). A camera picture already in a format the encoder takes (YUYV, NV12, YU12)
//! is copied in as is; anything else (MJPEG) is converted to I420 on the CPU first.

use super::m2m::{open_device, write_i420, write_native, CodedBuffer, M2mEncoder, M2mParams};
use super::raw::{Converter, RawFrame};
use super::{EncoderLabel, EncoderParams, H264Encoder};
use crate::error::Result;
use crate::kernel::v4l2::Fourcc;
use crate::media::frame::EncodedFrame;
use crate::media::h26x::Codec;
use std::path::Path;
use std::time::Duration;

/// Raw formats a camera can hand the encoder without conversion.
const NATIVE: [Fourcc; 3] = [Fourcc::YU12, Fourcc::NV12, Fourcc::YUYV];

/// The hardware encoder behind [`H264Encoder`].
pub struct HardwareH264 {
    m2m: M2mEncoder,
    native: bool,
    conv: Converter,
    coded: Vec<CodedBuffer>,
}

impl HardwareH264 {
    /// Opens the encoder at `path` for pictures of `camera_format`.
    pub fn open(path: &Path, camera_format: Fourcc, p: &EncoderParams) -> Result<HardwareH264> {
        // One open: the device's input formats decide the input, then the session starts on it.
        let (dev, info) = open_device(path)?;
        let native = NATIVE.contains(&camera_format) && info.input.contains(&camera_format);
        let input = if native { camera_format } else { Fourcc::YU12 };
        let m2m = M2mEncoder::start(
            dev,
            &info,
            &M2mParams {
                input,
                coded: Fourcc::H264,
                width: p.width,
                height: p.height,
                fps: p.fps,
                bitrate: p.bitrate,
                keyframe_interval: p.keyframe_interval,
            },
        )?;
        log::info!(
            "hardware encoder {}: {} {}x{} in ({}), H.264 out at {} b/s",
            path.display(),
            input,
            p.width,
            p.height,
            if native { "as the camera delivers it" } else { "converted on the CPU" },
            p.bitrate
        );
        Ok(HardwareH264 { m2m, native, conv: Converter::new(p.width as usize, p.height as usize), coded: Vec::new() })
    }

    fn collect(&mut self, out: &mut Vec<EncodedFrame>) {
        for c in self.coded.drain(..) {
            let f = EncodedFrame::from_annex_b(c.ts_us, Codec::H264, &c.data);
            if f.has_slice() {
                out.push(f);
            }
        }
    }
}

impl H264Encoder for HardwareH264 {
    fn label(&self) -> EncoderLabel {
        EncoderLabel::V4l2M2m
    }

    fn encode(&mut self, raw: &RawFrame<'_>, ts_us: i64, out: &mut Vec<EncodedFrame>) -> Result<()> {
        if self.native {
            self.m2m.encode_with(ts_us, |buf, l, rows| write_native(raw, buf, l, rows), &mut self.coded)?;
        } else {
            let pic = self.conv.to_i420(raw)?;
            self.m2m.encode_with(ts_us, |buf, l, rows| write_i420(pic, buf, l, rows), &mut self.coded)?;
        }
        self.collect(out);
        Ok(())
    }

    fn force_keyframe(&mut self) {
        self.m2m.force_keyframe();
    }

    fn finish(&mut self, out: &mut Vec<EncodedFrame>) {
        if let Err(e) = self.m2m.drain(Duration::from_millis(500), &mut self.coded) {
            log::warn!("hardware encoder: draining at the end of the session: {e}");
        }
        self.collect(out);
    }
}
