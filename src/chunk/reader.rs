//! Streams records out of a chunk file with bounded memory.
//!
//! The reader never trusts a length: a record whose length exceeds
//! [`MAX_NAL_LEN`](super::format::MAX_NAL_LEN) or runs past the end of the file is reported
//! as an error at its byte offset, and [`ChunkReader::good_len`] tells where the last complete
//! record ends, which is where recovery truncates a torn file.

use super::format::{decode_header, HeaderError, RecordHeader, HEADER_LEN};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Why reading stopped before the end of the file.
#[derive(Debug)]
pub enum ReadError {
    /// The file ends inside a record (a torn write).
    Truncated {
        /// Offset of the incomplete record.
        offset: u64,
    },
    /// The header at `offset` is invalid (bad version, absurd length or timestamp).
    BadHeader {
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        why: HeaderError,
    },
    /// The operating system failed to read.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Truncated { offset } => {
                write!(f, "record at byte {offset} is cut short (torn write)")
            }
            ReadError::BadHeader { offset, why } => {
                write!(f, "record at byte {offset} is invalid: {why}")
            }
            ReadError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// A sequential reader of records.
pub struct ChunkReader<R> {
    inner: BufReader<R>,
    /// Offset of the next record to read; after a complete record, also `good_len`.
    offset: u64,
    /// Total length of the input, when known, to reject lengths that run past the end
    /// before reading (or allocating) anything.
    total_len: Option<u64>,
    /// A header read by [`ChunkReader::peek_header`] whose NAL has not been read yet.
    peeked: Option<RecordHeader>,
}

impl ChunkReader<File> {
    /// Opens a chunk file for reading (a regular file; a symlink is not followed).
    pub fn open(path: &Path) -> io::Result<Self> {
        let f = crate::storage::confined::open_read_nofollow(path)?;
        let len = f.metadata()?.len();
        Ok(ChunkReader::with_len(f, Some(len)))
    }

    /// Opens a chunk and positions the reader at `offset` (a record boundary, e.g. a
    /// keyframe offset from the index).
    pub fn open_at(path: &Path, offset: u64) -> io::Result<Self> {
        let mut f = crate::storage::confined::open_read_nofollow(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(offset))?;
        let mut r = ChunkReader::with_len(f, Some(len));
        r.offset = offset;
        Ok(r)
    }
}

impl<R: Read> ChunkReader<R> {
    /// Wraps any reader; `total_len` bounds lengths when known.
    pub fn with_len(inner: R, total_len: Option<u64>) -> Self {
        ChunkReader { inner: BufReader::with_capacity(64 << 10, inner), offset: 0, total_len, peeked: None }
    }

    /// Offset just past the last complete record read so far.
    pub fn good_len(&self) -> u64 {
        self.offset
    }

    /// Returns the next record's header without consuming the record: the next `next_*`
    /// call reads the same record.
    pub fn peek_header(&mut self) -> Result<Option<RecordHeader>, ReadError> {
        if self.peeked.is_none() {
            self.peeked = self.next_header()?;
        }
        Ok(self.peeked)
    }

