//! A queue of memory-mapped V4L2 buffers (`V4L2_MEMORY_MMAP`), single- or multi-planar.
//!
//! One type serves a camera's capture queue and both queues of a memory-to-memory encoder.
//! The buffer count is fixed when the queue is made, so a queue's memory is bounded by
//! `count x sizeimage` and never grows. Dropping a queue stops streaming, unmaps and frees
//! its buffers, ignoring errors (a yanked device fails all three, and must not panic).

use super::device::{buf_type, ioctl, Device};
use crate::bail;
use crate::error::Result;
use std::io;
use std::os::fd::RawFd;
use v4l::v4l2::vidioc;
use v4l::v4l_sys::{v4l2_buffer, v4l2_plane, v4l2_requestbuffers};

const MEMORY_MMAP: u32 = 1;
/// `V4L2_BUF_FLAG_KEYFRAME`.
pub const FLAG_KEYFRAME: u32 = 0x8;
/// `V4L2_BUF_FLAG_ERROR`: the buffer's data is damaged.
pub const FLAG_ERROR: u32 = 0x40;
/// `V4L2_BUF_FLAG_LAST`: the last buffer of a drained encoder.
pub const FLAG_LAST: u32 = 0x0010_0000;

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

/// A buffer handed back by the driver.
#[derive(Copy, Clone, Debug)]
pub struct Dequeued {
    /// Buffer index (hand it back with [`MmapQueue::queue`]).
    pub index: usize,
    /// Bytes of data in it.
    pub bytesused: usize,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// The buffer's timestamp in µs: monotonic capture time for cameras, the timestamp
    /// given to the matching input for memory-to-memory devices.
    pub ts_us: i64,
    /// The driver's frame counter; gaps are frames the driver dropped.
    pub sequence: u32,
}

/// A streaming queue of memory-mapped buffers.
pub struct MmapQueue {
    fd: RawFd,
    buf_type: u32,
    maps: Vec<Mapping>,
    streaming: bool,
}

// SAFETY: the mappings are owned by the queue and only touched through `&self`/`&mut self`.
unsafe impl Send for MmapQueue {}

impl MmapQueue {
    /// Allocates and maps `count` buffers on `dev`'s queue `buf_type` (the driver may give
    /// more or fewer; at least one is required).
    pub fn new(dev: &Device, buf_type: u32, count: u32) -> Result<MmapQueue> {
        // SAFETY: plain-old-data structure.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.count = count;
        req.type_ = buf_type;
        req.memory = MEMORY_MMAP;
        // SAFETY: REQBUFS takes a v4l2_requestbuffers.
        unsafe { ioctl(dev.fd(), vidioc::VIDIOC_REQBUFS, &mut req) }.map_err(|e| dev.err("VIDIOC_REQBUFS", e))?;
        if req.count == 0 {
            bail!(Media, "{}: the driver gave no buffers", dev.path().display());
        }
        let mut q = MmapQueue { fd: dev.fd(), buf_type, maps: Vec::new(), streaming: false };
        for index in 0..req.count {
            let mut plane: v4l2_plane = unsafe { std::mem::zeroed() };
            let mut b = q.desc(index, &mut plane);
            // SAFETY: QUERYBUF takes a v4l2_buffer; `plane` outlives the call.
            unsafe { ioctl(q.fd, vidioc::VIDIOC_QUERYBUF, &mut b) }.map_err(|e| dev.err("VIDIOC_QUERYBUF", e))?;
            let (len, offset) = if buf_type::is_mplane(buf_type) {
                // SAFETY: the union member the driver fills for MMAP planes.
                (plane.length as usize, unsafe { plane.m.mem_offset })
            } else {
                // SAFETY: as above, single-planar.
                (b.length as usize, unsafe { b.m.offset })
            };
            // SAFETY: mapping a driver buffer at the offset it gave; unmapped in Drop.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    q.fd,
                    offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(dev.err("mmap of a buffer", io::Error::last_os_error()));
            }
            q.maps.push(Mapping { ptr: ptr as *mut u8, len });
        }
        Ok(q)
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether the queue has no buffers (never true for a queue that was made).
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// A buffer's memory. Only meaningful for a buffer the caller owns (dequeued, or not yet
    /// queued).
    pub fn data(&self, index: usize) -> &[u8] {
        let m = &self.maps[index];
        // SAFETY: a live mapping of `len` bytes.
        unsafe { std::slice::from_raw_parts(m.ptr, m.len) }
    }

    /// A buffer's memory, to fill an output buffer.
    pub fn data_mut(&mut self, index: usize) -> &mut [u8] {
        let m = &self.maps[index];
        // SAFETY: a live mapping of `len` bytes, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(m.ptr, m.len) }
    }

