//! Small text helpers shared by URL handling in the RTSP source and the HTTP API.

/// Decodes `%XX` escapes (and, when `plus_is_space`, `+` as a space, as in query strings).
/// Invalid escapes are kept literally; invalid UTF-8 is replaced.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Whether a query parameter named `name` (decoded) carries a credential: cameras take
/// them as `?user=admin&password=x`, `?pwd=`, `?token=`, `?authkey=` and the like.
pub fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["user", "usr", "login", "pass", "pwd", "token", "secret", "key", "auth", "sig", "cred"]
        .iter()
        .any(|w| n.contains(w))
}

/// A URL safe to log: any `user:password@` becomes `***@`, and the value of every query
/// parameter that can carry a credential becomes `***`.
pub fn redact(url: &str) -> String {
    let (mut out, rest) = match url.find("://") {
        Some(scheme_end) => {
            let rest = &url[scheme_end + 3..];
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => (format!("{}***@", &url[..scheme_end + 3]), &rest[at + 1..]),
                None => (url[..scheme_end + 3].to_owned(), rest),
            }
        }
        None => (String::new(), url),
    };
    let Some(q) = rest.find('?') else {
        out.push_str(rest);
        return out;
    };
    out.push_str(&rest[..=q]);
    let (query, fragment) = match rest[q + 1..].find('#') {
        Some(h) => (&rest[q + 1..q + 1 + h], &rest[q + 1 + h..]),
        None => (&rest[q + 1..], ""),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if is_secret_param(&percent_decode(k, true)) => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    out.push_str(&pairs.join("&"));
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_bad_ones() {
        assert_eq!(percent_decode("s%40cret", false), "s@cret");
        assert_eq!(percent_decode("a+b%2Bc", true), "a b+c");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%2e%2e%2fetc", false), "../etc");
        assert_eq!(percent_decode("%é%", false), "%é%", "no panic on a multi-byte character");
    }
}
