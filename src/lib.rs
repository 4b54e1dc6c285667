//! edgenvr: a network video recorder for Raspberry Pi-class boards.
//!
//! # Data path
//!
//! ```text
//! source (testsrc, RTSP, V4L2) → encode (raw only) → chunk writer → chunk files + index
//!                                        │                            ↑
//!                                        └▶ live hub (viewers)  reaper (retention)
//! http / cli → index → chunk reader → export, thumbnails, timeline
//! ```
//!
//! # Layout
//!
//! The rooms, roughly in data-path order.
//!
//! - Plumbing used everywhere: [`error`] (the one error type), [`time`] (µs since the
//!   epoch, civil dates), [`tz`] (IANA zones for clients' local days), [`text`]
//!   (percent-decoding), [`shutdown`] (the one stop signal), [`logging`], [`config`] (the
//!   TOML file, its limits and the embedded default).
//! - [`media`]: what flows: [`media::h26x`] (codecs, NAL units) and [`media::frame`] (one
//!   encoded access unit with its wall-clock time).
//! - [`kernel`]: the kernel interfaces local cameras and the hardware encoder drive
//!   ([`kernel::v4l2`]), and background thread priority ([`kernel::priority`]).
//! - [`source`]: frames in: [`source::testsrc`], [`source::rtsp`], [`source::v4l2`]; their
//!   timestamps ([`source::clock`]), the bounded queue to the writer, the one retry loop
//!   ([`source::supervisor`]) and which source a camera gets ([`source::start`]).
//! - [`encode`]: raw pictures → H.264 (openh264 or the board's M2M encoder).
//! - [`chunk`]: the chunk file format, its writer, reader and scanner.
//! - [`index`]: the SQLite index of every chunk (the API reads it through its own
//!   read-only connections, [`index::readers`]): rows read strictly ([`index::row`]), the
//!   connection ([`index::open`]), the lock that keeps a second process off the chunks
//!   being written ([`index::lock`]), and [`index::timeline`] (recorded seconds and gaps per
//!   local day and hour).
//! - [`storage`]: storage roots and their health; [`storage::reaper`] (retention),
//!   [`storage::recovery`] (startup recovery), [`storage::check`] (`edgenvr check`),
//!   [`storage::indexer`] (footage the index does not know, found in the background), and
//!   [`storage::walk`] / [`storage::confined`] (finding and opening files without ever
//!   following a symlink out of a root).
//! - [`events`]: footage that matters (API, CLI, MQTT, camera motion): checked, stored in the
//!   index (which marks the chunks holding it for the reaper's retention classes and the
//!   archive), closed after `max_duration`, told to listeners such as [`mqtt`].
//! - [`mqtt`]: events and state out to a broker, Home Assistant discovery, commands in (its
//!   own thread, bounded queue; a broker down never touches recording).
//! - [`export`]: reading footage back as MP4 or Annex B, with `Range`.
//! - [`archive`]: copies off the box to S3-compatible storage ([`archive::upload`], one
//!   thread; progress in the index), manifests and `restore`, and archived-only footage
//!   fetched back for exports ([`archive::fetch`]).
//! - [`thumb`]: thumbnails (keyframe → JPEG in a child process).
//! - [`live`]: the live view ([`live::hub`], [`live::fmp4`], [`live::hls`]) fed by the
//!   sources' queue ([`source::FrameSender`]) before GOP batching.
//! - [`service`]: the running service (`edgenvr run`): [`service::recorder`] wires one
//!   camera's threads, [`service::status`] holds live counters, [`service::watchdog`] and
//!   [`service::notify`] talk to systemd.
//! - [`pynvr`]: PyNVR's API (paths and documents) for its pages and scripts.
//! - [`onvif`]: IP cameras on the LAN: WS-Discovery, the ONVIF device and media calls that
//!   turn a found camera into a ready-to-add one, and its own motion events (PullPoint).
//! - [`http`]: the HTTP API (hyper on its own thread, every client-held resource capped,
//!   access control); [`cli`]: the command line.
//!
//! Design notes live in `docs/design/`.

#![deny(missing_docs)]
#![deny(clippy::print_stdout)]

pub mod config;
pub mod error;
pub mod logging;
pub mod shutdown;
pub mod text;
pub mod time;
pub mod tz;

pub mod media;

pub mod kernel;

pub mod encode;
pub mod source;

pub mod chunk;
pub mod index;
pub mod storage;

pub mod events;
pub mod mqtt;

pub mod archive;
pub mod export;
pub mod live;
pub mod pynvr;
pub mod thumb;

pub mod service;

pub mod onvif;

pub mod cli;
pub mod http;

#[cfg(test)]
pub(crate) mod testutil;
