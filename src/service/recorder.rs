//! One camera's pipeline: a source thread feeding a writer thread through a bounded queue.
//!
//! ```text
//!   source thread / RTSP task       queue of GOP batches            wr-{id} thread
//!   source → encode → FrameSender ───────────────────────▶ ChunkWriter → files + index
//! ```
//!
//! The source thread owns its retries: an error is logged once, recorded for status, and the
//! source restarts after a capped exponential back-off. The writer thread ends when the
//! source thread drops its sender, sealing the open chunk, so shutdown order falls out of
//! ownership: stop sources → writers drain and seal → index commits.

use crate::chunk::writer::{ChunkWriter, WriterContext};
use crate::config::{CameraConfig, SourceConfig};
use crate::encode::EncoderLabel;
use crate::error::{Error, Result};
use crate::media::h26x::Codec;
use crate::service::status::{CameraState, CameraStats};
use crate::shutdown::Shutdown;
use crate::source::rtsp::RtspRuntime;
use crate::source::{testsrc, FrameSender, QUEUE_BATCHES};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// First retry delay after a source error; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A running camera.
pub struct CameraHandle {
    /// Camera id.
    pub id: String,
    /// Live counters.
    pub stats: Arc<CameraStats>,
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

/// What sources need from the service: the shutdown signal and shared runtimes.
pub struct Sources {
    /// Stops thread-based sources.
    pub shutdown: Shutdown,
    /// The runtime RTSP cameras run on (present when any RTSP camera is enabled).
    pub rtsp: Option<RtspRuntime>,
}

/// Starts recording `cam`.
pub fn start_camera(cam: &CameraConfig, ctx: WriterContext, sources: &Sources) -> Result<CameraHandle> {
    let stats = Arc::new(CameraStats::default());
    // The writer learns the real codec from the first frame (RTSP may deliver H.265).
    let codec = Codec::H264;
    let (tx, rx) = sync_channel::<crate::source::Batch>(QUEUE_BATCHES);
    let floor_us = ctx.index.camera_last_end(&cam.id)?;
    let mut writer = ChunkWriter::new(&cam.id, codec, ctx.clone(), stats.clone());
    let wr_stats = stats.clone();
    stats.set_encoder(if matches!(cam.source, SourceConfig::Testsrc(_)) {
        EncoderLabel::Openh264
    } else {
        EncoderLabel::None
    });
    let tick = ctx.sync_interval;
    let wr = std::thread::Builder::new()
        .name(format!("wr-{}", cam.id))
        .spawn(move || {
            let mut meter = (std::time::Instant::now(), 0u64);
            loop {
                wr_stats.beat_writer();
                match rx.recv_timeout(tick) {
                    Ok(batch) => batch.iter().for_each(|f| writer.write_frame(f)),
                    Err(RecvTimeoutError::Timeout) => writer.tick(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                // Bitrate over windows of at least 5 s, for status.
                let elapsed = meter.0.elapsed();
                if elapsed >= Duration::from_secs(5) {
                    let bytes = wr_stats.bytes_written.load(std::sync::atomic::Ordering::Relaxed);
                    let bps = (bytes - meter.1) as f64 * 8.0 / elapsed.as_secs_f64();
                    wr_stats.bitrate_bps.store(bps as u64, std::sync::atomic::Ordering::Relaxed);
                    meter = (std::time::Instant::now(), bytes);
                }
            }
            writer.close();
        })
        .map_err(|e| Error::io("spawning writer thread", e))?;

    let sender = FrameSender::new(tx, stats.clone());
    let mut threads = vec![wr];
    match &cam.source {
        SourceConfig::Rtsp(r) => {
            let rt = sources.rtsp.as_ref().expect("the service starts the RTSP runtime when an RTSP camera is enabled");
            rt.spawn_camera(cam.id.clone(), r.clone(), sender, floor_us, stats.clone());
        }
        SourceConfig::Testsrc(_) | SourceConfig::V4l2(_) => {
            // Thread-based sources: each runs its own retry loop on its own thread.
            let (prefix, run): (&str, SourceLoop) = match cam.source {
                SourceConfig::Testsrc(_) => ("src", run_testsrc),
                _ => ("v4l", run_v4l2),
            };
            let src_stats = stats.clone();
            let cam2 = cam.clone();
            let shutdown = sources.shutdown.clone();
            let src = std::thread::Builder::new()
                .name(format!("{prefix}-{}", cam.id))
                .spawn(move || run(&cam2, sender, floor_us, src_stats, shutdown))
                .map_err(|e| Error::io("spawning source thread", e))?;
            threads.push(src);
        }
    }
    Ok(CameraHandle { id: cam.id.clone(), stats, threads })
}

/// A thread-based source's retry loop (runs until shutdown or the writer goes away).
type SourceLoop = fn(&CameraConfig, FrameSender, Option<i64>, Arc<CameraStats>, Shutdown);

/// Where a restarted source's timestamps must start: after its newest written frame, or the
/// floor it started with if it wrote none.
fn resume_floor(stats: &CameraStats, floor_us: Option<i64>) -> Option<i64> {
    Some(stats.last_frame_us.load(std::sync::atomic::Ordering::Relaxed)).filter(|&t| t > 0).or(floor_us)
}

/// Longest retry delay of a V4L2 camera: a camera plugged back in is recording again within
/// this long (a retry is one failed `open`, cheap enough to repeat).
const V4L2_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A V4L2 camera's retry loop: reopens after errors and unplugging, logging each new error
/// once (a camera left unplugged for a week does not fill the journal).
fn run_v4l2(
    cam: &CameraConfig,
    mut sender: FrameSender,
    mut floor_us: Option<i64>,
    stats: Arc<CameraStats>,
    shutdown: Shutdown,
) {
    let SourceConfig::V4l2(v) = &cam.source else { unreachable!("called for V4L2 cameras only") };
    let mut backoff = MIN_BACKOFF;
    let mut last_error = String::new();
    loop {
        stats.set_state(CameraState::Recording);
        stats.beat_source();
        let connects = stats.connects.load(std::sync::atomic::Ordering::Relaxed);
        let r = crate::source::v4l2::run(v, floor_us, &mut sender, &stats, &shutdown);
        if shutdown.is_triggered() {
            return;
        }
        match r {
            Ok(()) => return,
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    log::error!("camera {}: {msg}; retrying", cam.id);
                    last_error = msg;
                } else {
                    log::debug!("camera {}: {msg}; retrying", cam.id);
                }
                stats.set_error(&e);
                stats.set_state(CameraState::Retrying);
            }
        }
        // A session that streamed starts the back-off over.
        if stats.connects.load(std::sync::atomic::Ordering::Relaxed) != connects {
            backoff = MIN_BACKOFF;
        }
        if shutdown.wait_timeout(backoff) {
            return;
        }
        backoff = (backoff * 2).min(V4L2_MAX_BACKOFF);
        floor_us = resume_floor(&stats, floor_us);
    }
}

/// The synthetic camera's retry loop (it fails only if the encoder cannot start).
fn run_testsrc(
    cam: &CameraConfig,
    mut sender: FrameSender,
    mut floor_us: Option<i64>,
    stats: Arc<CameraStats>,
    shutdown: Shutdown,
) {
    let SourceConfig::Testsrc(t) = &cam.source else { unreachable!("called for testsrc cameras only") };
    let mut backoff = MIN_BACKOFF;
    loop {
        stats.set_state(CameraState::Recording);
        stats.beat_source();
        let r = testsrc::run(t, floor_us, &mut sender, stats.clone(), &shutdown);
        if shutdown.is_triggered() {
            return;
        }
        match r {
            Ok(()) => return,
            Err(e) => {
                log::error!("camera {}: {e}; retrying in {} s", cam.id, backoff.as_secs());
                stats.set_error(&e);
                stats.set_state(CameraState::Retrying);
            }
        }
        if shutdown.wait_timeout(backoff) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        floor_us = resume_floor(&stats, floor_us);
    }
}
