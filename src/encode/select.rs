//! `encoder = "auto" | "hardware" | "software"`: which engine encodes a camera's pictures.
//!
//! `auto` uses the hardware encoder the probe finds and falls back to openh264 if it fails to
//! start, saying so (the log, and the camera's `encoder` in status). `hardware` never falls
//! back: an owner who asked for it wants to hear that it is missing. The engines are passed
//! in as functions so the rules are tested without devices.

use super::H264Encoder;
use crate::config::EncoderChoice;
use crate::err;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// The chosen encoder, and a note when `auto` had to fall back.
pub struct Selected {
    /// The encoder.
    pub encoder: Box<dyn H264Encoder>,
    /// Why the hardware encoder is not used, when `auto` fell back from it.
    pub fallback: Option<String>,
}

/// Picks and opens an encoder. `found` is the hardware encoder the probe found.
pub fn select(
    choice: EncoderChoice,
    found: Option<PathBuf>,
    open_hardware: impl FnOnce(&Path) -> Result<Box<dyn H264Encoder>>,
    open_software: impl FnOnce() -> Result<Box<dyn H264Encoder>>,
) -> Result<Selected> {
    match (choice, found) {
        (EncoderChoice::Software, _) | (EncoderChoice::Auto, None) => {
            Ok(Selected { encoder: open_software()?, fallback: None })
        }
        (EncoderChoice::Hardware, None) => Err(err!(
            NotFound,
            "encoder = \"hardware\" but this board has no V4L2 H.264 encoder (`edgenvr probe` lists what it has)"
        )),
        (EncoderChoice::Hardware, Some(p)) => Ok(Selected { encoder: open_hardware(&p)?, fallback: None }),
        (EncoderChoice::Auto, Some(p)) => match open_hardware(&p) {
            Ok(encoder) => Ok(Selected { encoder, fallback: None }),
            Err(e) => {
                let why = format!("hardware encoder {} failed to start ({e}); using openh264", p.display());
                Ok(Selected { encoder: open_software()?, fallback: Some(why) })
            }
        },
    }
}

impl std::fmt::Debug for Selected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selected").field("encoder", &self.encoder.label()).field("fallback", &self.fallback).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::raw::RawFrame;
    use crate::encode::EncoderLabel;
    use crate::media::frame::EncodedFrame;

    const HW: EncoderLabel = EncoderLabel::V4l2M2m;
    const SW: EncoderLabel = EncoderLabel::Openh264;

    struct Named(EncoderLabel);
    impl H264Encoder for Named {
        fn label(&self) -> EncoderLabel {
            self.0
        }
        fn encode(&mut self, _: &RawFrame<'_>, _: i64, _: &mut Vec<EncodedFrame>) -> Result<()> {
            Ok(())
        }
        fn force_keyframe(&mut self) {}
    }

    fn hw_ok(_: &Path) -> Result<Box<dyn H264Encoder>> {
        Ok(Box::new(Named(HW)))
    }
    fn hw_fails(_: &Path) -> Result<Box<dyn H264Encoder>> {
        Err(err!(Media, "VIDIOC_STREAMON: EBUSY"))
    }
    fn sw() -> Result<Box<dyn H264Encoder>> {
        Ok(Box::new(Named(SW)))
    }

    fn pick(choice: EncoderChoice, found: bool, hw: fn(&Path) -> Result<Box<dyn H264Encoder>>) -> Result<Selected> {
        select(choice, found.then(|| PathBuf::from("/dev/video11")), hw, sw)
    }

    #[test]
    fn auto_prefers_hardware_and_falls_back_saying_why() {
        let s = pick(EncoderChoice::Auto, true, hw_ok).unwrap();
        assert_eq!((s.encoder.label(), s.fallback), (HW, None));
        let s = pick(EncoderChoice::Auto, false, hw_ok).unwrap();
        assert_eq!((s.encoder.label(), s.fallback), (SW, None));
        let s = pick(EncoderChoice::Auto, true, hw_fails).unwrap();
        assert_eq!(s.encoder.label(), SW);
        let why = s.fallback.unwrap();
        assert!(why.contains("/dev/video11") && why.contains("EBUSY") && why.contains("openh264"), "{why}");
    }

    #[test]
    fn hardware_never_falls_back_and_software_never_probes() {
        assert!(pick(EncoderChoice::Hardware, true, hw_fails).unwrap_err().to_string().contains("EBUSY"));
        let e = pick(EncoderChoice::Hardware, false, hw_ok).unwrap_err();
        assert!(e.to_string().contains("no V4L2 H.264 encoder"), "{e}");
        assert_eq!(pick(EncoderChoice::Hardware, true, hw_ok).unwrap().encoder.label(), HW);
        let s = pick(EncoderChoice::Software, true, |_| panic!("software must not open the hardware")).unwrap();
        assert_eq!(s.encoder.label(), SW);
    }
}
