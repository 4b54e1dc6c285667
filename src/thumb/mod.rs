//! Thumbnails: the keyframe at or before a time, decoded and encoded as a JPEG of the
//! requested width, without the service ever holding a decoder.
//!
//! ```text
//! request → locate (index keyframe table, or a scan of the chunk being written)
//!         → cache? ──────────────────────────────────────────────────────▶ JPEG
//!         → child: `edgenvr thumbnail-decode --width W` (keyframe on stdin) ┘
//! ```
//!
//! - [`locate`]: finds the keyframe and reads it back as one Annex B access unit.
//! - [`decode`]: the child's side: openh264 → area scaling → `jpeg-encoder`.
//!
//! Rules:
//! 1. Decoding runs in a short-lived child process that re-executes the service's own binary
//!    (`/proc/self/exe`, which works even after the binary was replaced by an upgrade): a
//!    1080p decode peaks around 46 MB, which ends with the child instead of staying in the
//!    service's heap. The child kills itself (`alarm`) after [`CHILD_TIMEOUT_S`] seconds.
//! 2. One decode at a time; at most [`MAX_WAITING`] requests wait for it, more are refused
//!    (`Busy`, 503), so a burst of hover requests cannot pile up threads.
//! 3. A small cache ([`CACHE_ENTRIES`] JPEGs, at most [`CACHE_BYTES`]) answers repeated
//!    requests (a keyframe's picture never changes).
//! 4. H.264 only: H.265 has no decoder on the box; callers offer the keyframe as a one-frame
//!    MP4 the browser decodes instead (see the README).

pub mod decode;
pub mod locate;

use crate::error::{Error, Result};
use crate::index::ReadChunks;
use crate::media::h26x::Codec;
use crate::storage::Storage;
use crate::{bail, err};
use bytes::Bytes;
use locate::{find_keyframe, Pick};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

/// JPEGs kept.
pub const CACHE_ENTRIES: usize = 64;
/// Most JPEG bytes kept.
pub const CACHE_BYTES: usize = 2 << 20;
/// Requests that may wait while another decode runs.
pub const MAX_WAITING: usize = 4;
/// The child gives up after this many seconds.
pub const CHILD_TIMEOUT_S: u32 = 10;
/// Largest JPEG accepted from the child.
pub const MAX_JPEG_BYTES: usize = 8 << 20;
/// Widths a client may ask for.
pub const WIDTHS: std::ops::RangeInclusive<usize> = 16..=3840;
/// The subcommand the child runs.
pub const CHILD_COMMAND: &str = "thumbnail-decode";

/// A thumbnail.
#[derive(Clone, Debug)]
pub struct Jpeg {
    /// The JPEG file.
    pub bytes: Bytes,
    /// The keyframe's wall-clock time, µs (what the picture shows).
    pub ts_us: i64,
}

/// Counters, for status and benchmarks.
#[derive(Default, Debug)]
pub struct ThumbStats {
    /// Children run.
    pub decodes: AtomicU64,
    /// Requests answered from the cache.
    pub cache_hits: AtomicU64,
    /// Requests refused because too many waited.
    pub busy: AtomicU64,
}

type CacheKey = (String, i64, i64, usize);

/// Makes thumbnails (one per service).
pub struct Thumbnailer {
    exe: PathBuf,
    /// Held while a child runs (rule 2).
    gate: Mutex<()>,
    waiting: AtomicUsize,
    cache: Mutex<VecDeque<(CacheKey, Jpeg)>>,
    /// Counters.
    pub stats: ThumbStats,
}

impl Thumbnailer {
    /// A thumbnailer whose child runs `exe` (the service passes `/proc/self/exe`).
    pub fn new(exe: PathBuf) -> Thumbnailer {
        Thumbnailer {
            exe,
            gate: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            cache: Mutex::new(VecDeque::new()),
            stats: ThumbStats::default(),
        }
    }

    /// The thumbnailer of the running service: children re-execute its own binary.
    pub fn for_service() -> Thumbnailer {
        Thumbnailer::new(PathBuf::from("/proc/self/exe"))
    }

