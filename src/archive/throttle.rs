//! The reader an upload streams through: it reads the chunk file in pieces, hashes them
//! (MD5, compared with the store's ETag afterwards), holds the pace to `max_rate` and
//! stops at shutdown. Its only buffer is the caller's.

use crate::shutdown::Shutdown;
use md5::{Digest, Md5};
use std::io::Read;
use std::time::{Duration, Instant};

/// Longest single sleep, so a shutdown is noticed quickly.
const MAX_NAP: Duration = Duration::from_millis(200);

/// Reads `inner`, hashing and pacing what passes.
pub struct PacedReader<R> {
    inner: R,
    hash: Md5,
    rate: Option<u64>,
    started: Instant,
    passed: u64,
    shutdown: Shutdown,
}

impl<R: Read> PacedReader<R> {
    /// Wraps `inner`; `rate` in bytes per second (`None`: as fast as it goes).
    pub fn new(inner: R, rate: Option<u64>, shutdown: Shutdown) -> PacedReader<R> {
        PacedReader { inner, hash: Md5::new(), rate, started: Instant::now(), passed: 0, shutdown }
    }

    /// Bytes read so far.
    pub fn passed(&self) -> u64 {
        self.passed
    }

    /// The MD5 of everything read, lower-case hex.
    pub fn md5_hex(self) -> String {
        hex(&self.hash.finalize())
    }

    /// Sleeps while reading `more` bytes now would exceed the rate.
    fn pace(&self, more: u64) -> std::io::Result<()> {
        loop {
            if self.shutdown.is_triggered() {
                return Err(std::io::Error::other("shutting down"));
            }
            let Some(rate) = self.rate else { return Ok(()) };
            let due = Duration::from_secs_f64((self.passed + more) as f64 / rate as f64);
            let elapsed = self.started.elapsed();
            if elapsed >= due {
                return Ok(());
            }
            std::thread::sleep((due - elapsed).min(MAX_NAP));
        }
    }
}

impl<R: Read> Read for PacedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // At most a tenth of a second's worth per read, so the pace is smooth.
        let cap = self.rate.map_or(buf.len(), |r| buf.len().min((r / 10).max(4096) as usize));
        self.pace(cap as u64)?;
        let n = self.inner.read(&mut buf[..cap])?;
        self.hash.update(&buf[..n]);
        self.passed += n as u64;
        Ok(n)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_what_passes_and_holds_the_rate() {
        let data = vec![7u8; 300_000];
        let mut r = PacedReader::new(&data[..], Some(1_000_000), Shutdown::new());
        let t = Instant::now();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        // 300 kB at 1 MB/s cannot take less than ~0.3 s (a floor, not a timing goal).
        assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
        assert_eq!(r.md5_hex(), hex(&Md5::digest(&data)));
        let mut empty = PacedReader::new(&b""[..], None, Shutdown::new());
        empty.read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(empty.md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn stops_at_shutdown() {
        let s = Shutdown::new();
        s.trigger();
        let mut r = PacedReader::new(&[0u8; 100_000][..], Some(16_384), s);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "shutting down");
    }
}
