//! The `Host` and `Origin` checks (`docs/design/http.md`, "DNS rebinding").
//!
//! DNS rebinding: a page on `attacker.example` re-points its own name at 127.0.0.1 (or the
//! box's LAN address) and the browser, thinking it talks to the same site, sends it our
//! API. Such requests carry `Host: attacker.example`; so only names that can be ours are
//! served: IP literals, `localhost`, the box's hostname and `HOSTNAME.local` (mDNS), and
//! the names in `[server] allowed_hosts`. A request without `Host` (HTTP/1.0 tools) comes
//! from no browser and passes.
//!
//! `Origin` (sent by browsers on cross-origin requests and on every POST) must name the
//! same host the request was sent to; see [`super::auth`].

use std::net::{Ipv4Addr, Ipv6Addr};

/// The names this box answers to.
#[derive(Clone, Debug, Default)]
pub struct HostPolicy {
    /// Lower-cased names, without trailing dots.
    names: Vec<String>,
}

impl HostPolicy {
    /// `localhost`, `hostname` and `hostname.local`, and `allowed` (`[server]
    /// allowed_hosts`).
    pub fn new(hostname: Option<&str>, allowed: &[String]) -> HostPolicy {
        let mut names = vec!["localhost".to_owned()];
        if let Some(h) = hostname.map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase()).filter(|h| !h.is_empty())
        {
            let short = h.split('.').next().unwrap_or(&h).to_owned();
            names.push(format!("{short}.local"));
            names.push(short);
            names.push(h);
        }
        names.extend(allowed.iter().map(|a| a.trim().trim_end_matches('.').to_ascii_lowercase()));
        names.sort();
        names.dedup();
        HostPolicy { names }
    }

    /// The policy for this machine: its hostname as the kernel knows it.
    pub fn for_this_host(allowed: &[String]) -> HostPolicy {
        let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
        HostPolicy::new(h.as_deref(), allowed)
    }

    /// Whether a request with this `Host` header may be served; the error says why not.
    pub fn check(&self, host: Option<&str>) -> Result<(), String> {
        let Some(host) = host else { return Ok(()) };
        let Some((name, _)) = split_host_port(host) else {
            return Err(format!("Host {:?} is not a host name", shorten(host)));
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if is_ip_literal(&name) || self.names.contains(&name) {
            return Ok(());
        }
        Err(format!(
            "Host {:?} is not a name of this recorder; add it to [server] allowed_hosts if it is",
            shorten(&name)
        ))
    }
}

fn shorten(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Splits `host[:port]` (`[v6]:port` for IPv6); `None` if malformed.
pub fn split_host_port(h: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = h.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after {
            "" => (v6, None),
            p => (v6, Some(p.strip_prefix(':')?)),
        }
    } else {
        match h.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
    ok.then_some((name, port))
}

fn is_ip_literal(name: &str) -> bool {
    name.parse::<Ipv4Addr>().is_ok() || name.parse::<Ipv6Addr>().is_ok()
}

/// Whether an `Origin` header names the host the request was sent to (`host`: its `Host`
/// header). `null` and anything unparsable do not.
pub fn origin_matches(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let (default_port, authority) = match origin.split_once("://") {
        Some(("http", a)) => (80, a),
        Some(("https", a)) => (443, a),
        _ => return false,
    };
    let (Some((on, op)), Some((hn, hp))) = (split_host_port(authority), split_host_port(host)) else {
        return false;
    };
    on.eq_ignore_ascii_case(hn) && op.unwrap_or(default_port) == hp.unwrap_or(default_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hosts_that_are_ours_and_others() {
        let p = HostPolicy::new(Some("nvr-garage\n"), &["cams.example.org".to_owned()]);
        for ok in [
            "127.0.0.1:8080",
            "192.168.1.20",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "LOCALHOST",
            "nvr-garage",
            "nvr-garage.local:8080",
            "nvr-garage.local.",
            "cams.example.org:443",
        ] {
            assert!(p.check(Some(ok)).is_ok(), "{ok}");
        }
        assert!(p.check(None).is_ok());
        for bad in ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", "nvr-garage.evil", ""] {
            let e = p.check(Some(bad)).unwrap_err();
            assert!(e.contains("allowed_hosts") || e.contains("not a host name"), "{bad}: {e}");
        }
        assert!(p.check(Some("a b")).is_err());
        assert!(p.check(Some("host:99999")).is_err());
    }

    #[test]
    fn origins() {
        assert!(origin_matches("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(origin_matches("http://NVR.local", Some("nvr.local:80")));
        assert!(origin_matches("https://nvr.local", Some("nvr.local:443")));
        assert!(!origin_matches("http://evil.example", Some("127.0.0.1:8080")));
        assert!(!origin_matches("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(!origin_matches("null", Some("127.0.0.1:8080")));
        assert!(!origin_matches("http://127.0.0.1:8080", None));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes as Host and Origin headers: no panic, and what passes is one of
        /// our names or an IP literal.
        #[test]
        fn host_and_origin_parsing_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300),
                                                 origin in "\\PC{0,80}") {
            let s = String::from_utf8_lossy(&raw);
            let p = HostPolicy::new(Some("box"), &[]);
            if p.check(Some(&s)).is_ok() {
                let (name, _) = split_host_port(&s).unwrap();
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                prop_assert!(is_ip_literal(&name) || ["localhost", "box", "box.local"].contains(&name.as_str()));
            }
            let _ = origin_matches(&origin, Some(&s));
        }
    }
}
