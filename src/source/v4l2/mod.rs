//! Local cameras over V4L2: one thread per camera captures and encodes.
//!
//! ```text
//!  open → negotiate (format, size, rate) → mmap 4 buffers → stream ─┐
//!    ▲                                                              │ newest buffer
//!    │ reopen when the node is back (≤ 2 s poll)                    ▼
//!  Retrying ◀── ENODEV / POLLERR / no frame for 5 s ── H.264: stored as is
//!                                                     raw/MJPEG: encoder (hardware | openh264)
//! ```
//!
//! Capture and encoding share the thread on purpose: when encoding falls behind, frames
//! wait in the driver's four buffers and the driver drops the rest; after each encode only
//! the newest waiting frame is encoded and the older ones go straight back. So frames are
//! dropped *before* encoding, counted (`frames_dropped`, from skipped buffers and gaps in the
//! driver's sequence numbers), and memory never grows. The encoder is opened per session,
//! because a camera plugged back in may come back with another size. Sessions are retried by
//! the [`supervisor`](super::supervisor) with this kind's [`RETRY`] policy.

pub mod negotiate;

use super::supervisor::{Policy, Reset, ThreadSource};
use super::{FrameSender, Sent};
use crate::config::V4l2Config;
use crate::encode::hardware::HardwareH264;
use crate::encode::raw::RawFrame;
use crate::encode::select::select;
use crate::encode::software::SoftwareH264;
use crate::encode::{EncoderLabel, EncoderParams, H264Encoder};
use crate::error::{ErrorKind, Result};
use crate::kernel::v4l2::device::{buf_type, caps, Layout};
use crate::kernel::v4l2::probe::{camera_offers, find_h264_encoder};
use crate::kernel::v4l2::queue::{Dequeued, MmapQueue, FLAG_ERROR};
use crate::kernel::v4l2::{Device, Fourcc};
use crate::media::frame::EncodedFrame;
use crate::media::h26x::Codec;
use crate::service::status::{CameraState, CameraStats};
use crate::shutdown::Shutdown;
use crate::source::clock::StreamClock;
use crate::{bail, err};
use negotiate::{choose, Wanted};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Capture buffers per camera (the driver holds frames here while the encoder is busy).
pub const CAPTURE_BUFFERS: u32 = 4;
/// A camera that delivers nothing for this long is reopened.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// How a V4L2 camera is retried: a retry is one failed `open`, cheap enough to repeat every
/// 2 s, so a camera plugged back in records again within that; a session that streamed
/// starts the wait over.
pub const RETRY: Policy = Policy {
    min: Duration::from_secs(1),
    max: Duration::from_secs(2),
    reset: Reset::WhenStreamed,
    attempt_state: CameraState::Recording,
};

/// A V4L2 camera as a [`Source`](super::Source): one thread, `v4l-{camera}`, that captures
/// and encodes. Its encoder is known once a session has negotiated the format.
pub fn source(config: V4l2Config) -> ThreadSource<V4l2Config> {
    ThreadSource { prefix: "v4l", policy: RETRY, encoder: EncoderLabel::None, config, attempt: run }
}

/// Opens the camera and records until shutdown, an error, or the writer going away. Returns
/// `Ok` only for shutdown or a closed writer.
pub fn run(
    cfg: &V4l2Config,
    floor_us: Option<i64>,
    out: &mut FrameSender,
    stats: &Arc<CameraStats>,
    shutdown: &Shutdown,
) -> Result<()> {
    let (dev, card, layout, fps) = open(cfg)?;
    let encoder = open_encoder(cfg, &layout, fps, stats)?;
    log::info!(
        "{} ({card}): {} {}x{} at {fps} fps, {}",
        cfg.device.display(),
        layout.fourcc,
        layout.width,
        layout.height,
        encoder.as_ref().map_or("stored as delivered", |e| e.label().as_str())
    );
    let mut stream = Stream::start(dev, layout)?;
    stats.connects.fetch_add(1, Relaxed);
    let mut session = Session {
        clock: StreamClock::new(floor_us, true),
        last_seq: None,
        first: true,
        frames: Vec::new(),
        stats: stats.clone(),
        bad_frames: 0,
        encoder,
    };
    // Every exit of the loop, error or not, goes through the flush below, so frames already
    // batched reach the disk now rather than when the camera comes back.
    let result = record(cfg, &mut stream, &mut session, out, shutdown);
    session.finish(out);
    out.flush();
    result
}

