//! The chunk record layout, byte for byte PyNVR's, so its tools read our files.
//!
//! A chunk file is a plain concatenation of records, one per NAL unit, with no file header:
//!
//! ```text
//!  0        1                               9                              17
//! +--------+-------------------------------+-------------------------------+--------------
//! | ver=0  | timestamp, u64 big-endian, µs | length, u64 big-endian, bytes | NAL (no start
//! | (u8)   | since the Unix epoch (UTC)    | of the NAL that follows       | code) ...
//! +--------+-------------------------------+-------------------------------+--------------
//! ```
//!
//! All NALs of one frame carry that frame's timestamp. Every file begins with the parameter
//! sets and an IDR, so it decodes alone. See `docs/design/chunk-format.md`.

/// The only record version defined; a record with another first byte is corruption.
pub const VERSION: u8 = 0;

/// Bytes in a record header (version, timestamp, length).
pub const HEADER_LEN: usize = 17;

/// The largest NAL a reader accepts. A 4K IDR slice is a few MB; anything larger is a
/// corrupt length that would otherwise make a reader allocate without bound.
pub const MAX_NAL_LEN: u64 = 32 << 20;

/// A decoded record header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// µs since the epoch of the frame this NAL belongs to.
    pub ts_us: i64,
    /// Length of the NAL that follows.
    pub len: u64,
}

/// Why a header could not be decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The version byte is not [`VERSION`].
    BadVersion(u8),
    /// The length is larger than [`MAX_NAL_LEN`].
    TooLong(u64),
    /// The timestamp does not fit in an `i64`.
    BadTimestamp(u64),
}

impl std::fmt::Display for HeaderError {
    /// Says what is wrong in words, for logs and `check` (never Rust syntax).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::BadVersion(v) => write!(f, "version byte is {v}, not {VERSION}"),
            HeaderError::TooLong(len) => write!(f, "length {len} is over the {MAX_NAL_LEN}-byte limit"),
            HeaderError::BadTimestamp(ts) => write!(f, "timestamp {ts} µs is out of range"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Encodes a header into `out`.
pub fn encode_header(ts_us: i64, len: usize, out: &mut [u8; HEADER_LEN]) {
    out[0] = VERSION;
    out[1..9].copy_from_slice(&(ts_us as u64).to_be_bytes());
    out[9..17].copy_from_slice(&(len as u64).to_be_bytes());
}

/// Appends one whole record (header and NAL) to `buf`.
pub fn append_record(buf: &mut Vec<u8>, ts_us: i64, nal: &[u8]) {
    let mut h = [0u8; HEADER_LEN];
    encode_header(ts_us, nal.len(), &mut h);
    buf.extend_from_slice(&h);
    buf.extend_from_slice(nal);
}

/// Decodes a header, checking version and bounds. Negative timestamps are rejected:
/// footage from before 1970 means a board whose clock was never set, which the recorder
/// never writes (see `docs/design/time.md`).
pub fn decode_header(h: &[u8; HEADER_LEN]) -> Result<RecordHeader, HeaderError> {
    if h[0] != VERSION {
        return Err(HeaderError::BadVersion(h[0]));
    }
    let ts = u64::from_be_bytes(h[1..9].try_into().expect("slice is 8 bytes"));
    let len = u64::from_be_bytes(h[9..17].try_into().expect("slice is 8 bytes"));
    if ts > i64::MAX as u64 {
        return Err(HeaderError::BadTimestamp(ts));
    }
    if len > MAX_NAL_LEN {
        return Err(HeaderError::TooLong(len));
    }
    Ok(RecordHeader { ts_us: ts as i64, len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_pynvr_byte_for_byte() {
        let mut buf = Vec::new();
        append_record(&mut buf, 0x0102_0304_0506_0708, &[0x65, 0xAA]);
        assert_eq!(
            buf,
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 2, 0x65, 0xAA],
            "version, BE timestamp, BE length, NAL"
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let mut h = [0u8; HEADER_LEN];
        encode_header(5, 10, &mut h);
        h[0] = 1;
        assert_eq!(decode_header(&h), Err(HeaderError::BadVersion(1)));
        encode_header(5, (MAX_NAL_LEN + 1) as usize, &mut h);
        assert_eq!(decode_header(&h), Err(HeaderError::TooLong(MAX_NAL_LEN + 1)));
        h[1] = 0x80;
        h[9..].copy_from_slice(&[0; 8]);
        assert!(matches!(decode_header(&h), Err(HeaderError::BadTimestamp(_))));
    }

    #[test]
    fn header_errors_read_as_words() {
        assert_eq!(HeaderError::BadVersion(1).to_string(), "version byte is 1, not 0");
        assert_eq!(HeaderError::TooLong(1 << 40).to_string(), "length 1099511627776 is over the 33554432-byte limit");
    }

    proptest! {
        #[test]
        fn header_round_trips(ts in 0i64..i64::MAX, len in 0u64..=MAX_NAL_LEN) {
            let mut h = [0u8; HEADER_LEN];
            encode_header(ts, len as usize, &mut h);
            prop_assert_eq!(decode_header(&h), Ok(RecordHeader { ts_us: ts, len }));
        }
    }
}
