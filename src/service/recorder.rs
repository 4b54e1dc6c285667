//! One camera's pipeline: a source feeding a writer thread through a bounded queue.
//!
//! ```text
//!   source thread / RTSP task       queue of GOP batches            wr-{id} thread
//!   source → encode → FrameSender ───────────────────────▶ ChunkWriter → files + index
//! ```
//!
//! The source owns its retries (the [`supervisor`](crate::source::supervisor): an error is
//! logged once, recorded for status, and the source restarts after a capped exponential
//! back-off). The writer thread ends when the source drops its sender, sealing the open
//! chunk, so shutdown order falls out of ownership: stop sources → writers drain and seal →
//! index commits.

use crate::chunk::writer::{ChunkWriter, WriterContext};
use crate::config::CameraConfig;
use crate::error::{Error, Result};
use crate::live::hub::LiveHub;
use crate::media::h26x::Codec;
use crate::service::status::CameraStats;
use crate::shutdown::Shutdown;
use crate::source::start::{source_for, Runtimes};
use crate::source::{Batch, Feed, FrameSender, QUEUE_BATCHES};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running camera.
pub struct CameraHandle {
    /// Camera id.
    pub id: String,
    /// Live counters.
    pub stats: Arc<CameraStats>,
    /// The live view, fed by the source.
    pub live: Arc<LiveHub>,
    threads: Vec<JoinHandle<()>>,
}

impl CameraHandle {
    /// Waits for the camera's threads to finish (after shutdown fired).
    pub fn join(self) {
        for t in self.threads {
            if t.join().is_err() {
                log::error!("camera {}: a thread panicked", self.id);
            }
        }
    }
}

/// Starts recording `cam`: its writer thread, then its source, whose frames also feed the
/// camera's live view (at most `max_viewers` viewers, `[server] max_viewers`).
pub fn start_camera(
    cam: &CameraConfig,
    ctx: WriterContext,
    runtimes: &Runtimes,
    shutdown: &Shutdown,
    max_viewers: usize,
) -> Result<CameraHandle> {
    let stats = Arc::new(CameraStats::default());
    let (tx, rx) = sync_channel::<Batch>(QUEUE_BATCHES);
    let floor_us = ctx.index.camera_last_end(&cam.id)?;
    let source = source_for(cam, runtimes)?;
    stats.set_encoder(source.encoder());
    let mut threads = vec![spawn_writer(&cam.id, ctx, rx, stats.clone())?];
    let live = LiveHub::new(&cam.id, max_viewers);
    let feed = Feed {
        camera: cam.id.clone(),
        out: FrameSender::new(tx, stats.clone()).with_live(live.clone()),
        floor_us,
        stats: stats.clone(),
        shutdown: shutdown.clone(),
    };
    threads.extend(source.start(feed)?);
    Ok(CameraHandle { id: cam.id.clone(), stats, live, threads })
}

/// The `wr-{camera}` thread: writes the batches `rx` brings until the source drops its
/// sender, then seals the open chunk.
fn spawn_writer(
    camera: &str,
    ctx: WriterContext,
    rx: Receiver<Batch>,
    stats: Arc<CameraStats>,
) -> Result<JoinHandle<()>> {
    // The writer learns the real codec from the first frame (RTSP may deliver H.265).
    let tick = ctx.sync_interval;
    let mut writer = ChunkWriter::new(camera, Codec::H264, ctx, stats.clone());
    std::thread::Builder::new()
        .name(format!("wr-{camera}"))
        .spawn(move || {
            let mut meter = (std::time::Instant::now(), 0u64);
            loop {
                stats.beat_writer();
                match rx.recv_timeout(tick) {
                    Ok(batch) => {
                        batch.video.iter().for_each(|f| writer.write_frame(f));
                        batch.audio.iter().for_each(|a| writer.write_audio(a));
                    }
                    Err(RecvTimeoutError::Timeout) => writer.tick(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                // Bitrate over windows of at least 5 s, for status.
                let elapsed = meter.0.elapsed();
                if elapsed >= Duration::from_secs(5) {
                    let bytes = stats.bytes_written.load(std::sync::atomic::Ordering::Relaxed);
                    let bps = (bytes - meter.1) as f64 * 8.0 / elapsed.as_secs_f64();
                    stats.bitrate_bps.store(bps as u64, std::sync::atomic::Ordering::Relaxed);
                    meter = (std::time::Instant::now(), bytes);
                }
            }
            writer.close();
        })
        .map_err(|e| Error::io("spawning writer thread", e))
}
