//! edgenvr: a network video recorder for Raspberry Pi-class boards.
//!
//! # Data path
//!
//! ```text
//! source (testsrc, RTSP, V4L2) → encode (raw only) → chunk writer → chunk files + index
//!                                                                     ↑
//!                                                reaper (retention) ──┘
//! http / cli → index → chunk reader → export
//! ```
//!
//! # Layout
//!
//! - [`source`]: frames in; [`encode`]: raw pictures → H.264; [`frame`]: the unit between.
//! - [`chunk`]: the chunk file format, writer, reader and scanner.
//! - [`index`]: the SQLite index; [`storage`]: storage roots; [`reaper`]: retention.
//! - [`recovery`]: startup recovery and `check`; [`recorder`]: one camera's threads;
//!   [`service`]: `run`; [`cli`]: the command line.
//! - Plumbing: [`config`], [`error`], [`time`], [`clock`], [`shutdown`], [`status`],
//!   [`logging`], [`h264`].
//!
//! Design notes live in `docs/design/`.

#![deny(missing_docs)]
#![deny(clippy::print_stdout)]

pub mod error;

pub mod export;

pub mod chunk;
pub mod cli;
pub mod clock;
pub mod config;
pub mod encode;
pub mod frame;
pub mod h264;
pub mod http;
pub mod index;
pub mod logging;
pub mod notify;
pub mod reaper;
pub mod recorder;
pub mod recovery;
pub mod service;
pub mod shutdown;
pub mod source;
pub mod status;
pub mod storage;
#[cfg(test)]
pub(crate) mod testutil;
pub mod text;
pub mod time;
pub mod v4l2;
pub mod watchdog;
