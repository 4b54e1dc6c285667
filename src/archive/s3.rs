//! A small blocking S3 client: rusty-s3 signs (presigned URLs, query-string auth, so the
//! body is streamed unsigned), ureq sends. Bodies are never held whole: a PUT reads its
//! body as it goes, a GET hands back a reader. Errors name the operation, the key and the
//! store's error code, never a URL (it holds a signature) nor the secret.

use super::settings::{ArchiveConfig, Login};
use crate::err;
use crate::error::{Error, ErrorKind, Result};
use rusty_s3::{Bucket, S3Action, UrlStyle};
use std::io::Read;
use std::time::Duration;

/// How long a signed URL stays valid: longer than any one request.
const SIGNED_FOR: Duration = Duration::from_secs(3600);
/// Connection timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the store may take to answer once the body is sent, and between body reads.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// Most bytes of an error body read (for its `<Code>`).
const MAX_ERROR_BODY: u64 = 4096;
/// Most bytes of a listing page (1000 keys of a few hundred bytes each).
const MAX_LIST_BODY: u64 = 4 << 20;

/// One bucket with a login.
pub struct Store {
    bucket: Bucket,
    creds: rusty_s3::Credentials,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.bucket.name())
    }
}

/// An object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
}

impl Store {
    /// A client for `cfg`'s bucket (path-style URLs, which every S3-compatible store takes).
    pub fn new(cfg: &ArchiveConfig, login: &Login) -> Result<Store> {
        let url =
            url::Url::parse(&cfg.endpoint).map_err(|e| err!(InvalidArgument, "archive endpoint").with_source(e))?;
        let bucket = Bucket::new(url, UrlStyle::Path, cfg.bucket.clone(), cfg.region.clone())
            .map_err(|e| err!(InvalidArgument, "archive bucket {}", cfg.bucket).with_source(e))?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("edgenvr/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(ANSWER_TIMEOUT))
            .input_buffer_size(64 * 1024)
            .output_buffer_size(64 * 1024)
            .max_idle_connections(2)
            .max_idle_connections_per_host(2)
            .build();
        let creds = rusty_s3::Credentials::new(login.access_key.clone(), login.secret.clone());
        Ok(Store { bucket, creds, agent: ureq::Agent::new_with_config(config) })
    }

    /// PUTs `len` bytes read from `body` as `key`; returns the ETag the store answered
    /// (quotes removed). `send_time` bounds the whole upload.
    pub fn put(&self, key: &str, body: &mut dyn Read, len: u64, send_time: Duration) -> Result<String> {
        let url = self.bucket.put_object(Some(&self.creds), key).sign(SIGNED_FOR);
        let resp = self
            .agent
            .put(url.as_str())
            .config()
            .timeout_send_body(Some(send_time))
            .build()
            .header("content-length", len.to_string())
            .header("content-type", "application/octet-stream")
            .send(ureq::SendBody::from_reader(body))
            .map_err(|e| transport("PUT", key, e))?;
        let resp = check("PUT", key, resp)?;
        let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or("").trim_matches('"').to_owned();
        Ok(etag)
    }

    /// GETs `key` (at most `max_len` bytes); the body is read as the caller reads.
    pub fn get(&self, key: &str, max_len: u64) -> Result<impl Read> {
        let url = self.bucket.get_object(Some(&self.creds), key).sign(SIGNED_FOR);
        let resp = self
            .agent
            .get(url.as_str())
            .config()
            .timeout_recv_body(None)
            .build()
            .call()
            .map_err(|e| transport("GET", key, e))?;
        let resp = check("GET", key, resp)?;
        Ok(resp.into_body().into_with_config().limit(max_len).reader())
    }

    /// One page of the keys under `prefix`, after `token` (from the previous page).
    pub fn list(&self, prefix: &str, token: Option<&str>) -> Result<(Vec<Listed>, Option<String>)> {
        let mut action = self.bucket.list_objects_v2(Some(&self.creds));
        action.with_prefix(prefix);
        if let Some(t) = token {
            action.with_continuation_token(t);
        }
        let url = action.sign(SIGNED_FOR);
        let resp = self.agent.get(url.as_str()).call().map_err(|e| transport("LIST", prefix, e))?;
        let resp = check("LIST", prefix, resp)?;
        let text = resp
            .into_body()
            .into_with_config()
            .limit(MAX_LIST_BODY)
            .read_to_string()
            .map_err(|e| transport("LIST", prefix, e))?;
        let page = rusty_s3::actions::ListObjectsV2::parse_response(&text)
            .map_err(|e| err!(Io, "LIST {prefix}: the store's answer does not parse").with_source(e))?;
        let items = page.contents.into_iter().map(|c| Listed { key: c.key, size: c.size }).collect();
        Ok((items, page.next_continuation_token))
    }
}

/// Maps a transport failure (no answer) to an error that names no URL.
fn transport(op: &str, key: &str, e: ureq::Error) -> Error {
    let what = match e {
        ureq::Error::Io(io) => return Error::io(format!("{op} {key}: the store does not answer"), io),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection refused or failed".to_owned(),
        ureq::Error::BodyExceedsLimit(n) => format!("answer longer than {n} bytes"),
        _ => "HTTP error".to_owned(),
    };
    err!(Io, "{op} {key}: the store does not answer: {what}")
}

/// Passes a 2xx answer; turns any other into an error with the store's code and message.
fn check(op: &str, key: &str, resp: ureq::http::Response<ureq::Body>) -> Result<ureq::http::Response<ureq::Body>> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let body = resp.into_body().into_with_config().limit(MAX_ERROR_BODY).read_to_string().unwrap_or_default();
    let tag = |t: &str| -> String {
        let open = format!("<{t}>");
        body.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&format!("</{t}>")))
            .map(|(v, _)| v.chars().filter(|c| !c.is_control()).take(200).collect())
            .unwrap_or_default()
    };
    let (code, message) = (tag("Code"), tag("Message"));
    let kind = match status {
        // A refused login or signature: the configuration must change.
        401 | 403 => ErrorKind::InvalidArgument,
        404 => ErrorKind::NotFound,
        _ => ErrorKind::Io,
    };
    let detail = match (code.is_empty(), message.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!(" {code}"),
        (false, false) => format!(" {code}: {message}"),
    };
    Err(Error::new(kind, format!("{op} {key}: the store answered HTTP {status}{detail}")))
}
