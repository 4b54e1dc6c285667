//! Raw pictures → H.264. Sources that produce raw frames (the testsrc camera, V4L2 cameras
//! without H.264) encode here; H.264 from a camera is never re-encoded.

pub mod convert;
pub mod software;
pub mod yuv;
