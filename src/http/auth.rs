//! Bearer-token access control. When `[server] token` is set, every route but
//! `/api/v1/health` needs `Authorization: Bearer TOKEN` or `?token=TOKEN` (for a plain
//! video link). Compared in constant time, so response timing does not reveal a prefix.

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request carrying `authorization` (header) and `query_token` may pass.
pub fn allowed(expected: Option<&str>, authorization: Option<&str>, query_token: Option<&str>) -> bool {
    let Some(expected) = expected else { return true };
    let from_header = authorization.and_then(|h| h.trim().strip_prefix("Bearer ")).map(str::trim);
    [from_header, query_token].into_iter().flatten().any(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_checks() {
        let t = Some("0123456789abcdef");
        assert!(allowed(None, None, None));
        assert!(!allowed(t, None, None));
        assert!(allowed(t, Some("Bearer 0123456789abcdef"), None));
        assert!(allowed(t, None, Some("0123456789abcdef")));
        assert!(!allowed(t, Some("Bearer 0123456789abcdeF"), None));
        assert!(!allowed(t, Some("Basic 0123456789abcdef"), None));
        assert!(!allowed(t, Some("Bearer 0123456789abcde"), Some("x")));
        assert!(!constant_time_eq(b"a", b"ab"));
    }
}
