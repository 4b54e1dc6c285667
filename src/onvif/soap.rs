//! SOAP 1.2 over bounded HTTP: the one way edgenvr talks to a camera's ONVIF services.
//!
//! Bounds (see `docs/design/onvif.md`, "HTTP"): a connect timeout, a whole-request timeout,
//! a cap on the reply's headers and body, no redirects (a redirect could carry a request, and
//! its digest, to another host), no proxy from the environment (camera traffic stays on the
//! LAN), plain HTTP only (no TLS code in the binary; cameras serve ONVIF over HTTP).
//!
//! Every authenticated request carries a fresh WS-UsernameToken digest whose `created` is
//! the camera's clock: `device::sync_clock` asks GetSystemDateAndTime (which needs no
//! login) and the client keeps the offset, as other ONVIF clients do, so a camera whose
//! clock is wrong by hours still accepts the login.

use crate::error::{Error, Result};
use crate::onvif::wsse::{self, Credentials};
use crate::onvif::xml::{self, Malformed};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Largest reply body read from a camera. A GetProfiles reply of a four-profile camera with
/// PTZ and analytics is about 60 KiB; anything past this cap is refused, not truncated.
pub const MAX_REPLY_BYTES: u64 = 512 * 1024;

/// Largest reply header block (status line and headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Connect timeout: a camera on the LAN answers a SYN in milliseconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Whole-request timeout (connect, send, wait, read); PullMessages asks the camera to wait
/// at most `events::PULL_WAIT` (5 s) of it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The SOAP 1.2 envelope namespace.
pub const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";

/// A client for one camera: the HTTP agent, the login, and the camera's clock offset.
pub struct Client {
    agent: ureq::Agent,
    creds: Option<Credentials>,
    /// Camera clock minus ours, µs; set by `device::sync_clock`, read for every digest.
    clock_offset_us: AtomicI64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("creds", &self.creds)
            .field("clock_offset_us", &self.clock_offset_us.load(Ordering::Relaxed))
            .finish()
    }
}

/// A SOAP fault or HTTP error a camera answered with, classified.
#[derive(Debug)]
struct Refusal {
    status: u16,
    fault: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fault {
            Some(fault) => write!(f, "HTTP {}, SOAP fault: {fault}", self.status),
            None => write!(f, "HTTP {}", self.status),
        }
    }
}

impl std::error::Error for Refusal {}

impl Client {
    /// A client with the given login (`None`: anonymous calls only).
    pub fn new(creds: Option<Credentials>) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("edgenvr/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CALL_TIMEOUT))
            .max_response_header_size(MAX_HEADER_BYTES)
            .input_buffer_size(64 * 1024)
            .output_buffer_size(16 * 1024)
            .max_idle_connections(2)
            .max_idle_connections_per_host(1)
            .build();
        Client { agent: ureq::Agent::new_with_config(config), creds, clock_offset_us: AtomicI64::new(0) }
    }

    /// Whether calls carry a login.
    pub fn has_credentials(&self) -> bool {
        self.creds.is_some()
    }

    /// The camera's clock minus ours, in µs (0 until `device::sync_clock` learned it).
    pub fn clock_offset_us(&self) -> i64 {
        self.clock_offset_us.load(Ordering::Relaxed)
    }

    /// Converts a time the camera stamped (its clock) to ours.
    pub fn to_local_us(&self, device_us: i64) -> i64 {
        device_us.saturating_sub(self.clock_offset_us())
    }

    /// Sets the camera's clock offset (see `device::sync_clock`, which measures it).
    pub fn set_clock_offset_us(&self, offset_us: i64) {
        self.clock_offset_us.store(offset_us, Ordering::Relaxed);
    }

    /// Calls `action` at `url` with `body` (one element), logged in when the client has
    /// credentials. Returns the reply envelope's text.
    pub fn call(&self, url: &str, action: &str, body: &str) -> Result<String> {
        self.call_with_headers(url, action, "", body)
    }

    /// As [`Client::call`], without a login even when the client has one.
    pub fn call_anonymous(&self, url: &str, action: &str, body: &str) -> Result<String> {
        self.post(url, action, &envelope("", body))
    }

    /// As [`Client::call`], with extra SOAP header elements (WS-Addressing for events).
    pub fn call_with_headers(&self, url: &str, action: &str, headers: &str, body: &str) -> Result<String> {
        let security = match &self.creds {
            Some(c) => wsse::security_header(c, crate::time::now_us().saturating_add(self.clock_offset_us())),
            None => String::new(),
        };
        self.post(url, action, &envelope(&format!("{security}{headers}"), body))
    }

