//! Raw pictures → H.264. Sources that produce raw frames (the testsrc camera, V4L2 cameras
//! without H.264) encode here; H.264 from a camera is never re-encoded.
//!
//! - [`raw`]: a camera's picture as delivered, and its conversion to I420 ([`convert`],
//!   [`mjpeg`], [`yuv`]).
//! - [`software`]: openh264. [`m2m`]: a V4L2 memory-to-memory encoder session;
//!   [`hardware`]: H.264 through it (the Pi's `bcm2835-codec`).
//! - [`select`]: `encoder = "auto" | "hardware" | "software"`.
//!
//! Every engine is an [`H264Encoder`]; [`EncoderLabel`] names it in status and the logs.

pub mod convert;
pub mod hardware;
pub mod m2m;
pub mod mjpeg;
pub mod raw;
pub mod select;
pub mod software;
pub mod yuv;

use crate::error::Result;
use crate::media::frame::EncodedFrame;
use raw::RawFrame;

/// What produces a camera's stored video, as status and the logs name it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EncoderLabel {
    /// Nothing: stored as the camera sent it (RTSP).
    None,
    /// Nothing: a V4L2 camera's own H.264, stored as delivered.
    CameraH264,
    /// openh264 on the CPU.
    Openh264,
    /// openh264, because the board's hardware encoder failed to start (`encoder = "auto"`).
    Openh264Fallback,
    /// The board's V4L2 memory-to-memory H.264 encoder.
    V4l2M2m,
}

impl EncoderLabel {
    /// The text status and the logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            EncoderLabel::None => "none",
            EncoderLabel::CameraH264 => "none (camera H.264)",
            EncoderLabel::Openh264 => "openh264",
            EncoderLabel::Openh264Fallback => "openh264 (hardware failed)",
            EncoderLabel::V4l2M2m => "v4l2-m2m",
        }
    }
}

/// An H.264 encoder fed with camera pictures, whichever engine runs it.
pub trait H264Encoder: Send {
    /// Which engine it is, for logs and status.
    fn label(&self) -> EncoderLabel;

    /// Encodes one picture taken at `ts_us` (µs since the epoch), appending whatever
    /// frames are ready to `out`. An encoder may return a picture's frame on a later call.
    fn encode(&mut self, raw: &RawFrame<'_>, ts_us: i64, out: &mut Vec<EncodedFrame>) -> Result<()>;

    /// Makes the next frame an IDR (after frames were dropped downstream).
    fn force_keyframe(&mut self);

    /// Collects frames still inside the encoder at the end of a session.
    fn finish(&mut self, _out: &mut Vec<EncodedFrame>) {}
}

/// What an H.264 encoder is asked for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EncoderParams {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Nominal frame rate (rate control).
    pub fps: u32,
    /// Target bits per second.
    pub bitrate: u32,
    /// Frames between IDRs.
    pub keyframe_interval: u32,
}

impl EncoderParams {
    /// A bitrate that suits the picture when none is configured: about 1/12 bit per pixel
    /// per frame (640x480@25 ≈ 0.64 Mb/s, 1080p30 ≈ 5.2 Mb/s), within 200 kb/s–8 Mb/s.
    pub fn default_bitrate(width: u32, height: u32, fps: u32) -> u32 {
        (width as u64 * height as u64 * fps.max(1) as u64 / 12).clamp(200_000, 8_000_000) as u32
    }
}
