//! The one tuning of the C allocator (glibc's malloc, under Rust's `System` allocator) that a
//! service running for years on a small board needs, made once when `edgenvr run` starts.
//!
//! glibc serves a block of [`MMAP_THRESHOLD`] or more with a mapping of its own, given back
//! to the kernel when the block is freed. By default it then raises that threshold to the
//! size of the block just freed (up to 32 MiB), on the theory that a program freeing such a
//! block will soon want another. For a recorder that is the wrong theory: the first time a
//! camera's session ends (a yanked webcam, an RTSP reconnect), its encoder's pools and
//! frame buffers are freed, the threshold jumps, and from then on blocks of the same sizes
//! come from the heap, which keeps them after they are freed. Measured in the arm64 VM
//! (`tests/v4l2_vm.rs`, one 640x480 openh264 camera, anonymous memory while unplugged):
//! 1.8 MiB after the first session, 11.7 to 13.7 MiB after each later one with the default;
//! 1.8, 2.0, 2.0 MiB with the threshold fixed, and 2 MiB less while recording.
//!
//! Cost: every block of 128 KiB or more is mapped and unmapped by the kernel, with its page
//! faults. On the recording path that is a keyframe's data (about one a second per camera;
//! P-frames and audio are far smaller) and a session's buffers (once per session).
//! BENCHMARKS.md ("Side by side") has the figures with the threshold fixed.

/// Blocks this large or larger are mapped on their own and unmapped when freed: glibc's
/// default starting value, kept fixed.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (which also turns off its dynamic
/// adjustment). Without glibc there is nothing to tune; a refusal is logged and ignored,
/// since recording works either way.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's parameters; called before the threads that
        // record start, with a value glibc documents as valid (at most 32 MiB on 64 bits).
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
        if ok != 1 {
            log::warn!("could not fix the allocator's mmap threshold; memory freed by a camera session may stay with the process");
        }
    }
}