    fn desc(&self, index: u32, plane: &mut v4l2_plane) -> v4l2_buffer {
        // SAFETY: plain-old-data structure.
        let mut b: v4l2_buffer = unsafe { std::mem::zeroed() };
        b.index = index;
        b.type_ = self.buf_type;
        b.memory = MEMORY_MMAP;
        if buf_type::is_mplane(self.buf_type) {
            b.m.planes = plane;
            b.length = 1;
        }
        b
    }

    /// Hands buffer `index` to the driver: `bytesused` bytes of data (0 for a capture
    /// buffer) stamped with `ts_us` (an output buffer's timestamp reappears on its encoded
    /// capture buffer).
    pub fn queue(&mut self, index: usize, bytesused: usize, ts_us: i64) -> io::Result<()> {
        // SAFETY: plain-old-data structure.
        let mut plane: v4l2_plane = unsafe { std::mem::zeroed() };
        // Filled before `desc` takes its address, so the pointer sees these values.
        plane.bytesused = bytesused as u32;
        plane.length = self.maps[index].len as u32;
        let mut b = self.desc(index as u32, &mut plane);
        b.timestamp.tv_sec = ts_us.div_euclid(1_000_000) as _;
        b.timestamp.tv_usec = ts_us.rem_euclid(1_000_000) as _;
        if !buf_type::is_mplane(self.buf_type) {
            b.bytesused = bytesused as u32;
        }
        // SAFETY: QBUF takes a v4l2_buffer; `plane` outlives the call.
        unsafe { ioctl(self.fd, vidioc::VIDIOC_QBUF, &mut b) }
    }

    /// Takes a finished buffer back without waiting: `Ok(None)` when none is ready.
    pub fn dequeue(&mut self) -> io::Result<Option<Dequeued>> {
        // SAFETY: plain-old-data structure.
        let mut plane: v4l2_plane = unsafe { std::mem::zeroed() };
        let mut b = self.desc(0, &mut plane);
        // SAFETY: DQBUF takes a v4l2_buffer; `plane` outlives the call.
        match unsafe { ioctl(self.fd, vidioc::VIDIOC_DQBUF, &mut b) } {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
            Err(e) => return Err(e),
        }
        let index = b.index as usize;
        if index >= self.maps.len() {
            return Err(io::Error::other(format!("driver returned buffer {index} of {}", self.maps.len())));
        }
        let bytesused = if buf_type::is_mplane(self.buf_type) {
            // Data may start at an offset within the plane; it is counted in bytesused.
            plane.bytesused.saturating_sub(plane.data_offset) as usize
        } else {
            b.bytesused as usize
        };
        Ok(Some(Dequeued {
            index,
            bytesused: bytesused.min(self.maps[index].len),
            flags: b.flags,
            ts_us: b.timestamp.tv_sec as i64 * 1_000_000 + b.timestamp.tv_usec as i64,
            sequence: b.sequence,
        }))
    }

    /// Where a dequeued multi-planar buffer's data starts (drivers may leave a header gap).
    pub fn payload<'a>(&'a self, d: &Dequeued) -> &'a [u8] {
        &self.data(d.index)[..d.bytesused]
    }

    /// `VIDIOC_STREAMON`.
    pub fn stream_on(&mut self) -> io::Result<()> {
        let mut t = self.buf_type;
        // SAFETY: STREAMON takes the buffer type as an int.
        unsafe { ioctl(self.fd, vidioc::VIDIOC_STREAMON, &mut t) }?;
        self.streaming = true;
        Ok(())
    }
}

impl Drop for MmapQueue {
    fn drop(&mut self) {
        if self.streaming {
            let mut t = self.buf_type;
            // SAFETY: STREAMOFF takes the buffer type as an int. Errors are ignored: the
            // device may be gone, and the buffers are released below either way.
            let _ = unsafe { ioctl(self.fd, vidioc::VIDIOC_STREAMOFF, &mut t) };
        }
        for m in self.maps.drain(..) {
            // SAFETY: a mapping made in `new` and not used after this.
            unsafe { libc::munmap(m.ptr as *mut libc::c_void, m.len) };
        }
        // SAFETY: plain-old-data structure; count 0 frees the driver's buffers.
        let mut req: v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        req.type_ = self.buf_type;
        req.memory = MEMORY_MMAP;
        // SAFETY: REQBUFS takes a v4l2_requestbuffers.
        let _ = unsafe { ioctl(self.fd, vidioc::VIDIOC_REQBUFS, &mut req) };
    }
}
