//! An open V4L2 device node and the ioctls that describe and configure it.

use crate::bail;
use crate::error::{Error, Result};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use v4l::v4l2::vidioc;
use v4l::v4l_sys::{v4l2_capability, v4l2_control, v4l2_fmtdesc, v4l2_format, v4l2_streamparm};

/// A pixel or coded format's four-character code, as V4L2 spells it (`b"YUYV"`, `b"H264"`).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fourcc(pub [u8; 4]);

impl Fourcc {
    /// H.264 Annex B, from a camera or an encoder.
    pub const H264: Fourcc = Fourcc(*b"H264");
    /// Packed YUV 4:2:2, what most UVC webcams deliver uncompressed.
    pub const YUYV: Fourcc = Fourcc(*b"YUYV");
    /// Semi-planar YUV 4:2:0.
    pub const NV12: Fourcc = Fourcc(*b"NV12");
    /// Planar YUV 4:2:0 (I420), the encoders' native input.
    pub const YU12: Fourcc = Fourcc(*b"YU12");
    /// Motion JPEG, what UVC webcams deliver at high resolutions.
    pub const MJPG: Fourcc = Fourcc(*b"MJPG");
    /// vicodec's FWHT codec (used only to exercise the memory-to-memory path in tests).
    pub const FWHT: Fourcc = Fourcc(*b"FWHT");

    /// From the kernel's little-endian u32.
    pub fn from_u32(v: u32) -> Fourcc {
        Fourcc(v.to_le_bytes())
    }

    /// To the kernel's little-endian u32.
    pub fn to_u32(self) -> u32 {
        u32::from_le_bytes(self.0)
    }

    /// Parses a 4-character string (`"YUYV"`); shorter codes are space-padded as V4L2 does.
    pub fn parse(s: &str) -> Option<Fourcc> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 4 || !s.is_ascii() {
            return None;
        }
        let mut out = [b' '; 4];
        out[..b.len()].copy_from_slice(b);
        Some(Fourcc(out))
    }
}

impl fmt::Display for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(String::from_utf8_lossy(&self.0).trim_end())
    }
}

impl fmt::Debug for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `V4L2_BUF_TYPE_*` values this crate uses.
pub mod buf_type {
    /// Single-planar capture (cameras, the coded side of a single-planar M2M encoder).
    pub const CAPTURE: u32 = 1;
    /// Single-planar output (the raw side of a single-planar M2M encoder).
    pub const OUTPUT: u32 = 2;
    /// Multi-planar capture.
    pub const CAPTURE_MPLANE: u32 = 9;
    /// Multi-planar output.
    pub const OUTPUT_MPLANE: u32 = 10;

    /// Whether `t` is a multi-planar type.
    pub fn is_mplane(t: u32) -> bool {
        t == CAPTURE_MPLANE || t == OUTPUT_MPLANE
    }
}

/// `V4L2_CAP_*` bits this crate reads.
pub mod caps {
    /// Single-planar capture.
    pub const VIDEO_CAPTURE: u32 = 0x1;
    /// Multi-planar capture.
    pub const VIDEO_CAPTURE_MPLANE: u32 = 0x1000;
    /// Single-planar memory-to-memory.
    pub const VIDEO_M2M: u32 = 0x8000;
    /// Multi-planar memory-to-memory.
    pub const VIDEO_M2M_MPLANE: u32 = 0x4000;
    /// Streaming I/O (mmap buffers).
    pub const STREAMING: u32 = 0x0400_0000;
    /// `device_caps` is valid.
    pub const DEVICE_CAPS: u32 = 0x8000_0000;
}

/// What `VIDIOC_QUERYCAP` says about a node.
#[derive(Clone, Debug)]
pub struct Capability {
    /// Kernel driver name (`"uvcvideo"`, `"bcm2835-codec"`, `"vivid"`).
    pub driver: String,
    /// Card name (`"bcm2835-codec-encode"`, the webcam's product name).
    pub card: String,
    /// Bus location (`"usb-0000:01:00.0-1.3"`), stable across re-plugging into the same port.
    pub bus_info: String,
    /// The capabilities of this node (not of the whole physical device).
    pub device_caps: u32,
}

/// An open device node. Closing is dropping. It wraps a `v4l` device, whose enumeration
/// calls (sizes, intervals) and capture-format setters work on the same descriptor.
pub struct Device {
    inner: v4l::Device,
    fd: RawFd,
    path: PathBuf,
}

