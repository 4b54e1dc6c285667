//! WS-Security UsernameToken with a password digest, the login every ONVIF camera takes
//! (ONVIF Core Specification 5.12; OASIS Web Services Security UsernameToken Profile 1.0).
//!
//! `PasswordDigest = base64(SHA-1(nonce + created + password))` where `nonce` is the raw
//! bytes (sent base64-encoded) and `created` the exact text sent in `wsu:Created`. The
//! password never crosses the network, but the digest only holds while `created` is within
//! the camera's tolerance of *its own* clock (often ±5 min): so `created` is taken from the
//! camera's clock, learned with GetSystemDateAndTime (`device::sync_clock`).

use crate::onvif::xml::escape;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};
use std::fmt;

/// Bytes of random nonce per request (16, as most clients send).
const NONCE_LEN: usize = 16;

/// A camera's user name and password. `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The ONVIF user name.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Builds credentials; the password is held only to compute digests.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), password: password.into() }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<hidden>").finish()
    }
}

/// `base64(SHA-1(nonce + created + password))`.
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    BASE64.encode(h.finalize())
}

/// `created` as ONVIF devices read it: UTC to the second, `Z` suffix
/// (`2026-12-01T18:55:50Z`). Some cameras refuse fractional seconds.
pub fn format_created(device_now_us: i64) -> String {
    let c = crate::time::Civil::from_us(device_now_us);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
}

/// The `wsse:Security` SOAP header for one request, with a fresh nonce and `created` at
/// `device_now_us` (the camera's idea of now).
pub fn security_header(creds: &Credentials, device_now_us: i64) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    if getrandom::getrandom(&mut nonce).is_err() {
        // No kernel randomness (never seen on Linux): a nonce from the clock is still unique
        // per request, which is what the camera's replay check needs.
        nonce[..8].copy_from_slice(&crate::time::now_us().to_le_bytes());
        nonce[8..].copy_from_slice(&std::process::id().to_le_bytes().repeat(2));
    }
    token_xml(creds, &nonce, &format_created(device_now_us))
}

fn token_xml(creds: &Credentials, nonce: &[u8], created: &str) -> String {
    format!(
        concat!(
            r#"<wsse:Security s:mustUnderstand="1" "#,
            r#"xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" "#,
            r#"xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">"#,
            r#"<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"#,
            r#"<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password>"#,
            r#"<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-soap-message-security-1.0#Base64Binary">{nonce}</wsse:Nonce>"#,
            r#"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"#
        ),
        user = escape(&creds.username),
        digest = password_digest(nonce, created, &creds.password),
        nonce = BASE64.encode(nonce),
        created = created,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the ONVIF Application Programmer's Guide (user authentication):
    /// nonce `LKqI6G/AikKCQrN0zqZFlg==`, created `2010-09-16T07:50:45Z`, password
    /// `userpassword` give `tuOSpGlFlIXsozq4HFNeeGeFLEI=`. Python's hashlib agrees.
    #[test]
    fn digest_matches_the_onvif_programmers_guide() {
        let nonce = BASE64.decode("LKqI6G/AikKCQrN0zqZFlg==").unwrap();
        assert_eq!(password_digest(&nonce, "2010-09-16T07:50:45Z", "userpassword"), "tuOSpGlFlIXsozq4HFNeeGeFLEI=");
        assert_ne!(password_digest(&nonce, "2010-09-16T07:50:46Z", "userpassword"), "tuOSpGlFlIXsozq4HFNeeGeFLEI=");
    }

    #[test]
    fn header_carries_the_digest_of_what_it_sends() {
        let creds = Credentials::new("ad<min", "secret");
        let created = format_created(1_284_623_445_000_000);
        assert_eq!(created, "2010-09-16T07:50:45Z");
        let h = token_xml(&creds, b"0123456789abcdef", &created);
        assert!(h.contains("<wsse:Username>ad&lt;min</wsse:Username>"), "{h}");
        assert!(h.contains(&format!(">{}</wsse:Password>", password_digest(b"0123456789abcdef", &created, "secret"))));
        assert!(h.contains(&format!(">{}</wsse:Nonce>", BASE64.encode(b"0123456789abcdef"))));
        assert!(!h.contains("secret"), "the password itself is never sent");
        let a = security_header(&creds, 0);
        let b = security_header(&creds, 0);
        assert_ne!(a, b, "a fresh nonce per request");
    }

    #[test]
    fn debug_hides_the_password() {
        let s = format!("{:?}", Credentials::new("admin", "hunter2"));
        assert!(s.contains("admin") && !s.contains("hunter2"), "{s}");
    }
}
