//! A session with a V4L2 stateful memory-to-memory encoder: raw pictures go into the OUTPUT
//! queue, coded frames come out of the CAPTURE queue, single- or multi-planar.
//!
//! It is codec-neutral on purpose: the Pi's `bcm2835-codec` makes H.264 through it (the
//! `hardware` encoder is built on this module, which does not know it), and the same code
//! drives vicodec's FWHT encoder in the arm64 VM test, so everything but the codec itself
//! (formats, controls, buffer flow, timestamps, keyframe flags) is proven on a real kernel.
//! Memory is fixed at open: [`INPUT_BUFFERS`] + [`CODED_BUFFERS`].

use crate::encode::raw::RawFrame;
use crate::encode::yuv::I420;
use crate::error::Result;
use crate::kernel::v4l2::device::{buf_type, Layout};
use crate::kernel::v4l2::probe::{m2m_info, M2mInfo};
use crate::kernel::v4l2::queue::{MmapQueue, FLAG_ERROR, FLAG_KEYFRAME};
use crate::kernel::v4l2::{Device, Fourcc};
use crate::{bail, err};
use std::path::Path;
use std::time::{Duration, Instant};
use v4l::v4l_sys as sys;

/// Raw pictures the encoder can hold at once.
pub const INPUT_BUFFERS: u32 = 2;
/// Coded frames the encoder can hold at once.
pub const CODED_BUFFERS: u32 = 4;
/// How long an encoder may keep every input buffer before it counts as stalled.
const STALL: Duration = Duration::from_secs(2);

/// What to open.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct M2mParams {
    /// Raw format fed in (YU12, NV12 or YUYV).
    pub input: Fourcc,
    /// Coded format out (H264; FWHT in tests).
    pub coded: Fourcc,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frame rate (rate control).
    pub fps: u32,
    /// Bits per second.
    pub bitrate: u32,
    /// Frames between keyframes.
    pub keyframe_interval: u32,
}

/// One coded frame out of the encoder.
#[derive(Clone, Debug)]
pub struct CodedBuffer {
    /// The coded bytes (Annex B for H.264).
    pub data: Vec<u8>,
    /// The timestamp given to the picture it encodes.
    pub ts_us: i64,
    /// The driver flagged it as a keyframe.
    pub keyframe: bool,
}

/// An open encoder session.
pub struct M2mEncoder {
    // Field order is drop order: the queues stop and unmap while the descriptor is still
    // open, so their ioctls can never reach another file that reused the number.
    out_q: MmapQueue,
    cap_q: MmapQueue,
    dev: Device,
    input: Layout,
    /// Rows between plane starts in an input buffer (drivers may align the height).
    plane_rows: usize,
    free_inputs: Vec<usize>,
    in_flight: usize,
    force_key: bool,
    /// Coded buffers flagged damaged by the driver (skipped, counted).
    pub errors: u64,
}

/// Codec controls set at open; a driver without one of them keeps its default.
fn controls(p: &M2mParams) -> Vec<(u32, i32, &'static str)> {
    let mut c = vec![
        (sys::V4L2_CID_MPEG_VIDEO_BITRATE, p.bitrate as i32, "bitrate"),
        (sys::V4L2_CID_MPEG_VIDEO_GOP_SIZE, p.keyframe_interval as i32, "GOP size"),
    ];
    if p.coded == Fourcc::H264 {
        c.extend([
            // Variable bitrate (0): a static scene costs little, as an NVR wants.
            (sys::V4L2_CID_MPEG_VIDEO_BITRATE_MODE, 0, "bitrate mode"),
            (sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, p.keyframe_interval as i32, "H.264 I-period"),
            // SPS/PPS before every IDR, so every chunk can start decoding on its own.
            (sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1, "repeat sequence header"),
            // High profile (4); level 3.1 (9) up to 720p30, else 4.0 (11).
            (sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE, 4, "H.264 profile"),
            (
                sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
                if p.width as u64 * p.height as u64 * p.fps as u64 <= 1280 * 720 * 30 { 9 } else { 11 },
                "H.264 level",
            ),
        ]);
    }
    c
}

/// Opens `path` and checks it is a memory-to-memory device; returns it with the formats of
/// its queues, so a caller can choose the input format before starting a session on it.
pub fn open_device(path: &Path) -> Result<(Device, M2mInfo)> {
    let dev = Device::open(path)?;
    let info = m2m_info(&dev)?.ok_or_else(|| err!(Media, "{} is not a memory-to-memory device", path.display()))?;
    Ok((dev, info))
}

