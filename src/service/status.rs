//! Live counters shared between a camera's threads and readers (status, health, API).
//!
//! Plain atomics and two small mutex-guarded fields (the last error, the encoder label):
//! writers never wait on readers.

use crate::encode::EncoderLabel;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

/// Where a camera's source is in its life cycle.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CameraState {
    /// Not started yet, or disabled.
    Idle = 0,
    /// Connecting / opening the device.
    Connecting = 1,
    /// Frames are flowing.
    Recording = 2,
    /// Failed; waiting out the back-off before retrying.
    Retrying = 3,
}

impl CameraState {
    /// The name shown by status.
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Idle => "idle",
            CameraState::Connecting => "connecting",
            CameraState::Recording => "recording",
            CameraState::Retrying => "retrying",
        }
    }

    fn from_u8(v: u8) -> CameraState {
        match v {
            1 => CameraState::Connecting,
            2 => CameraState::Recording,
            3 => CameraState::Retrying,
            _ => CameraState::Idle,
        }
    }
}

/// Counters for one camera. Written by its source and writer threads.
#[derive(Default)]
pub struct CameraStats {
    /// Frames written to chunk files.
    pub frames_written: AtomicU64,
    /// Bytes of records written to chunk files.
    pub bytes_written: AtomicU64,
    /// Frames lost anywhere (queue full, disk full, waiting for a keyframe, no root).
    pub frames_dropped: AtomicU64,
    /// Times the recording was interrupted (a drop run, a reconnect).
    pub gaps: AtomicU64,
    /// Timestamp of the last frame received from the source, µs (0 = never).
    pub last_frame_us: AtomicI64,
    /// Index id of the root being written (0 = none).
    pub current_root: AtomicI64,
    /// Chunks sealed.
    pub chunks_sealed: AtomicU64,
    /// The last error, sanitised (no credentials), for status.
    pub last_error: Mutex<Option<String>>,
    /// [`CameraState`] as a number.
    state: AtomicU8,
    /// When the state last changed, µs.
    pub state_since_us: AtomicI64,
    /// Bytes received from the source (before any drop), for the bitrate.
    pub bytes_received: AtomicU64,
    /// Frames received from the source.
    pub frames_received: AtomicU64,
    /// Source (re)connections.
    pub connects: AtomicU64,
    /// Recorded bitrate over the last few seconds, bits per second (written by the writer
    /// thread).
    pub bitrate_bps: AtomicU64,
    /// What encodes this camera's video (`None` until its source started).
    encoder: Mutex<Option<EncoderLabel>>,
    /// [`mono_ms`] when the source loop last made progress (a frame, a retry, an item).
    pub source_beat_ms: AtomicU64,
    /// [`mono_ms`] when the writer loop last made progress (a batch or a tick).
    pub writer_beat_ms: AtomicU64,
    /// Audio frames written to audio sibling files (`docs/design/audio.md`).
    pub audio_frames: AtomicU64,
    /// Audio payload bytes written to audio sibling files.
    pub audio_bytes: AtomicU64,
    /// Audio frames dropped (no chunk open, out of order, an audio write error, or a
    /// jump off the video's timeline).
    pub audio_dropped: AtomicU64,
}

/// Milliseconds on a monotonic clock that starts at the first call (never 0 after it).
pub fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1
}

impl CameraStats {
    /// The source loop made progress.
    pub fn beat_source(&self) {
        self.source_beat_ms.store(mono_ms(), Relaxed);
    }

    /// The writer loop made progress.
    pub fn beat_writer(&self) {
        self.writer_beat_ms.store(mono_ms(), Relaxed);
    }

    /// Moves to `state`, stamping the time if it changed.
    pub fn set_state(&self, state: CameraState) {
        if self.state.swap(state as u8, Relaxed) != state as u8 {
            self.state_since_us.store(crate::time::now_us(), Relaxed);
        }
    }

    /// The last error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The encoder in use, for status (`None` before the camera's source started).
    pub fn encoder(&self) -> Option<EncoderLabel> {
        *self.encoder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records which encoder produces this camera's video.
    pub fn set_encoder(&self, e: EncoderLabel) {
        *self.encoder.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// The current state.
    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Relaxed))
    }

    /// Records an error for status.
    pub fn set_error(&self, e: impl ToString) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// Adds `n` dropped frames, counting a gap when a drop run starts.
    pub fn add_dropped(&self, n: u64, new_gap: bool) {
        self.frames_dropped.fetch_add(n, Relaxed);
        if new_gap {
            self.gaps.fetch_add(1, Relaxed);
        }
    }
}
