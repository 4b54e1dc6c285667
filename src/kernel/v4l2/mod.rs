//! The V4L2 kernel interface, as little of it as the recorder needs: device nodes, their
//! capabilities and formats ([`device`]), memory-mapped buffer queues for capture and
//! memory-to-memory devices ([`queue`]), and the inventory `edgenvr probe` prints ([`probe`]).
//!
//! Format enumeration and negotiation on capture devices go through the `v4l` crate. Buffer
//! streaming is done here with plain ioctls instead of `v4l`'s `MmapStream`, for two reasons:
//! `v4l` 0.14 cannot drive multi-planar queues (the Pi's hardware encoder is one), and its
//! stream panics in `Drop` when `STREAMOFF` fails with anything but `ENODEV`; the service is
//! built with `panic = "abort"`, so one misbehaving USB camera would stop every recording.
//! See `docs/design/v4l2.md`.

pub mod device;
pub mod probe;
pub mod queue;

pub use device::{Device, Fourcc};
