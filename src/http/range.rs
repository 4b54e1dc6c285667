//! HTTP `Range` (RFC 9110 §14): one byte range per request. Several ranges get the whole
//! file (allowed, and simpler than multipart), a malformed header is ignored (as the RFC
//! says), and a range that cannot be met is a 416.

/// What to send for a `Range` header against a body of `len` bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RangeReply {
    /// 200 with the whole body.
    Full,
    /// 206 with bytes `start..end` (end exclusive).
    Partial {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value.
pub fn parse(header: Option<&str>, len: u64) -> RangeReply {
    let Some(h) = header else { return RangeReply::Full };
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeReply::Full };
    if spec.contains(',') {
        return RangeReply::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeReply::Full };
    let num =
        |s: &str| -> Option<u64> { (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok())? };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(0) => RangeReply::Unsatisfiable,
            Some(n) if len > 0 => RangeReply::Partial { start: len.saturating_sub(n), end: len },
            Some(_) => RangeReply::Unsatisfiable,
            None => RangeReply::Full,
        },
        (a, "") => match num(a) {
            Some(a) if a < len => RangeReply::Partial { start: a, end: len },
            Some(_) => RangeReply::Unsatisfiable,
            None => RangeReply::Full,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b && a < len => RangeReply::Partial { start: a, end: b.min(len - 1) + 1 },
            (Some(a), Some(b)) if a <= b => RangeReply::Unsatisfiable,
            _ => RangeReply::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RangeReply::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

        /// Any header against any length: no panic, and a partial range lies inside the
        /// body and is not empty.
        #[test]
        fn any_range_header(raw in proptest::collection::vec(any::<u8>(), 0..64), len in any::<u64>(),
                            text in "bytes=[0-9 ,-]{0,30}") {
            for h in [String::from_utf8_lossy(&raw).into_owned(), text] {
                if let Partial { start, end } = parse(Some(&h), len) {
                    prop_assert!(start < end && end <= len, "{h:?} {len}: {start}..{end}");
                }
            }
        }
    }

    #[test]
    fn the_three_forms_and_their_edges() {
        assert_eq!(parse(None, 100), Full);
        assert_eq!(parse(Some("bytes=0-9"), 100), Partial { start: 0, end: 10 });
        assert_eq!(parse(Some("bytes=90-"), 100), Partial { start: 90, end: 100 });
        assert_eq!(parse(Some("bytes=-10"), 100), Partial { start: 90, end: 100 });
        assert_eq!(parse(Some("bytes=-1000"), 100), Partial { start: 0, end: 100 });
        assert_eq!(parse(Some("bytes=50-5000"), 100), Partial { start: 50, end: 100 });
        assert_eq!(parse(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-0"), 0), Unsatisfiable);
        // Ignored (whole body): malformed, reversed, other units, several ranges, huge numbers.
        for h in [
            "bytes=9-0",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=-",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse(Some(h), 100), Full, "{h}");
        }
    }
}
