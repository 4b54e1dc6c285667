//! Where frames come from. Each camera's [`Source`] produces [`EncodedFrame`]s and hands
//! them to its writer through a bounded queue ([`FrameSender`]), under a supervisor that
//! retries it after errors.
//!
//! - [`testsrc`]: the built-in synthetic camera (pattern + burned-in clock, openh264).
//! - [`rtsp`]: IP cameras over RTSP (retina), stored without re-encoding.
//! - [`v4l2`]: local cameras (UVC webcams), H.264 stored as is, raw and MJPEG encoded.
//! - [`audio`]: a camera's audio over RTSP: which stream, its description, its timestamps.
//! - [`clock`]: maps each source's own clock onto wall-clock timestamps.
//! - [`supervisor`]: the one retry loop: back-off, status, logging, watchdog beats.
//! - [`start`]: which [`Source`] a `[[camera]]` gets, and the runtimes sources share.

pub mod audio;
pub mod clock;
pub mod rtsp;
pub mod start;
pub mod supervisor;
pub mod testsrc;
pub mod v4l2;

use crate::encode::EncoderLabel;
use crate::error::Result;
use crate::live::hub::LiveHub;
use crate::media::audio::AudioFrame;
use crate::media::frame::EncodedFrame;
use crate::service::status::CameraStats;
use crate::shutdown::Shutdown;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A camera's source, whatever its kind: the recorder starts one without knowing which.
pub trait Source: Send {
    /// What encodes its video, for status, until a session knows better.
    fn encoder(&self) -> EncoderLabel;

    /// Starts its supervised loop, which records until shutdown or until the writer goes
    /// away. Returns the loop's thread, or `None` when it runs as a task on a shared
    /// runtime (RTSP).
    fn start(self: Box<Self>, feed: Feed) -> Result<Option<JoinHandle<()>>>;
}

/// What a source is handed when it starts.
pub struct Feed {
    /// The camera's id, for logs and thread names.
    pub camera: String,
    /// The bounded queue to the camera's writer.
    pub out: FrameSender,
    /// Timestamps must start after this: the camera's newest recorded frame.
    pub floor_us: Option<i64>,
    /// The camera's live counters.
    pub stats: Arc<CameraStats>,
    /// Stops thread-based sources.
    pub shutdown: Shutdown,
}

/// Batches a camera's queue holds between source and writer. With [`BATCH_BYTES`] this
/// bounds the memory a stalled disk can make a camera hold to about 4 MiB.
pub const QUEUE_BATCHES: usize = 3;

/// A batch is handed over at the next keyframe (one GOP) or when it reaches this size.
pub const BATCH_BYTES: usize = 1 << 20;

/// A batch is also handed over once it spans this much stream time, so a camera with long
/// GOPs does not hold frames back from the disk (and from `sync_interval`'s promise).
pub const BATCH_MAX_SPAN_US: i64 = 1_000_000;

/// Frames handed to the writer in one go: normally one GOP, starting at a keyframe, with the
/// audio frames that arrived during it. The writer writes the video first (rotating at its
/// keyframe), then the audio, so audio lands in the sibling of the chunk its GOP is in.
#[derive(Default, Debug)]
pub struct Batch {
    /// Video frames in decode order.
    pub video: Vec<EncodedFrame>,
    /// Audio frames in arrival order (`docs/design/audio.md`).
    pub audio: Vec<AudioFrame>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.video.is_empty() && self.audio.is_empty()
    }

    /// Frames of both kinds, for the drop counter.
    fn len(&self) -> usize {
        self.video.len() + self.audio.len()
    }
}

/// The sending end of a camera's bounded frame queue, with batching and the drop policy
/// built in. Frames are gathered per GOP and handed over when the next keyframe arrives (or
/// the batch reaches [`BATCH_BYTES`] or spans [`BATCH_MAX_SPAN_US`]), so the writer thread
/// wakes about once a second instead of once per frame; it writes per GOP anyway.
pub struct FrameSender {
    tx: SyncSender<Batch>,
    stats: Arc<CameraStats>,
    batch: Batch,
    batch_bytes: usize,
    /// A batch was dropped; skip until the next keyframe so the writer never gets a GOP
    /// with a hole in it.
    dropping: bool,
    /// The camera's live view, offered every frame before batching (and before any drop
    /// for a slow disk), so live latency does not include the GOP batching.
    live: Option<Arc<LiveHub>>,
}

/// What happened to a frame offered to the queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Taken (batched or queued).
    Queued,
    /// Dropped (queue full, or waiting for a keyframe after a drop). A source that can
    /// should force a keyframe soon.
    Dropped,
    /// The writer is gone: the source should stop.
    Closed,
}

impl FrameSender {
    /// Wraps the sending end of a `sync_channel(QUEUE_BATCHES)`.
    pub fn new(tx: SyncSender<Batch>, stats: Arc<CameraStats>) -> FrameSender {
        FrameSender { tx, stats, batch: Batch::default(), batch_bytes: 0, dropping: false, live: None }
    }

    /// Also offers every frame to `hub` (the live view; idle, it costs an atomic load).
    pub fn with_live(mut self, hub: Arc<LiveHub>) -> FrameSender {
        self.live = Some(hub);
        self
    }

    /// Offers a frame without blocking.
    pub fn send(&mut self, f: EncodedFrame) -> Sent {
        if let Some(hub) = &self.live {
            hub.publish(&f);
        }
        if f.keyframe || f.discontinuity {
            if let Some(r) = self.hand_over() {
                return r;
            }
            self.dropping = false;
        }
        if self.dropping {
            self.stats.add_dropped(1, false);
            return Sent::Dropped;
        }
        let span = self.batch.video.first().map_or(0, |b| f.ts_us - b.ts_us);
        self.batch_bytes += f.byte_len();
        self.batch.video.push(f);
        if self.batch_bytes >= BATCH_BYTES || span >= BATCH_MAX_SPAN_US {
            if let Some(r) = self.hand_over() {
                return r;
            }
        }
        Sent::Queued
    }

