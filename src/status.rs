//! Live counters shared between a camera's threads and readers (status, health, API).
//!
//! Plain atomics and a small mutex-guarded text field: writers never wait on readers.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

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
}

impl CameraStats {
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