    /// Reads the next header, or `None` at a clean end of file.
    fn next_header(&mut self) -> Result<Option<RecordHeader>, ReadError> {
        if let Some(h) = self.peeked.take() {
            return Ok(Some(h));
        }
        let mut h = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.inner.read(&mut h[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(ReadError::Truncated { offset: self.offset }),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        let hdr = decode_header(&h).map_err(|why| ReadError::BadHeader { offset: self.offset, why })?;
        if let Some(total) = self.total_len {
            if self.offset + HEADER_LEN as u64 + hdr.len > total {
                return Err(ReadError::Truncated { offset: self.offset });
            }
        }
        Ok(Some(hdr))
    }

    /// Reads the next record's NAL into `nal` (replacing its contents). Returns the header,
    /// or `None` at a clean end of file.
    pub fn next_into(&mut self, nal: &mut Vec<u8>) -> Result<Option<RecordHeader>, ReadError> {
        nal.clear();
        self.next_appending(nal)
    }

    /// Like [`next_into`](Self::next_into) but appends the NAL to `out` instead of
    /// replacing its contents (so a caller can put a prefix before it without a copy).
    pub fn next_appending(&mut self, out: &mut Vec<u8>) -> Result<Option<RecordHeader>, ReadError> {
        let Some(hdr) = self.next_header()? else { return Ok(None) };
        let got = (&mut self.inner).take(hdr.len).read_to_end(out).map_err(ReadError::Io)?;
        if got as u64 != hdr.len {
            return Err(ReadError::Truncated { offset: self.offset });
        }
        self.offset += HEADER_LEN as u64 + hdr.len;
        Ok(Some(hdr))
    }

    /// Like [`next_into`](Self::next_into) but keeps only the first `keep` bytes of the NAL
    /// (enough to classify it), skipping the rest without buffering it.
    pub fn next_prefix(&mut self, prefix: &mut Vec<u8>, keep: usize) -> Result<Option<RecordHeader>, ReadError> {
        let Some(hdr) = self.next_header()? else {
            return Ok(None);
        };
        prefix.clear();
        let want = hdr.len.min(keep as u64);
        let got = (&mut self.inner).take(want).read_to_end(prefix).map_err(ReadError::Io)? as u64;
        let skipped = io::copy(&mut (&mut self.inner).take(hdr.len - want), &mut io::sink()).map_err(ReadError::Io)?;
        if got + skipped != hdr.len {
            return Err(ReadError::Truncated { offset: self.offset });
        }
        self.offset += HEADER_LEN as u64 + hdr.len;
        Ok(Some(hdr))
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::{append_record, HEADER_LEN, MAX_NAL_LEN};
    use super::*;
    use proptest::prelude::*;

    /// Records read, the error that stopped reading (if any), and the good length.
    type ReadAll = (Vec<(i64, Vec<u8>)>, Option<ReadError>, u64);

    fn read_all(data: &[u8], known_len: bool) -> ReadAll {
        let mut r = ChunkReader::with_len(data, known_len.then_some(data.len() as u64));
        let mut out = Vec::new();
        let mut nal = Vec::new();
        loop {
            match r.next_into(&mut nal) {
                Ok(Some(h)) => out.push((h.ts_us, nal.clone())),
                Ok(None) => return (out, None, r.good_len()),
                Err(e) => return (out, Some(e), r.good_len()),
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip(records in proptest::collection::vec((0i64..1i64 << 60, proptest::collection::vec(any::<u8>(), 0..300)), 0..20)) {
            let mut buf = Vec::new();
            for (ts, nal) in &records {
                append_record(&mut buf, *ts, nal);
            }
            for known in [true, false] {
                let (got, err, good) = read_all(&buf, known);
                prop_assert!(err.is_none());
                prop_assert_eq!(&got, &records);
                prop_assert_eq!(good, buf.len() as u64);
            }
        }
    }

    proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any bytes read as records (whole NALs, or prefixes with the payload
        /// skipped) stop cleanly at the first bad record, never past it.
        #[test]
        fn fuzz_reader(data in prop_oneof![
            crate::testutil::chunk_like_bytes(),
            proptest::collection::vec(any::<u8>(), 0..200),
        ]) {
            for known in [true, false] {
                let (recs, err, good) = read_all(&data, known);
                let sum: u64 = recs.iter().map(|(_, n)| HEADER_LEN as u64 + n.len() as u64).sum();
                prop_assert_eq!(sum, good);
                prop_assert!(recs.iter().all(|(ts, n)| *ts >= 0 && n.len() as u64 <= MAX_NAL_LEN));
                prop_assert!(err.is_some() || good == data.len() as u64);
                let mut r = ChunkReader::with_len(&data[..], known.then_some(data.len() as u64));
                let mut p = Vec::new();
                let mut n = 0;
                while let Ok(Some(h)) = r.next_prefix(&mut p, 2) {
                    prop_assert_eq!((h.ts_us, p.len()), (recs[n].0, recs[n].1.len().min(2)));
                    n += 1;
                }
                prop_assert_eq!((n, r.good_len()), (recs.len(), good));
            }
        }
    }

    /// A torn tail at every byte offset of the last record is recovered to the previous one.
    #[test]
    fn torn_tail_at_every_offset() {
        let mut buf = Vec::new();
        append_record(&mut buf, 1_000, &[0x67, 1, 2, 3]);
        append_record(&mut buf, 1_000, &[0x68, 4]);
        let prev_end = buf.len();
        append_record(&mut buf, 2_000, &[0x65; 40]);
        for cut in prev_end + 1..buf.len() {
            for known in [true, false] {
                let (got, err, good) = read_all(&buf[..cut], known);
                assert_eq!(got.len(), 2, "cut at {cut}");
                assert!(
                    matches!(err, Some(ReadError::Truncated { offset }) if offset == prev_end as u64),
                    "cut at {cut}: {err:?}"
                );
                assert_eq!(good, prev_end as u64);
            }
        }
    }

    #[test]
    fn hostile_lengths_are_rejected_without_allocating() {
        let mut buf = Vec::new();
        append_record(&mut buf, 1, &[1, 2, 3]);
        let mut bad = [0u8; HEADER_LEN];
        super::super::format::encode_header(2, 0, &mut bad);
        bad[9..17].copy_from_slice(&u64::MAX.to_be_bytes());
        buf.extend_from_slice(&bad);
        let (got, err, good) = read_all(&buf, false);
        assert_eq!(got.len(), 1);
        assert!(matches!(err, Some(ReadError::BadHeader { offset: 20, .. })), "{err:?}");
        assert_eq!(good, 20);

        // Within MAX_NAL_LEN but past the end of the file: caught before reading.
        let mut buf2 = Vec::new();
        let mut h = [0u8; HEADER_LEN];
        super::super::format::encode_header(2, (MAX_NAL_LEN - 1) as usize, &mut h);
        buf2.extend_from_slice(&h);
        let (_, err, good) = read_all(&buf2, true);
        assert!(matches!(err, Some(ReadError::Truncated { offset: 0 })), "{err:?}");
        assert_eq!(good, 0);
    }

    #[test]
    fn prefix_reads_skip_payload() {
        let mut buf = Vec::new();
        append_record(&mut buf, 7, &[9; 1000]);
        append_record(&mut buf, 8, &[5; 3]);
        let mut r = ChunkReader::with_len(&buf[..], None);
        let mut p = Vec::new();
        assert_eq!(r.next_prefix(&mut p, 2).unwrap().unwrap().len, 1000);
        assert_eq!(p, [9, 9]);
        assert_eq!(r.next_prefix(&mut p, 2).unwrap().unwrap().ts_us, 8);
        assert_eq!(p, [5, 5]);
        assert!(r.next_prefix(&mut p, 2).unwrap().is_none());
    }
}