/// Opens the device and sets the negotiated format and rate: the device, its card name, the
/// format the driver set and the frame rate.
fn open(cfg: &V4l2Config) -> Result<(Device, String, Layout, f64)> {
    let dev = Device::open(&cfg.device)?;
    let cap = dev.capability()?;
    if cap.device_caps & caps::VIDEO_CAPTURE == 0 || cap.device_caps & caps::STREAMING == 0 {
        bail!(
            InvalidArgument,
            "{} ({}) is not a streaming single-planar capture device",
            cfg.device.display(),
            cap.card
        );
    }
    let offers = camera_offers(&dev)?;
    let want = Wanted { format: cfg.format, size: cfg.width.zip(cfg.height), fps: cfg.fps };
    let choice = choose(&offers, &want)
        .map_err(|why| err!(InvalidArgument, "{} ({}): {why}", cfg.device.display(), cap.card))?;
    let layout = dev.set_format(buf_type::CAPTURE, choice.fourcc, choice.width, choice.height, 0)?;
    if layout.fourcc != choice.fourcc || (layout.width, layout.height) != (choice.width, choice.height) {
        bail!(
            Media,
            "{}: asked for {} {}x{}, the driver set {} {}x{}",
            cfg.device.display(),
            choice.fourcc,
            choice.width,
            choice.height,
            layout.fourcc,
            layout.width,
            layout.height
        );
    }
    let fps = choice.fps.and_then(|f| dev.set_frame_rate(buf_type::CAPTURE, f)).or(choice.fps).unwrap_or(30.0);
    if let Some(w) = cfg.fps.filter(|&w| (w as f64 - fps).abs() > 0.01) {
        log::warn!("{}: fps = {w} is not offered at this size; recording at {fps}", cfg.device.display());
    }
    Ok((dev, cap.card, layout, fps))
}

/// The encoder for a camera delivering `layout` (none for H.264, stored as delivered), with
/// its label in status.
fn open_encoder(
    cfg: &V4l2Config,
    layout: &Layout,
    fps: f64,
    stats: &CameraStats,
) -> Result<Option<Box<dyn H264Encoder>>> {
    if layout.fourcc == Fourcc::H264 {
        stats.set_encoder(EncoderLabel::CameraH264);
        return Ok(None);
    }
    let fps = (fps.round() as u32).max(1);
    let params = EncoderParams {
        width: layout.width,
        height: layout.height,
        fps,
        bitrate: cfg.bitrate.unwrap_or_else(|| EncoderParams::default_bitrate(layout.width, layout.height, fps)),
        keyframe_interval: cfg.keyframe_interval.unwrap_or(2 * fps),
    };
    let found = if cfg.encoder == crate::config::EncoderChoice::Software { None } else { find_h264_encoder() };
    let fourcc = layout.fourcc;
    let sel = select(
        cfg.encoder,
        found,
        |p| Ok(Box::new(HardwareH264::open(p, fourcc, &params)?) as Box<dyn H264Encoder>),
        || Ok(Box::new(SoftwareH264::new(&params)?) as Box<dyn H264Encoder>),
    )?;
    if let Some(why) = &sel.fallback {
        log::warn!("{}: {why}", cfg.device.display());
        stats.set_error(why);
        stats.set_encoder(EncoderLabel::Openh264Fallback);
    } else {
        stats.set_encoder(sel.encoder.label());
    }
    Ok(Some(sel.encoder))
}

/// A streaming capture queue. Field order is drop order: the queue stops and unmaps while
/// the device is still open.
struct Stream {
    queue: MmapQueue,
    dev: Device,
    layout: Layout,
    /// When the last frame arrived ([`FRAME_TIMEOUT`]).
    last_frame: Instant,
}

impl Stream {
    /// Maps [`CAPTURE_BUFFERS`] buffers, hands them all to the driver and starts streaming.
    fn start(dev: Device, layout: Layout) -> Result<Stream> {
        let mut queue = MmapQueue::new(&dev, buf_type::CAPTURE, CAPTURE_BUFFERS)?;
        for i in 0..queue.len() {
            queue.queue(i, 0, 0).map_err(|e| dev.err("VIDIOC_QBUF", e))?;
        }
        queue.stream_on().map_err(|e| dev.err("VIDIOC_STREAMON", e))?;
        Ok(Stream { queue, dev, layout, last_frame: Instant::now() })
    }