    /// The JPEG of the keyframe `pick` names, `width` pixels wide (never wider than the
    /// picture). Blocks while a child decodes: call it off the async runtime.
    pub fn jpeg(
        &self,
        index: &impl ReadChunks,
        storage: &Storage,
        camera: &str,
        pick: Pick,
        width: usize,
    ) -> Result<Jpeg> {
        if !WIDTHS.contains(&width) {
            bail!(InvalidArgument, "width must be from {} to {}", WIDTHS.start(), WIDTHS.end());
        }
        let k = find_keyframe(index, storage, camera, pick)?;
        if k.codec != Codec::H264 {
            bail!(
                InvalidArgument,
                "this camera records H.265, which the box cannot decode; use keyframe.mp4 (the browser decodes it)"
            );
        }
        let key = (camera.to_owned(), k.chunk_id, k.ts_us, width);
        if let Some(j) = self.cached(&key) {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            return Ok(j);
        }
        if self.waiting.fetch_add(1, Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Relaxed);
            self.stats.busy.fetch_add(1, Relaxed);
            bail!(Busy, "thumbnail decoder busy; retry shortly");
        }
        let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_sub(1, Relaxed);
        // Another request may have made it while this one waited.
        if let Some(j) = self.cached(&key) {
            self.stats.cache_hits.fetch_add(1, Relaxed);
            return Ok(j);
        }
        let r = self.run_child(&k.annex_b, width);
        drop(gate);
        let j = Jpeg { bytes: Bytes::from(r?), ts_us: k.ts_us };
        self.remember(key, j.clone());
        Ok(j)
    }

    fn cached(&self, key: &CacheKey) -> Option<Jpeg> {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let i = c.iter().position(|(k, _)| k == key)?;
        let hit = c.remove(i).expect("position is in range");
        c.push_back(hit.clone());
        Some(hit.1)
    }

    fn remember(&self, key: CacheKey, j: Jpeg) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.push_back((key, j));
        while c.len() > CACHE_ENTRIES || c.iter().map(|(_, j)| j.bytes.len()).sum::<usize>() > CACHE_BYTES {
            c.pop_front();
        }
    }

    /// Runs the child on one keyframe and returns its JPEG.
    fn run_child(&self, annex_b: &[u8], width: usize) -> Result<Vec<u8>> {
        use std::os::unix::process::CommandExt;
        self.stats.decodes.fetch_add(1, Relaxed);
        let fail = |what: &str| err!(Media, "thumbnail decoder: {what}");
        let mut child = Command::new(&self.exe)
            .arg0("edgenvr")
            .args([CHILD_COMMAND, "--width", &width.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("starting the thumbnail decoder {}", self.exe.display()), e))?;
        // The child reads all its input before it writes, so writing first cannot deadlock.
        let wrote = child.stdin.take().expect("piped").write_all(annex_b);
        let mut jpeg = Vec::new();
        let read = child.stdout.take().expect("piped").take(MAX_JPEG_BYTES as u64 + 1).read_to_end(&mut jpeg);
        let mut msg = String::new();
        let _ = child.stderr.take().expect("piped").take(4096).read_to_string(&mut msg);
        let status = child.wait().map_err(|e| Error::io("waiting for the thumbnail decoder", e))?;
        if !status.success() {
            let why = msg.trim();
            return Err(fail(if why.is_empty() { "exited with an error" } else { why }));
        }
        wrote.map_err(|e| Error::io("sending the keyframe to the thumbnail decoder", e))?;
        read.map_err(|e| Error::io("reading the thumbnail", e))?;
        if jpeg.len() > MAX_JPEG_BYTES || !jpeg.starts_with(&[0xff, 0xd8]) {
            return Err(fail("returned something that is not a JPEG"));
        }
        Ok(jpeg)
    }
}

/// The child's entry point (`edgenvr thumbnail-decode --width W`): arms its timeout and
/// decodes stdin to stdout. Returns the exit code.
pub fn child_main(width: usize) -> i32 {
    // SAFETY: alarm has no preconditions; SIGALRM's default action ends the process.
    unsafe { libc::alarm(CHILD_TIMEOUT_S) };
    decode::child_main(width)
}
