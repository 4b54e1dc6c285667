//! Chunk files: one file per camera per UTC minute, a record per NAL unit.
//!
//! - [`audio`]: the audio sibling file written beside a chunk, with the same records.
//! - [`format`](mod@format): the record layout (PyNVR-compatible) and its encoder/decoder.
//! - [`path`]: where a chunk lives and how its name is parsed back.
//! - [`reader`]: streams records out of a file with bounded memory, finding torn tails.
//! - [`frames`]: groups records back into frames (the run of records sharing a timestamp),
//!   as the scanner and the exports read them.
//! - [`scan`]: summarises a file in one pass (time span, frames, keyframe offsets, where it
//!   stops being valid), for recovery, `check` and import.
//! - [`writer`]: turns frames into files: rotation, buffering, fsync, failover.
//!
//! The format and the crash-safety rules are in `docs/design/chunk-format.md` and
//! `docs/design/crash-safety.md`.

pub mod audio;
pub mod format;
pub mod frames;
pub mod path;
pub mod reader;
pub mod scan;
pub mod writer;