    fn post(&self, url: &str, action: &str, envelope: &str) -> Result<String> {
        let op = action.rsplit('/').next().unwrap_or(action);
        if !url.starts_with("http://") {
            crate::bail!(InvalidArgument, "{op} at {}: only http:// service addresses are supported", redact_url(url));
        }
        let io = |e: ureq::Error| {
            let e2 = match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    crate::err!(Media, "{op} at {}: the reply is too large", redact_url(url))
                }
                _ => crate::err!(Io, "{op} at {} failed", redact_url(url)),
            };
            e2.with_source(e)
        };
        let mut resp = self
            .agent
            .post(url)
            .header("Content-Type", format!("application/soap+xml; charset=utf-8; action=\"{action}\""))
            // SOAP 1.2 carries the action in the content type; some device servers route
            // the WS-BaseNotification calls (Renew, Unsubscribe) by this SOAP 1.1 header only.
            .header("SOAPAction", format!("\"{action}\""))
            .send(envelope)
            .map_err(io)?;
        let status = resp.status().as_u16();
        let text =
            resp.body_mut().with_config().limit(MAX_REPLY_BYTES).lossy_utf8(true).read_to_string().map_err(io)?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let refusal = Refusal { status, fault: parse_fault(&text) };
        let denied = status == 401 || refusal.fault.as_deref().is_some_and(is_login_fault);
        if denied {
            let hint = if self.creds.is_some() {
                "the camera refused the user name or password (check them, and that the ONVIF user exists: many cameras keep ONVIF users apart from web users)"
            } else {
                "the camera wants a login: give --username and --password-file"
            };
            return Err(crate::err!(InvalidArgument, "{op} at {}: {hint}", redact_url(url)).with_source(refusal));
        }
        Err(crate::err!(Media, "{op} at {} was refused", redact_url(url)).with_source(refusal))
    }
}

/// Whether a fault is about the login: ONVIF's `ter:NotAuthorized` subcode, or the words
/// servers without it use ("Authentication failed", "WS-Security timestamp expired").
fn is_login_fault(fault: &str) -> bool {
    let f = fault.to_ascii_lowercase();
    ["notauthorized", "not authorized", "unauthorized", "authenticat", "ws-security", "usernametoken"]
        .iter()
        .any(|w| f.contains(w))
}

/// Wraps `header` and `body` in a SOAP 1.2 envelope.
pub fn envelope(header: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS_SOAP}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// The reason of a SOAP 1.2 or 1.1 fault in `text`: subcode and reason, e.g.
/// `ter:NotAuthorized: Sender not Authorized`. `None` if `text` holds no fault.
pub fn parse_fault(text: &str) -> Option<String> {
    let doc = xml::parse(text).ok()?;
    let fault = xml::child(xml::body(&doc).ok()?, "Fault")?;
    let code = xml::find(fault, "Subcode")
        .and_then(|s| xml::text_at(s, &["Value"]))
        .or_else(|| xml::text_at(fault, &["Code", "Value"]))
        .or_else(|| xml::text_at(fault, &["faultcode"]));
    let reason = xml::text_at(fault, &["Reason", "Text"]).or_else(|| xml::text_at(fault, &["faultstring"]));
    Some(match (code, reason) {
        (Some(c), Some(r)) => format!("{c}: {r}"),
        (Some(s), None) | (None, Some(s)) => s,
        (None, None) => "(no reason given)".to_owned(),
    })
}

/// A reply that parsed as HTTP but not as what `op` returns.
pub fn bad_reply(url: &str, op: &str, e: Malformed) -> Error {
    crate::err!(Media, "{op} at {}: the camera's reply cannot be read", redact_url(url)).with_source(e)
}

/// `url` without any `user:password@` part, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => xml::bounded(url, 80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn reads_faults_of_both_soap_versions() {
        let f12 = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">Sender not Authorized</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#;
        assert_eq!(parse_fault(f12).as_deref(), Some("ter:NotAuthorized: Sender not Authorized"));
        let f11 = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>bad</faultstring></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(parse_fault(f11).as_deref(), Some("s:Client: bad"));
        assert_eq!(parse_fault("<html>500</html>"), None);
        assert_eq!(parse_fault("not xml"), None);
    }

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(redact_url("http://admin:pw@10.0.0.2/onvif/device_service"), "http://10.0.0.2/onvif/device_service");
        assert_eq!(redact_url("http://10.0.0.2/x"), "http://10.0.0.2/x");
    }

    #[test]
    fn refuses_other_schemes_before_connecting() {
        let c = Client::new(None);
        let e = c.call("https://10.255.255.1/onvif/device_service", "a/GetX", "<x/>").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    proptest::proptest! {
        #![proptest_config(crate::onvif::testdata::config())]
        #[test]
        fn fault_parser_takes_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = parse_fault(&String::from_utf8_lossy(&bytes));
        }
    }
}
