//! From a `[[camera]]` to its source: the one place that looks at a camera's source kind
//! ([`source_for`]), and the runtimes the sources of a kind share ([`Runtimes`]).

use super::rtsp::RtspRuntime;
use super::{testsrc, v4l2, Source};
use crate::config::{CameraConfig, SourceConfig};
use crate::err;
use crate::error::Result;
use crate::shutdown::Shutdown;

/// Runtimes shared by every source of a kind, started once by the service.
pub struct Runtimes {
    /// The thread every RTSP camera runs on (present when an RTSP camera is enabled).
    rtsp: Option<RtspRuntime>,
}

impl Runtimes {
    /// Starts the runtimes the enabled `cameras` need.
    pub fn start(cameras: &[CameraConfig], shutdown: &Shutdown) -> Result<Runtimes> {
        let any_rtsp = cameras.iter().any(|c| c.enabled && matches!(c.source, SourceConfig::Rtsp(_)));
        Ok(Runtimes { rtsp: if any_rtsp { Some(RtspRuntime::start(shutdown)?) } else { None } })
    }

    /// Starts the runtime `cam` needs if it is not running yet (a camera added while the
    /// service runs).
    pub fn ensure_for(&mut self, cam: &CameraConfig, shutdown: &Shutdown) -> Result<()> {
        if matches!(cam.source, SourceConfig::Rtsp(_)) && self.rtsp.is_none() {
            self.rtsp = Some(RtspRuntime::start(shutdown)?);
        }
        Ok(())
    }

    /// Waits for the runtimes' threads (after shutdown fired).
    pub fn join(self) {
        if let Some(rt) = self.rtsp {
            rt.join();
        }
    }
}

/// The source `cam` records from.
pub fn source_for(cam: &CameraConfig, runtimes: &Runtimes) -> Result<Box<dyn Source>> {
    Ok(match &cam.source {
        SourceConfig::Testsrc(c) => Box::new(testsrc::source(c.clone())),
        SourceConfig::V4l2(c) => Box::new(v4l2::source(c.clone())),
        SourceConfig::Rtsp(c) => {
            let rt = runtimes.rtsp.as_ref().ok_or_else(|| err!(Internal, "the RTSP runtime was not started"))?;
            Box::new(rt.camera(c.clone()))
        }
    })
}