impl M2mEncoder {
    /// Opens `path` as an encoder from `p.input` to `p.coded`.
    pub fn open(path: &Path, p: &M2mParams) -> Result<M2mEncoder> {
        let (dev, info) = open_device(path)?;
        M2mEncoder::start(dev, &info, p)
    }

    /// Starts an encoder session on a device from [`open_device`].
    pub fn start(dev: Device, info: &M2mInfo, p: &M2mParams) -> Result<M2mEncoder> {
        if !info.output.contains(&p.coded) || !info.input.contains(&p.input) {
            let list = |v: &[Fourcc]| v.iter().map(Fourcc::to_string).collect::<Vec<_>>().join(", ");
            bail!(
                Media,
                "{} does not encode {} to {} (it takes {}; makes {})",
                dev.path().display(),
                p.input,
                p.coded,
                list(&info.input),
                list(&info.output)
            );
        }
        let (out_t, cap_t) = if info.mplane {
            (buf_type::OUTPUT_MPLANE, buf_type::CAPTURE_MPLANE)
        } else {
            (buf_type::OUTPUT, buf_type::CAPTURE)
        };
        // The stateful encoder interface: coded format first, then the raw one.
        // Half a byte per pixel holds any sane coded frame (a 1080p IDR at 25 Mb/s is well
        // under 1 MB) and bounds the coded queue to 4 MB at 1080p.
        let coded_size = (p.width * p.height / 2).max(256 * 1024);
        dev.set_format(cap_t, p.coded, p.width, p.height, coded_size)?;
        let input = dev.set_format(out_t, p.input, p.width, p.height, 0)?;
        if input.fourcc != p.input || (input.width, input.height) != (p.width, p.height) {
            bail!(
                Media,
                "{} changed the input to {} {}x{} (asked {} {}x{})",
                dev.path().display(),
                input.fourcc,
                input.width,
                input.height,
                p.input,
                p.width,
                p.height
            );
        }
        let plane_rows = input.plane_rows();
        let _ = dev.set_frame_rate(out_t, p.fps as f64);
        for (id, value, name) in controls(p) {
            if let Err(e) = dev.set_control(id, value) {
                log::debug!(
                    "{}: control {name} = {value} not taken ({e}); keeping the driver's default",
                    dev.path().display()
                );
            }
        }
        let mut out_q = MmapQueue::new(&dev, out_t, INPUT_BUFFERS)?;
        let mut cap_q = MmapQueue::new(&dev, cap_t, CODED_BUFFERS)?;
        for i in 0..cap_q.len() {
            cap_q.queue(i, 0, 0).map_err(|e| dev.err("VIDIOC_QBUF (coded)", e))?;
        }
        out_q.stream_on().map_err(|e| dev.err("VIDIOC_STREAMON (raw)", e))?;
        cap_q.stream_on().map_err(|e| dev.err("VIDIOC_STREAMON (coded)", e))?;
        let free_inputs = (0..out_q.len()).rev().collect();
        Ok(M2mEncoder { dev, input, plane_rows, out_q, cap_q, free_inputs, in_flight: 0, force_key: false, errors: 0 })
    }

    /// Asks for a keyframe on the next picture.
    pub fn force_keyframe(&mut self) {
        self.force_key = true;
    }

    /// Takes back finished inputs and collects ready coded frames, without waiting.
    fn reap(&mut self, out: &mut Vec<CodedBuffer>) -> Result<()> {
        while let Some(d) = self.out_q.dequeue().map_err(|e| self.dev.err("VIDIOC_DQBUF (raw)", e))? {
            self.free_inputs.push(d.index);
        }
        while let Some(d) = self.cap_q.dequeue().map_err(|e| self.dev.err("VIDIOC_DQBUF (coded)", e))? {
            self.in_flight = self.in_flight.saturating_sub(1);
            if d.flags & FLAG_ERROR != 0 || d.bytesused == 0 {
                self.errors += 1;
            } else {
                out.push(CodedBuffer {
                    data: self.cap_q.payload(&d).to_vec(),
                    ts_us: d.ts_us,
                    keyframe: d.flags & FLAG_KEYFRAME != 0,
                });
            }
            self.cap_q.queue(d.index, 0, 0).map_err(|e| self.dev.err("VIDIOC_QBUF (coded)", e))?;
        }
        Ok(())
    }

