//! Query strings: decoded once, bounded in number, read through typed getters that name
//! the parameter in their errors.

use super::lists;
use crate::error::{Error, ErrorKind, Result};
use crate::time::{now_us, parse_time};

/// Most parameters in one query string.
pub const MAX_PARAMS: usize = 16;

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// Query parameters, decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=2` (percent escapes and `+` decoded); more than [`MAX_PARAMS`] is an
    /// error.
    pub fn parse(q: &str) -> Result<Query> {
        let mut v = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            if v.len() >= MAX_PARAMS {
                return Err(bad("too many query parameters"));
            }
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            v.push((crate::text::percent_decode(k, true), crate::text::percent_decode(val, true)));
        }
        Ok(Query(v))
    }

    /// The first value of `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    /// A time parameter (RFC 3339 or Unix seconds), if present.
    pub fn time(&self, k: &str) -> Result<Option<i64>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => {
                parse_time(v).map(Some).ok_or_else(|| bad(format!("{k}: {v:?} is not RFC 3339 or Unix seconds")))
            }
        }
    }

    /// `from` and `to` (`required`: both must be given; else from the epoch to a day ahead).
    pub fn range(&self, required: bool) -> Result<(i64, i64)> {
        let (from, to) = (self.time("from")?, self.time("to")?);
        if required && (from.is_none() || to.is_none()) {
            return Err(bad("from and to are required (RFC 3339 or Unix seconds)"));
        }
        let (from, to) = (from.unwrap_or(0), to.unwrap_or(now_us() + 86_400_000_000));
        if from > to {
            return Err(bad("from is after to"));
        }
        Ok((from, to))
    }

    /// `limit`, from 1 to [`lists::MAX_LIMIT`].
    pub fn limit(&self) -> Result<usize> {
        match self.get("limit") {
            None => Ok(lists::DEFAULT_LIMIT),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=lists::MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(bad(format!("limit must be from 1 to {}", lists::MAX_LIMIT))),
            },
        }
    }

    /// `after`: a keyset cursor `START_US:ID` from a previous page's `next`.
    pub fn cursor(&self) -> Result<(i64, i64)> {
        match self.get("after") {
            None => Ok((i64::MIN, 0)),
            Some(a) => a
                .split_once(':')
                .and_then(|(s, i)| Some((s.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| bad("after must be the `next` value of a previous page")),
        }
    }
}

/// `target` with the value of every `token` parameter replaced by `***`, for logs.
pub fn redact_target(target: &str) -> String {
    let Some((path, q)) = target.split_once('?') else { return target.to_owned() };
    let q: Vec<String> = q
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if crate::text::percent_decode(k, true).eq_ignore_ascii_case("token") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typed_getters() {
        let q = Query::parse("from=1700000000&to=2023-11-14T22%3A13%3A21Z&limit=5&after=10:3&x").unwrap();
        assert_eq!(q.range(true).unwrap(), (1_700_000_000_000_000, 1_700_000_001_000_000));
        assert_eq!(q.limit().unwrap(), 5);
        assert_eq!(q.cursor().unwrap(), (10, 3));
        assert_eq!(q.get("x"), Some(""));
        assert!(Query::parse(&"a=1&".repeat(17)).is_err());
        assert!(Query::parse("from=2&to=1").unwrap().range(false).is_err());
        assert!(Query::parse("limit=0").unwrap().limit().is_err());
        assert!(Query::parse("after=1").unwrap().cursor().is_err());
    }

    #[test]
    fn tokens_never_reach_logs() {
        assert_eq!(redact_target("/a?from=1&token=secret&to=2"), "/a?from=1&token=***&to=2");
        assert_eq!(redact_target("/a?%74oken=secret"), "/a?%74oken=***");
        assert_eq!(redact_target("/a"), "/a");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Arbitrary query strings: no panic; a parsed query keeps the bounds; a range that
        /// parses is ordered; redaction leaves no token value.
        #[test]
        fn any_query(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            let s = String::from_utf8_lossy(&raw);
            if let Ok(q) = Query::parse(&s) {
                prop_assert!(q.0.len() <= MAX_PARAMS);
                if let Ok((from, to)) = q.range(false) {
                    prop_assert!(from <= to);
                }
                if let Ok(n) = q.limit() {
                    prop_assert!((1..=lists::MAX_LIMIT).contains(&n));
                }
                let _ = q.cursor();
            }
            let r = redact_target(&format!("/x?{s}&token=SECRETVALUE"));
            prop_assert!(!r.contains("SECRETVALUE"));
        }

        /// The time and size parsers the API and the config use, on arbitrary text.
        #[test]
        fn time_and_size_parsers(raw in "\\PC{0,40}") {
            if let Some(t) = parse_time(&raw) {
                prop_assert!(crate::time::format_rfc3339(t).len() >= 20);
            }
            let _ = crate::time::parse_yyyymmdd_hhmm(&raw);
            if let Ok(n) = crate::config::parse_size(&raw) {
                prop_assert!(n <= u64::MAX / 2);
            }
            if let Ok(d) = crate::config::parse_duration(&raw) {
                prop_assert!(d.as_secs() <= 100 * 365 * 86_400);
            }
            let _ = crate::config::parse_free_space(&raw);
        }
    }
}
