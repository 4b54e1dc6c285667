//! The packed keyframe seek table stored in `chunk.keyframes`: LEB128 varint pairs of
//! deltas, about 4 bytes per keyframe instead of a row each, so sealing a chunk is one row
//! write however many GOPs it holds.

/// Encodes `(ts_us, offset)` pairs (non-decreasing) relative to `(start_us, 0)`.
pub fn encode(start_us: i64, keyframes: &[(i64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(keyframes.len() * 5);
    let (mut pts, mut poff) = (start_us, 0u64);
    for &(ts, off) in keyframes {
        put_varint(&mut out, (ts - pts).max(0) as u64);
        put_varint(&mut out, off.saturating_sub(poff));
        pts = ts.max(pts);
        poff = off.max(poff);
    }
    out
}

/// Decodes a table made by [`encode`]; `None` if the blob is malformed.
pub fn decode(start_us: i64, mut blob: &[u8]) -> Option<Vec<(i64, u64)>> {
    let mut out = Vec::new();
    let (mut ts, mut off) = (start_us, 0u64);
    while !blob.is_empty() {
        ts = ts.checked_add(i64::try_from(get_varint(&mut blob)?).ok()?)?;
        off = off.checked_add(get_varint(&mut blob)?)?;
        out.push((ts, off));
    }
    Some(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(start in 0i64..1 << 55, mut deltas in proptest::collection::vec((0i64..1 << 40, 0u64..1 << 40), 0..50)) {
            let mut kf = Vec::new();
            let (mut ts, mut off) = (start, 0u64);
            for (dt, doff) in deltas.drain(..) {
                ts += dt;
                off += doff;
                kf.push((ts, off));
            }
            prop_assert_eq!(decode(start, &encode(start, &kf)), Some(kf));
        }
    }

    proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any blob decodes or is refused without a panic; what decodes is a
        /// non-decreasing table that survives a round trip.
        #[test]
        fn fuzz_decode(start in any::<i64>(), blob in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some(kf) = decode(start, &blob) {
                prop_assert!(kf.iter().all(|k| k.0 >= start));
                prop_assert!(kf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
                prop_assert_eq!(decode(start, &encode(start, &kf)), Some(kf));
            }
        }
    }

    #[test]
    fn malformed_is_none() {
        assert_eq!(decode(0, &[0x80]), None);
        assert_eq!(decode(0, &[0x01]), None);
        assert_eq!(decode(0, &[0xff; 11]), None);
    }
}