    /// Encodes the picture `fill` writes into an input buffer (given the buffer, its layout
    /// and plane rows, it returns the bytes used), stamped `ts_us`. Ready coded frames are
    /// appended to `out`; a frame may come out on a later call.
    pub fn encode_with(
        &mut self,
        ts_us: i64,
        fill: impl FnOnce(&mut [u8], &Layout, usize) -> Result<usize>,
        out: &mut Vec<CodedBuffer>,
    ) -> Result<()> {
        self.reap(out)?;
        let deadline = Instant::now() + STALL;
        while self.free_inputs.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    Media,
                    "{}: the encoder returned no input buffer for {} s",
                    self.dev.path().display(),
                    STALL.as_secs()
                );
            }
            let ev = self.dev.poll(libc::POLLIN | libc::POLLOUT, left.as_millis() as i32)?;
            if ev & libc::POLLERR != 0 && ev & (libc::POLLIN | libc::POLLOUT) == 0 {
                bail!(Media, "{}: the encoder reported an error", self.dev.path().display());
            }
            self.reap(out)?;
        }
        let idx = self.free_inputs.pop().expect("checked above");
        let (layout, rows) = (self.input, self.plane_rows);
        let used = match fill(self.out_q.data_mut(idx), &layout, rows) {
            Ok(n) => n,
            Err(e) => {
                self.free_inputs.push(idx);
                return Err(e);
            }
        };
        if std::mem::take(&mut self.force_key) {
            if let Err(e) = self.dev.set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1) {
                log::debug!("{}: cannot force a keyframe: {e}", self.dev.path().display());
            }
        }
        if let Err(e) = self.out_q.queue(idx, used, ts_us) {
            self.free_inputs.push(idx);
            return Err(self.dev.err("VIDIOC_QBUF (raw)", e));
        }
        self.in_flight += 1;
        self.reap(out)
    }

    /// Waits up to `timeout` for every picture handed in to come out.
    pub fn drain(&mut self, timeout: Duration, out: &mut Vec<CodedBuffer>) -> Result<()> {
        let deadline = Instant::now() + timeout;
        self.reap(out)?;
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.dev.poll(libc::POLLIN, left.as_millis() as i32)? == 0 {
                break;
            }
            self.reap(out)?;
        }
        Ok(())
    }
}

/// Writes an I420 picture into an input buffer of `layout` (YU12 or NV12); returns the
/// bytes used.
pub fn write_i420(pic: &I420, buf: &mut [u8], layout: &Layout, plane_rows: usize) -> Result<usize> {
    let (w, h) = (pic.width, pic.height);
    let bpl = layout.bytesperline as usize;
    let (y, u, v) = pic.planes();
    let short = || err!(Media, "encoder buffer too small for {w}x{h} {}", layout.fourcc);
    let need = match layout.fourcc {
        Fourcc::YU12 => bpl * plane_rows + bpl / 2 * (plane_rows / 2) * 2,
        Fourcc::NV12 => bpl * plane_rows + bpl * (plane_rows / 2),
        f => bail!(Media, "cannot write I420 into {f}"),
    };
    if bpl < w || buf.len() < need {
        return Err(short());
    }
    for row in 0..h {
        buf[row * bpl..row * bpl + w].copy_from_slice(&y[row * w..(row + 1) * w]);
    }
    let cw = w / 2;
    let c0 = bpl * plane_rows;
    match layout.fourcc {
        Fourcc::YU12 => {
            let cs = bpl / 2;
            let v0 = c0 + cs * (plane_rows / 2);
            for r in 0..h / 2 {
                buf[c0 + r * cs..c0 + r * cs + cw].copy_from_slice(&u[r * cw..(r + 1) * cw]);
                buf[v0 + r * cs..v0 + r * cs + cw].copy_from_slice(&v[r * cw..(r + 1) * cw]);
            }
        }
        _ => {
            for r in 0..h / 2 {
                let line = &mut buf[c0 + r * bpl..c0 + r * bpl + w];
                for x in 0..cw {
                    line[2 * x] = u[r * cw + x];
                    line[2 * x + 1] = v[r * cw + x];
                }
            }
        }
    }
    Ok(need)
}