    /// Waits up to a second for the driver; `false` when no frame came in that time.
    fn wait(&self) -> Result<bool> {
        let ev = self.dev.poll(libc::POLLIN, 1000)?;
        if ev & libc::POLLIN != 0 {
            return Ok(true);
        }
        let device = self.dev.path().display();
        if ev & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            bail!(Io, "{device}: device error (unplugged?)");
        }
        if self.last_frame.elapsed() >= FRAME_TIMEOUT {
            bail!(Media, "{device}: no frame for {} s", FRAME_TIMEOUT.as_secs());
        }
        Ok(false)
    }

    /// Takes every waiting buffer and returns the newest; the others go straight back to the
    /// driver, counted as dropped.
    fn newest(&mut self, session: &mut Session) -> Result<Option<Dequeued>> {
        let mut newest = None;
        while let Some(d) = self.queue.dequeue().map_err(|e| self.dev.err("VIDIOC_DQBUF", e))? {
            session.count_sequence(d.sequence);
            if let Some(old) = newest.replace(d) {
                session.stats.add_dropped(1, false);
                self.give_back(old)?;
            }
        }
        if newest.is_some() {
            self.last_frame = Instant::now();
        }
        Ok(newest)
    }

    /// Hands a buffer back to the driver to fill again.
    fn give_back(&mut self, d: Dequeued) -> Result<()> {
        self.queue.queue(d.index, 0, 0).map_err(|e| self.dev.err("VIDIOC_QBUF", e))
    }

    /// The picture in a dequeued buffer.
    fn picture<'a>(&'a self, d: &Dequeued) -> RawFrame<'a> {
        RawFrame {
            fourcc: self.layout.fourcc,
            width: self.layout.width as usize,
            height: self.layout.height as usize,
            stride: self.layout.bytesperline as usize,
            plane_rows: self.layout.plane_rows(),
            data: self.queue.payload(d),
        }
    }
}

/// The capture loop: encodes only the newest waiting picture, until shutdown, an error, or
/// the writer going away.
fn record(
    cfg: &V4l2Config,
    stream: &mut Stream,
    session: &mut Session,
    out: &mut FrameSender,
    shutdown: &Shutdown,
) -> Result<()> {
    loop {
        session.stats.beat_source();
        if shutdown.is_triggered() {
            return Ok(());
        }
        if !stream.wait()? {
            continue;
        }
        let Some(d) = stream.newest(session)? else { continue };
        let sent = if d.flags & FLAG_ERROR != 0 {
            session.stats.add_dropped(1, false);
            Ok(Sent::Queued)
        } else {
            session.deliver(&stream.picture(&d), d.ts_us, out)
        };
        stream.give_back(d)?;
        match sent {
            Ok(Sent::Closed) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Media && session.bad_frames < 10 => {
                // One damaged picture (a torn MJPEG) is skipped; a run of them restarts.
                session.bad_frames += 1;
                session.stats.add_dropped(1, false);
                log::warn!("{}: {e}; frame skipped", cfg.device.display());
            }
            Err(e) => return Err(e),
        }
    }
}

/// One streaming session's state: timestamps, the driver's sequence, the encoder.
struct Session {
    clock: StreamClock,
    last_seq: Option<u32>,
    first: bool,
    frames: Vec<EncodedFrame>,
    stats: Arc<CameraStats>,
    bad_frames: u32,
    /// `None` for a camera's own H.264, stored as delivered.
    encoder: Option<Box<dyn H264Encoder>>,
}

impl Session {
    /// Counts frames the driver dropped (gaps in its sequence numbers).
    fn count_sequence(&mut self, seq: u32) {
        if let Some(last) = self.last_seq {
            let gap = seq.wrapping_sub(last).wrapping_sub(1);
            if gap > 0 && gap < 1_000_000 {
                self.stats.add_dropped(gap as u64, false);
            }
        }
        self.last_seq = Some(seq);
    }

    /// Encodes (or wraps, for H.264) one picture the driver stamped `driver_us` and offers
    /// the frames to the writer.
    fn deliver(&mut self, raw: &RawFrame<'_>, driver_us: i64, out: &mut FrameSender) -> Result<Sent> {
        self.stats.bytes_received.fetch_add(raw.data.len() as u64, Relaxed);
        self.stats.frames_received.fetch_add(1, Relaxed);
        let ts = self.clock.ts(driver_us);
        self.frames.clear();
        match self.encoder.as_mut() {
            Some(enc) => enc.encode(raw, ts, &mut self.frames)?,
            None => {
                let f = EncodedFrame::from_annex_b(ts, Codec::H264, raw.data);
                if !f.has_slice() {
                    bail!(Media, "H.264 buffer without a picture");
                }
                self.frames.push(f);
            }
        }
        let mut result = Sent::Queued;
        for mut f in self.frames.drain(..) {
            if std::mem::take(&mut self.first) {
                f.discontinuity = true;
            }
            match out.send(f) {
                Sent::Queued => {}
                Sent::Dropped => result = Sent::Dropped,
                Sent::Closed => return Ok(Sent::Closed),
            }
        }
        if result == Sent::Dropped {
            if let Some(enc) = self.encoder.as_mut() {
                enc.force_keyframe();
            }
        }
        self.bad_frames = 0;
        Ok(result)
    }

    /// Hands the frames still inside the encoder to the writer at the end of the session.
    fn finish(&mut self, out: &mut FrameSender) {
        let Some(enc) = self.encoder.as_mut() else { return };
        let mut tail = Vec::new();
        enc.finish(&mut tail);
        for f in tail {
            if out.send(f) == Sent::Closed {
                break;
            }
        }
    }
}