    /// Offers an audio frame without blocking. It rides in the current batch (its bytes count
    /// towards [`BATCH_BYTES`]) and shares the batch's fate: while video is dropped for a
    /// slow disk, audio is dropped too (counted), so the two stay together. Audio alone
    /// never holds more than [`BATCH_BYTES`]: a full batch is handed over.
    pub fn send_audio(&mut self, a: AudioFrame) -> Sent {
        if self.dropping {
            self.stats.add_dropped(1, false);
            return Sent::Dropped;
        }
        self.batch_bytes += a.data.len();
        self.batch.audio.push(a);
        if self.batch_bytes >= BATCH_BYTES {
            if let Some(r) = self.hand_over() {
                return r;
            }
        }
        Sent::Queued
    }

    /// Hands any batched frames to the writer now (a source ending its session calls this so
    /// the tail of the stream is not held back).
    pub fn flush(&mut self) -> Sent {
        self.hand_over().unwrap_or(Sent::Queued)
    }

    /// Queues the current batch (a full queue drops it, counted). `Some(Sent::Closed)` when
    /// the writer is gone and the caller must stop; `None` otherwise.
    fn hand_over(&mut self) -> Option<Sent> {
        if self.batch.is_empty() {
            return None;
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        match self.tx.try_send(batch) {
            Ok(()) => None,
            Err(TrySendError::Full(b)) => {
                if !self.dropping {
                    log::warn!("frame queue full (disk too slow?); dropping until the next keyframe");
                }
                self.stats.add_dropped(b.len() as u64, !self.dropping);
                self.dropping = true;
                None
            }
            Err(TrySendError::Disconnected(_)) => Some(Sent::Closed),
        }
    }
}

impl Drop for FrameSender {
    fn drop(&mut self) {
        let _ = self.hand_over();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h26x::Codec;
    use std::sync::atomic::Ordering::Relaxed;

    fn frame(key: bool) -> EncodedFrame {
        let mut f = EncodedFrame::new(0, Codec::H264);
        f.push_nal(if key { &[0x65, 0] } else { &[0x41, 0] });
        f
    }

    /// A stalled disk (the writer stops draining): whole GOPs are dropped and counted, never
    /// queued without bound, and sending resumes at a keyframe with a clean GOP.
    #[test]
    fn full_queue_drops_whole_gops_and_resumes_at_a_keyframe() {
        let stats = Arc::new(CameraStats::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let mut s = FrameSender::new(tx, stats.clone());
        // GOP 1 (3 frames) is handed over when GOP 2 starts.
        for k in [true, false, false, true, false] {
            assert_eq!(s.send(frame(k)), Sent::Queued);
        }
        assert_eq!(rx.try_recv().unwrap().len(), 3);
        // GOP 2 is queued at GOP 3's keyframe; GOP 3 finds the queue full and is dropped.
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(s.send(frame(false)), Sent::Queued);
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(stats.frames_dropped.load(Relaxed), 2);
        assert_eq!(stats.gaps.load(Relaxed), 1);
        let gop2 = rx.try_recv().unwrap();
        assert!(gop2.video[0].keyframe && gop2.len() == 2);
        // The writer drains: the next GOP arrives whole, starting at its keyframe.
        assert_eq!(s.send(frame(false)), Sent::Queued);
        assert_eq!(s.flush(), Sent::Queued);
        let next = rx.try_recv().unwrap();
        assert!(next.video[0].keyframe && next.len() == 2);
        drop(rx);
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(s.send(frame(true)), Sent::Closed);
    }

    /// Audio rides with the GOP it arrived in, and is dropped (counted) with it while the
    /// disk is too slow, so audio never outlives the video it belongs to.
    #[test]
    fn audio_rides_with_its_gop_and_is_dropped_with_it() {
        use crate::media::audio::{AudioCodec, AudioParams};
        let params = Arc::new(AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] });
        let audio = || AudioFrame { ts_us: 0, params: params.clone(), data: vec![0xff; 160] };
        let stats = Arc::new(CameraStats::default());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let mut s = FrameSender::new(tx, stats.clone());
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(s.send_audio(audio()), Sent::Queued);
        assert_eq!(s.send(frame(false)), Sent::Queued);
        assert_eq!(s.send_audio(audio()), Sent::Queued);
        assert_eq!(s.send(frame(true)), Sent::Queued);
        let b = rx.try_recv().unwrap();
        assert_eq!((b.video.len(), b.audio.len()), (2, 2));
        // The queue (one batch) fills; audio past BATCH_BYTES finds it full: dropped with
        // its GOP, and what follows is dropped until the next keyframe.
        assert_eq!(s.send(frame(false)), Sent::Queued);
        assert_eq!(s.send(frame(true)), Sent::Queued);
        let big = AudioFrame { ts_us: 0, params: params.clone(), data: vec![0; BATCH_BYTES] };
        assert_eq!(s.send_audio(big), Sent::Queued);
        assert_eq!(stats.frames_dropped.load(Relaxed), 2);
        assert_eq!(s.send_audio(audio()), Sent::Dropped);
        assert_eq!(s.send(frame(false)), Sent::Dropped);
        assert_eq!(stats.frames_dropped.load(Relaxed), 4);
        assert_eq!(rx.try_recv().unwrap().video.len(), 2);
        assert_eq!(s.send(frame(true)), Sent::Queued);
        assert_eq!(s.send_audio(audio()), Sent::Queued);
    }
}
