//! Where frames come from. Each source runs on its own thread, produces [`EncodedFrame`]s
//! and hands them to its camera's writer through a bounded queue ([`FrameSender`]).
//!
//! - [`testsrc`]: the built-in synthetic camera (pattern + burned-in clock, openh264).
//! - [`rtsp`]: IP cameras over RTSP (retina), stored without re-encoding.

pub mod rtsp;
pub mod testsrc;

use crate::frame::EncodedFrame;
use crate::status::CameraStats;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

/// Frames a camera's queue holds between source and writer: about two seconds at 30 fps.
/// When it is full (the disk stalls) the source drops frames until the next keyframe.
pub const QUEUE_FRAMES: usize = 64;

/// The sending end of a camera's bounded frame queue, with the drop policy built in.
pub struct FrameSender {
    tx: SyncSender<EncodedFrame>,
    stats: Arc<CameraStats>,
    /// A frame was dropped; skip until the next keyframe so the writer never gets a GOP
    /// with a hole in it.
    dropping: bool,
}

/// What happened to a frame offered to the queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Queued.
    Queued,
    /// Dropped (queue full, or waiting for a keyframe after a drop). A source that can
    /// should force a keyframe soon.
    Dropped,
    /// The writer is gone: the source should stop.
    Closed,
}

impl FrameSender {
    /// Wraps the sending end of a `sync_channel`.
    pub fn new(tx: SyncSender<EncodedFrame>, stats: Arc<CameraStats>) -> FrameSender {
        FrameSender { tx, stats, dropping: false }
    }

    /// Offers a frame without blocking.
    pub fn send(&mut self, f: EncodedFrame) -> Sent {
        if self.dropping && !f.keyframe {
            self.stats.add_dropped(1, false);
            return Sent::Dropped;
        }
        match self.tx.try_send(f) {
            Ok(()) => {
                self.dropping = false;
                Sent::Queued
            }
            Err(TrySendError::Full(_)) => {
                if !self.dropping {
                    log::warn!("frame queue full (disk too slow?); dropping until the next keyframe");
                }
                self.stats.add_dropped(1, !self.dropping);
                self.dropping = true;
                Sent::Dropped
            }
            Err(TrySendError::Disconnected(_)) => Sent::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::Codec;
    use std::sync::atomic::Ordering::Relaxed;

    fn frame(key: bool) -> EncodedFrame {
        let mut f = EncodedFrame::new(0, Codec::H264);
        f.push_nal(if key { &[0x65, 0] } else { &[0x41, 0] });
        f
    }

    /// A stalled disk (the writer stops draining): frames are dropped and counted, never
    /// queued without bound, and sending resumes only at a keyframe.
    #[test]
    fn full_queue_drops_until_the_next_keyframe() {
        let stats = Arc::new(CameraStats::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let mut s = FrameSender::new(tx, stats.clone());
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(s.send(frame(false)), Sent::Queued);
        assert_eq!(s.send(frame(false)), Sent::Dropped); // full
        rx.recv().unwrap();
        rx.recv().unwrap();
        assert_eq!(s.send(frame(false)), Sent::Dropped, "room again, but mid-GOP");
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(s.send(frame(false)), Sent::Queued);
        assert_eq!(stats.frames_dropped.load(Relaxed), 2);
        assert_eq!(stats.gaps.load(Relaxed), 1);
        drop(rx);
        assert_eq!(s.send(frame(true)), Sent::Closed);
    }
}