/// Runs an ioctl, retrying on `EINTR`.
///
/// # Safety
/// `arg` must be the structure `request` is defined with.
pub unsafe fn ioctl<T>(fd: RawFd, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    loop {
        // SAFETY: forwarded to the caller's contract.
        let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, request, arg as *mut T as *mut libc::c_void) };
        if r != -1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Device {
    /// Opens `path` read-write and non-blocking (waits happen in `poll`, with timeouts).
    pub fn open(path: &Path) -> Result<Device> {
        let inner = v4l::Device::with_path(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let fd = inner.handle().fd();
        Ok(Device { inner, fd, path: path.to_owned() })
    }

    /// The `v4l` device, for its enumeration traits.
    pub fn v4l(&self) -> &v4l::Device {
        &self.inner
    }

    /// The node's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wraps an ioctl failure with the node and the request's name.
    pub fn err(&self, what: &str, e: io::Error) -> Error {
        Error::io(format!("{}: {what}", self.path.display()), e)
    }

    /// `VIDIOC_QUERYCAP`.
    pub fn capability(&self) -> Result<Capability> {
        // SAFETY: plain-old-data structure, zero is a valid value.
        let mut cap: v4l2_capability = unsafe { std::mem::zeroed() };
        // SAFETY: QUERYCAP takes a v4l2_capability.
        unsafe { ioctl(self.fd(), vidioc::VIDIOC_QUERYCAP, &mut cap) }.map_err(|e| self.err("VIDIOC_QUERYCAP", e))?;
        let device_caps = if cap.capabilities & caps::DEVICE_CAPS != 0 { cap.device_caps } else { cap.capabilities };
        Ok(Capability {
            driver: c_str(&cap.driver),
            card: c_str(&cap.card),
            bus_info: c_str(&cap.bus_info),
            device_caps,
        })
    }

    /// The formats a queue of type `buf_type` offers (`VIDIOC_ENUM_FMT`).
    pub fn formats(&self, buf_type: u32) -> Result<Vec<(Fourcc, String)>> {
        let mut out = Vec::new();
        for index in 0..256 {
            // SAFETY: plain-old-data structure.
            let mut d: v4l2_fmtdesc = unsafe { std::mem::zeroed() };
            d.index = index;
            d.type_ = buf_type;
            // SAFETY: ENUM_FMT takes a v4l2_fmtdesc.
            match unsafe { ioctl(self.fd(), vidioc::VIDIOC_ENUM_FMT, &mut d) } {
                Ok(()) => out.push((Fourcc::from_u32(d.pixelformat), c_str(&d.description))),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(self.err("VIDIOC_ENUM_FMT", e)),
            }
        }
        Ok(out)
    }

    /// Sets a single-planar or multi-planar format and returns what the driver made of it
    /// (plane 0's layout). Multi-plane layouts (NV12M) are refused: every format used here
    /// keeps a picture in one buffer.
    pub fn set_format(&self, buf_type: u32, fourcc: Fourcc, width: u32, height: u32, sizeimage: u32) -> Result<Layout> {
        // SAFETY: plain-old-data structure.
        let mut f: v4l2_format = unsafe { std::mem::zeroed() };
        f.type_ = buf_type;
        if buf_type::is_mplane(buf_type) {
            // SAFETY: writing the union member that matches `type_`.
            let p = unsafe { &mut f.fmt.pix_mp };
            p.width = width;
            p.height = height;
            p.pixelformat = fourcc.to_u32();
            p.field = 1; // V4L2_FIELD_NONE
            p.num_planes = 1;
            p.plane_fmt[0].sizeimage = sizeimage;
        } else {
            // SAFETY: as above.
            let p = unsafe { &mut f.fmt.pix };
            p.width = width;
            p.height = height;
            p.pixelformat = fourcc.to_u32();
            p.field = 1;
            p.sizeimage = sizeimage;
        }
        // SAFETY: S_FMT takes a v4l2_format.
        unsafe { ioctl(self.fd(), vidioc::VIDIOC_S_FMT, &mut f) }
            .map_err(|e| self.err(&format!("VIDIOC_S_FMT {fourcc} {width}x{height}"), e))?;
        let layout = if buf_type::is_mplane(buf_type) {
            // SAFETY: the driver filled the member matching `type_`.
            let p = unsafe { f.fmt.pix_mp };
            if p.num_planes != 1 {
                bail!(
                    Media,
                    "{}: {fourcc} uses {} planes; only one-buffer layouts are supported",
                    self.path.display(),
                    p.num_planes
                );
            }
            Layout {
                fourcc: Fourcc::from_u32(p.pixelformat),
                width: p.width,
                height: p.height,
                bytesperline: p.plane_fmt[0].bytesperline,
                sizeimage: p.plane_fmt[0].sizeimage,
            }
        } else {
            // SAFETY: as above.
            let p = unsafe { f.fmt.pix };
            Layout {
                fourcc: Fourcc::from_u32(p.pixelformat),
                width: p.width,
                height: p.height,
                bytesperline: p.bytesperline,
                sizeimage: p.sizeimage,
            }
        };
        Ok(layout)
    }

    /// Asks for `fps` frames per second on a queue (`VIDIOC_S_PARM`, as 1000/(fps x 1000)
    /// so rates like 12.5 survive); returns the rate the driver chose, or `None` if the
    /// driver does not take rates on this queue.
    pub fn set_frame_rate(&self, buf_type: u32, fps: f64) -> Option<f64> {
        let den = (fps * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32;
        // SAFETY: plain-old-data structure.
        let mut p: v4l2_streamparm = unsafe { std::mem::zeroed() };
        p.type_ = buf_type;
        let output = matches!(buf_type, buf_type::OUTPUT | buf_type::OUTPUT_MPLANE);
        // The capture and output members share their layout for timeperframe.
        // Writing a Copy union field is safe; which member counts follows `type_`.
        if output {
            p.parm.output.timeperframe.numerator = 1000;
            p.parm.output.timeperframe.denominator = den;
        } else {
            p.parm.capture.timeperframe.numerator = 1000;
            p.parm.capture.timeperframe.denominator = den;
        }
        // SAFETY: S_PARM takes a v4l2_streamparm.
        unsafe { ioctl(self.fd(), vidioc::VIDIOC_S_PARM, &mut p) }.ok()?;
        // SAFETY: the driver filled the member matching `type_`.
        let tpf = unsafe {
            if output {
                p.parm.output.timeperframe
            } else {
                p.parm.capture.timeperframe
            }
        };
        (tpf.numerator > 0).then(|| tpf.denominator as f64 / tpf.numerator as f64)
    }

    /// Sets one control (`VIDIOC_S_CTRL`, which also reaches codec-class controls).
    pub fn set_control(&self, id: u32, value: i32) -> io::Result<()> {
        let mut c = v4l2_control { id, value };
        // SAFETY: S_CTRL takes a v4l2_control.
        unsafe { ioctl(self.fd(), vidioc::VIDIOC_S_CTRL, &mut c) }
    }

    /// The raw descriptor, for `poll` and the buffer queues.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Waits up to `timeout_ms` for `events` (`POLLIN`: a capture buffer is ready; `POLLOUT`:
    /// an output buffer came back). Returns the events seen (0 on timeout). `POLLERR` alone
    /// is returned as is: a disconnected device reports it forever.
    pub fn poll(&self, events: i16, timeout_ms: i32) -> Result<i16> {
        let mut p = libc::pollfd { fd: self.fd(), events, revents: 0 };
        loop {
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
            if r >= 0 {
                return Ok(if r == 0 { 0 } else { p.revents });
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(self.err("poll", e));
            }
        }
    }
}

/// A queue's format as the driver settled it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The format (the driver may substitute another).
    pub fourcc: Fourcc,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row of the first plane (0 for coded formats).
    pub bytesperline: u32,
    /// Bytes a buffer must hold.
    pub sizeimage: u32,
}

impl Layout {
    /// Rows between the starts of the luma and chroma planes: `sizeimage` tells when a
    /// driver aligns the height of planar formats (bcm2835-codec aligns to 16); otherwise
    /// the height.
    pub fn plane_rows(&self) -> usize {
        let (bpl, h) = (self.bytesperline as usize, self.height as usize);
        match self.fourcc {
            Fourcc::YU12 | Fourcc::NV12 if bpl > 0 => (self.sizeimage as usize * 2 / (3 * bpl)).max(h),
            _ => h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_round_trips_and_pads() {
        assert_eq!(Fourcc::from_u32(Fourcc::YUYV.to_u32()), Fourcc::YUYV);
        // V4L2_PIX_FMT_YUYV = v4l2_fourcc('Y','U','Y','V') = 0x56595559.
        assert_eq!(Fourcc::YUYV.to_u32(), 0x5659_5559);
        assert_eq!(Fourcc::parse("Y16").unwrap().0, *b"Y16 ");
        assert_eq!(Fourcc::parse("Y16").unwrap().to_string(), "Y16");
        assert!(Fourcc::parse("TOOLONG").is_none());
    }
}