/// Copies a camera picture that is already in the encoder's input format, re-striding rows;
/// returns the bytes used.
pub fn write_native(raw: &RawFrame<'_>, buf: &mut [u8], layout: &Layout, plane_rows: usize) -> Result<usize> {
    raw.validate()?;
    if raw.fourcc != layout.fourcc {
        bail!(Media, "{} frame for a {} encoder", raw.fourcc, layout.fourcc);
    }
    let bpl = layout.bytesperline as usize;
    let (w, h) = (raw.width, raw.height);
    // (row bytes, rows, source offset, destination offset, source stride, destination stride)
    let planes: Vec<(usize, usize, usize, usize, usize, usize)> = match raw.fourcc {
        Fourcc::YUYV => vec![(w * 2, h, 0, 0, raw.stride, bpl)],
        Fourcc::NV12 => vec![
            (w, h, 0, 0, raw.stride, bpl),
            (w, h / 2, raw.stride * raw.plane_rows, bpl * plane_rows, raw.stride, bpl),
        ],
        Fourcc::YU12 => {
            let (ss, ds) = (raw.stride / 2, bpl / 2);
            let (su, du) = (raw.stride * raw.plane_rows, bpl * plane_rows);
            vec![
                (w, h, 0, 0, raw.stride, bpl),
                (w / 2, h / 2, su, du, ss, ds),
                (w / 2, h / 2, su + ss * (raw.plane_rows / 2), du + ds * (plane_rows / 2), ss, ds),
            ]
        }
        f => bail!(Media, "{f} cannot be fed to an encoder as is"),
    };
    let mut end = 0;
    for (bytes, rows, so, d0, ss, ds) in planes {
        if ds < bytes || d0 + ds * (rows - 1) + bytes > buf.len() {
            bail!(Media, "encoder buffer too small for {w}x{h} {}", raw.fourcc);
        }
        for r in 0..rows {
            buf[d0 + r * ds..d0 + r * ds + bytes].copy_from_slice(&raw.data[so + r * ss..so + r * ss + bytes]);
        }
        end = end.max(d0 + ds * rows);
    }
    Ok((layout.sizeimage as usize).max(end).min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::convert::{i420_to_yuyv, yu12_to_i420, yuyv_to_i420};
    use crate::kernel::v4l2::Device;

    fn picture(w: usize, h: usize) -> I420 {
        let mut pic = I420::new(w, h);
        for (i, p) in pic.data.iter_mut().enumerate() {
            *p = (i * 7 % 253) as u8;
        }
        pic
    }

    /// A driver that pads rows to 32 bytes and aligns plane heights to 16 (bcm2835-codec's
    /// rules): I420 written into its YU12 buffer reads back identical.
    #[test]
    fn i420_into_a_padded_aligned_yu12_buffer_reads_back() {
        let (w, h) = (40, 20);
        let pic = picture(w, h);
        let (bpl, rows) = (64, 32);
        let layout = Layout {
            fourcc: Fourcc::YU12,
            width: w as u32,
            height: h as u32,
            bytesperline: bpl as u32,
            sizeimage: (bpl * rows * 3 / 2) as u32,
        };
        assert_eq!(layout.plane_rows(), rows);
        let mut buf = vec![0u8; layout.sizeimage as usize];
        let used = write_i420(&pic, &mut buf, &layout, rows).unwrap();
        assert_eq!(used, layout.sizeimage as usize);
        let mut back = I420::new(w, h);
        yu12_to_i420(&buf, bpl, rows, &mut back);
        assert_eq!(back.data, pic.data);
        assert!(write_i420(&pic, &mut buf[..100], &layout, rows).is_err());
    }

    /// The memory-to-memory path on a real kernel driver: vicodec's FWHT encoder in the arm64
    /// VM (`tests/v4l2_vm.rs` runs this test binary there, with `EDGENVR_M2M_DEVICE` naming
    /// the node and `EDGENVR_M2M_MPLANE` saying which API the driver was loaded with). Every
    /// picture comes out, in order, with its timestamp, through both input writers; the
    /// I-frames follow the GOP size set through the controls.
    #[test]
    #[ignore = "needs a V4L2 memory-to-memory encoder: tests/v4l2_vm.rs runs it in the arm64 VM"]
    fn vm_m2m_encoder_returns_every_picture_with_its_timestamp() {
        let path = std::env::var("EDGENVR_M2M_DEVICE").expect("EDGENVR_M2M_DEVICE names the encoder node");
        let mplane = std::env::var("EDGENVR_M2M_MPLANE").expect("EDGENVR_M2M_MPLANE is 0 or 1") == "1";
        let path = Path::new(&path);
        let info = m2m_info(&Device::open(path).unwrap()).unwrap().expect("an M2M device");
        assert_eq!(info.mplane, mplane, "the driver was loaded with the other API");
        let (w, h) = (640usize, 480usize);
        for input in [Fourcc::YU12, Fourcc::NV12, Fourcc::YUYV] {
            let p = M2mParams {
                input,
                coded: Fourcc::FWHT,
                width: w as u32,
                height: h as u32,
                fps: 25,
                bitrate: 2_000_000,
                keyframe_interval: 5,
            };
            let mut enc = M2mEncoder::open(path, &p).unwrap();
            let mut out = Vec::new();
            let t0 = 1_790_000_000_000_000i64;
            let mut seed = 7;
            let mut yuyv = Vec::new();
            for i in 0..20u64 {
                let mut pic = I420::new(w, h);
                crate::source::testsrc::draw(&mut pic, i, "2026-11-21T12:00:00Z", &mut seed);
                let ts = t0 + i as i64 * 40_000;
                if input == Fourcc::YUYV {
                    i420_to_yuyv(&pic, &mut yuyv);
                    let raw =
                        RawFrame { fourcc: input, width: w, height: h, stride: w * 2, plane_rows: h, data: &yuyv };
                    enc.encode_with(ts, |b, l, r| write_native(&raw, b, l, r), &mut out).unwrap();
                } else {
                    enc.encode_with(ts, |b, l, r| write_i420(&pic, b, l, r), &mut out).unwrap();
                }
            }
            enc.drain(Duration::from_secs(5), &mut out).unwrap();
            let stamps: Vec<i64> = out.iter().map(|c| c.ts_us).collect();
            let want: Vec<i64> = (0..20).map(|i| t0 + i * 40_000).collect();
            assert_eq!(stamps, want, "{input}: every picture once, in order, with its timestamp");
            for c in &out {
                assert_eq!(
                    &c.data[..8],
                    &[0x4f, 0x4f, 0x4f, 0x4f, 0xff, 0xff, 0xff, 0xff],
                    "{input}: FWHT header magic"
                );
            }
            // vicodec marks I-frames in the FWHT header (flags, bytes 20..24, bit 10), not in
            // the buffer flags. Its default GOP is 10, so I-frames at 5 and 15 prove the GOP
            // control reached the driver (it may add I-frames of its own when P does not pay).
            let iframe = |c: &CodedBuffer| u32::from_be_bytes(c.data[20..24].try_into().unwrap()) & (1 << 10) != 0;
            for k in [0, 5, 10, 15] {
                assert!(iframe(&out[k]), "{input}: picture {k} should be an I-frame");
            }
            assert_eq!(enc.errors, 0);
        }
        // A size the driver must refuse to change, and a coded format it does not make, are
        // errors that name the device.
        let bad = M2mParams {
            input: Fourcc::YU12,
            coded: Fourcc::H264,
            width: 640,
            height: 480,
            fps: 25,
            bitrate: 1,
            keyframe_interval: 1,
        };
        let e = M2mEncoder::open(path, &bad).err().expect("vicodec makes no H.264").to_string();
        assert!(e.contains("does not encode YU12 to H264"), "{e}");
    }

    #[test]
    fn yuyv_is_restrided_as_is() {
        let (w, h) = (16, 4);
        let pic = picture(w, h);
        let mut yuyv = Vec::new();
        i420_to_yuyv(&pic, &mut yuyv);
        let raw = RawFrame { fourcc: Fourcc::YUYV, width: w, height: h, stride: w * 2, plane_rows: h, data: &yuyv };
        let layout = Layout { fourcc: Fourcc::YUYV, width: 16, height: 4, bytesperline: 64, sizeimage: 256 };
        let mut buf = vec![0u8; 256];
        assert_eq!(write_native(&raw, &mut buf, &layout, h).unwrap(), 256);
        let mut back = I420::new(w, h);
        yuyv_to_i420(&buf, 64, &mut back);
        let mut direct = I420::new(w, h);
        yuyv_to_i420(&yuyv, w * 2, &mut direct);
        assert_eq!(back.data, direct.data);
        let wrong = Layout { fourcc: Fourcc::YU12, ..layout };
        assert!(write_native(&raw, &mut buf, &wrong, h).is_err());
    }
}
