//! Software H.264 encoding with openh264 (Cisco's encoder, built from source by the crate).
//!
//! Used by the testsrc camera and, on boards without a hardware encoder (Pi 5), by V4L2
//! cameras. Single-threaded per camera so one camera cannot take every core.

use super::yuv::I420;
use crate::err;
use crate::error::Result;
use crate::media::frame::EncodedFrame;
use crate::media::h26x::Codec;
use openh264::encoder::{BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;

/// Encoder settings.
#[derive(Copy, Clone, Debug)]
pub struct SoftwareEncoderConfig {
    /// Target bitrate, bits per second.
    pub bitrate: u32,
    /// Nominal frame rate (for rate control).
    pub fps: u32,
    /// Frames between IDRs.
    pub keyframe_interval: u32,
}

/// An openh264 encoder producing [`EncodedFrame`]s.
pub struct SoftwareEncoder {
    enc: Encoder,
    /// Frames encoded, for the encoder's own millisecond clock.
    count: u64,
    fps: u32,
}

impl SoftwareEncoder {
    /// Creates an encoder; the picture size is taken from the first frame.
    pub fn new(cfg: SoftwareEncoderConfig) -> Result<SoftwareEncoder> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(cfg.bitrate))
            .max_frame_rate(FrameRate::from_hz(cfg.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .intra_frame_period(IntraFramePeriod::from_num_frames(cfg.keyframe_interval))
            .skip_frames(false)
            .scene_change_detect(false)
            .num_threads(1);
        let enc = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| err!(Media, "starting openh264 encoder").with_source(e))?;
        Ok(SoftwareEncoder { enc, count: 0, fps: cfg.fps.max(1) })
    }

    /// Makes the next encoded frame an IDR (after frames were dropped downstream, so the
    /// writer can resume at once instead of waiting out the GOP).
    pub fn force_keyframe(&mut self) {
        self.enc.force_intra_frame();
    }

    /// Encodes one picture taken at `ts_us`. Returns `None` if the encoder produced no
    /// picture for it (openh264 may skip a frame to hold the bitrate).
    pub fn encode(&mut self, pic: &I420, ts_us: i64) -> Result<Option<EncodedFrame>> {
        let (y, u, v) = pic.planes();
        let src = YUVSlices::new((y, u, v), (pic.width, pic.height), (pic.width, pic.width / 2, pic.width / 2));
        let ms = self.count * 1000 / self.fps as u64;
        self.count += 1;
        let bs = self
            .enc
            .encode_at(&src, openh264::Timestamp::from_millis(ms))
            .map_err(|e| err!(Media, "openh264 encode failed").with_source(e))?;
        let mut annex_b = Vec::new();
        bs.write_vec(&mut annex_b);
        if annex_b.is_empty() {
            return Ok(None);
        }
        let frame = EncodedFrame::from_annex_b(ts_us, Codec::H264, &annex_b);
        Ok(frame.has_slice().then_some(frame))
    }
}

/// openh264 behind [`super::H264Encoder`], converting camera pictures to I420 first.
pub struct SoftwareH264 {
    enc: SoftwareEncoder,
    conv: super::raw::Converter,
}

impl SoftwareH264 {
    /// An openh264 encoder for a camera's pictures.
    pub fn new(p: &super::EncoderParams) -> Result<SoftwareH264> {
        let enc = SoftwareEncoder::new(SoftwareEncoderConfig {
            bitrate: p.bitrate,
            fps: p.fps,
            keyframe_interval: p.keyframe_interval,
        })?;
        Ok(SoftwareH264 { enc, conv: super::raw::Converter::new(p.width as usize, p.height as usize) })
    }
}

impl super::H264Encoder for SoftwareH264 {
    fn label(&self) -> super::EncoderLabel {
        super::EncoderLabel::Openh264
    }

    fn encode(&mut self, raw: &super::raw::RawFrame<'_>, ts_us: i64, out: &mut Vec<EncodedFrame>) -> Result<()> {
        let pic = self.conv.to_i420(raw)?;
        out.extend(self.enc.encode(pic, ts_us)?);
        Ok(())
    }

    fn force_keyframe(&mut self) {
        self.enc.force_keyframe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frame_is_idr_with_parameter_sets_and_gop_is_respected() {
        let mut e =
            SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 300_000, fps: 10, keyframe_interval: 5 }).unwrap();
        let mut pic = I420::new(64, 48);
        let mut keys = Vec::new();
        for i in 0..12 {
            pic.planes_mut().0.iter_mut().enumerate().for_each(|(j, p)| *p = ((i * 7 + j) % 200) as u8 + 16);
            let f = e.encode(&pic, i as i64).unwrap().expect("no frame skipping is configured");
            if i == 0 {
                let kinds: Vec<_> = f.nals().map(|n| Codec::H264.classify(n)).collect();
                assert!(
                    kinds.contains(&crate::media::h26x::NalKind::Sps)
                        && kinds.contains(&crate::media::h26x::NalKind::Pps),
                    "{kinds:?}"
                );
            }
            keys.push(f.keyframe);
        }
        assert!(keys[0]);
        assert!(keys[5] && keys[10], "IDR every 5 frames: {keys:?}");
        assert!(!keys[1] && !keys[6]);
    }
}
