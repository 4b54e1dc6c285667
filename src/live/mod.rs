//! Seeing a camera now: its frames as they arrive, re-packaged without re-encoding.
//!
//! - [`hub`]: one camera's broadcast, fed by the source before batching (bounded per viewer,
//!   idle at near-zero cost).
//! - [`fmp4`]: the init segment and per-frame fragments (fragmented MP4, wall-clock `tfdt`)
//!   that Media Source Extensions, ffmpeg and VLC play.
//! - [`decode`]: decode times for B-frame streams, estimated as frames arrive.
//! - [`hls`]: GOP-long segments and a playlist, for Safari on the iPhone.
//!
//! Design: `docs/design/live.md`.

pub mod decode;
pub mod fmp4;
pub mod hls;
pub mod hub;
