//! `[[archive]]` targets: where footage goes off the box, what is sent, how fast, and the
//! login read from a root-only file. The config module converts durations and sizes; this
//! module checks the rest (`docs/design/archive.md`).

use crate::err;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most `[[archive]]` targets a config may have: one thread serves them in turn.
pub const MAX_TARGETS: usize = 4;

/// `[[archive]]` as written in the file (the config module owns the TOML).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawArchive {
    /// `endpoint`.
    pub endpoint: Option<String>,
    /// `bucket`.
    pub bucket: Option<String>,
    /// `prefix`.
    #[serde(default)]
    pub prefix: String,
    /// `region`.
    pub region: Option<String>,
    /// `credentials_file`.
    pub credentials_file: Option<PathBuf>,
    /// `send`.
    pub send: Option<String>,
    /// `delay`.
    pub delay: Option<String>,
    /// `max_rate`.
    pub max_rate: Option<String>,
    /// `max_backlog_age`.
    pub max_backlog_age: Option<String>,
    /// `manifest_interval`.
    pub manifest_interval: Option<String>,
}

/// The durations and sizes of one `[[archive]]`, already converted by the config module.
#[derive(Clone, Copy, Debug)]
pub struct Units {
    /// `delay` (default 1m).
    pub delay: Duration,
    /// `max_rate` in bytes per second (`None`: unlimited).
    pub max_rate: Option<u64>,
    /// `max_backlog_age` (default 1h).
    pub max_backlog_age: Duration,
    /// `manifest_interval` (default 10m).
    pub manifest_interval: Duration,
}

/// What a target receives (`send`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Send {
    /// Every sealed chunk.
    All,
    /// Only chunks holding event footage, pre and post capture included
    /// (`docs/design/events.md`).
    Events,
}

impl Send {
    /// As written in the config, for status.
    pub fn as_str(self) -> &'static str {
        match self {
            Send::All => "all",
            Send::Events => "events",
        }
    }
}

/// One validated `[[archive]]` target.
#[derive(Clone, Debug)]
pub struct ArchiveConfig {
    /// `http://host:port` or `https://...` (https needs the `tls` cargo feature).
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Signing region.
    pub region: String,
    /// The two-line login file (access key, secret); read when the uploader starts.
    pub credentials_file: PathBuf,
    /// What is sent.
    pub send: Send,
    /// Durations and rate.
    pub units: Units,
}

fn invalid(i: usize, k: &str, why: impl std::fmt::Display) -> Error {
    err!(InvalidArgument, "archive[{i}].{k}: {why}")
}

impl ArchiveConfig {
    /// Checks one raw `[[archive]]` (index `i` in the file, for messages).
    pub fn from_raw(i: usize, raw: RawArchive, units: Units) -> Result<ArchiveConfig> {
        let endpoint = raw.endpoint.ok_or_else(|| invalid(i, "endpoint", "is required (http://host:port)"))?;
        let url =
            url::Url::parse(&endpoint).map_err(|_| invalid(i, "endpoint", "is not a URL like http://host:9000"))?;
        match url.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => return Err(invalid(i, "endpoint", "https needs edgenvr built with the `tls` feature")),
            _ => return Err(invalid(i, "endpoint", "must start with http:// or https://")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(i, "endpoint", "must not hold a login; use credentials_file"));
        }
        if url.host_str().is_none() || url.query().is_some() || url.path() != "/" {
            return Err(invalid(i, "endpoint", "must be scheme://host[:port] only"));
        }
        let bucket = raw.bucket.ok_or_else(|| invalid(i, "bucket", "is required"))?;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(invalid(i, "bucket", "must be 3-63 characters of a-z 0-9 - ."));
        }
        let prefix = raw.prefix.trim_matches('/').to_owned();
        let prefix_ok = prefix.split('/').all(|p| {
            prefix.is_empty()
                || (!p.is_empty() && p != "." && p != ".." && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'))
        });
        if !prefix_ok || prefix.len() > 256 {
            return Err(invalid(i, "prefix", "must be printable path segments (no empty, . or .. parts)"));
        }
        let region = raw.region.unwrap_or_else(|| "us-east-1".into());
        let credentials_file =
            raw.credentials_file.ok_or_else(|| invalid(i, "credentials_file", "is required (access key, secret)"))?;
        let send = match raw.send.as_deref().unwrap_or("all") {
            "all" => Send::All,
            "events" => Send::Events,
            o => return Err(invalid(i, "send", format!("{o:?} must be \"all\" or \"events\""))),
        };
        if units.max_rate.is_some_and(|r| r < 16 * 1024) {
            return Err(invalid(i, "max_rate", "must be at least 16KiB (bytes per second)"));
        }
        Ok(ArchiveConfig { endpoint, bucket, prefix, region, credentials_file, send, units })
    }

    /// Where this target's objects go, for status and the index: never holds a secret.
    pub fn location(&self, box_id: &str) -> String {
        format!("{}/{}/{}", self.endpoint.trim_end_matches('/'), self.bucket, self.object_prefix(box_id))
    }

    /// Whether `location` (as [`ArchiveConfig::location`] made it, for any box) is in this
    /// target: a restored index names the box it came from, not this one.
    pub fn holds(&self, location: &str) -> bool {
        let root = self.location("");
        location.strip_prefix(root.as_str()).is_some_and(|b| !b.is_empty() && !b.contains('/'))
    }

    /// The key prefix of this box's objects: `prefix/box_id` (or `box_id`).
    pub fn object_prefix(&self, box_id: &str) -> String {
        if self.prefix.is_empty() {
            box_id.to_owned()
        } else {
            format!("{}/{box_id}", self.prefix)
        }
    }
}

/// An access key and secret. Debug never shows the secret.
#[derive(Clone)]
pub struct Login {
    /// Access key id (not secret, but kept out of logs too).
    pub access_key: String,
    /// Secret key.
    pub secret: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Login(<redacted>)")
    }
}

/// Reads a credentials file: two lines, access key then secret. The file must belong to
/// the user running edgenvr and be unreadable to others (mode 0600 or 0400), like an SSH key.
pub fn read_login(path: &Path) -> Result<Login> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("credentials_file {shown}"), e))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.mode() & 0o077 != 0 || meta.uid() != uid {
        return Err(err!(
            InvalidArgument,
            "credentials_file {shown} must belong to this user and be readable by it only (chmod 600)"
        ));
    }
    if meta.len() > 4096 {
        return Err(err!(InvalidArgument, "credentials_file {shown} is too long for two lines"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("credentials_file {shown}"), e))?;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match (lines.next(), lines.next(), lines.next()) {
        (Some(k), Some(s), None) => Ok(Login { access_key: k.to_owned(), secret: s.to_owned() }),
        _ => Err(err!(InvalidArgument, "credentials_file {shown} must hold two lines: access key, secret")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Units {
        Units {
            delay: Duration::from_secs(60),
            max_rate: None,
            max_backlog_age: Duration::from_secs(3600),
            manifest_interval: Duration::from_secs(600),
        }
    }

    fn raw(endpoint: &str) -> RawArchive {
        RawArchive {
            endpoint: Some(endpoint.into()),
            bucket: Some("nvr".into()),
            prefix: "/site/".into(),
            credentials_file: Some("/etc/edgenvr/s3".into()),
            ..Default::default()
        }
    }

    #[test]
    fn checks_endpoint_and_names_location() {
        let a = ArchiveConfig::from_raw(0, raw("http://127.0.0.1:8333"), units()).unwrap();
        assert_eq!(a.prefix, "site");
        assert_eq!(a.location("box1"), "http://127.0.0.1:8333/nvr/site/box1");
        assert!(a.holds("http://127.0.0.1:8333/nvr/site/other-box"));
        assert!(!a.holds("http://127.0.0.1:8333/nvr/site/"));
        assert!(!a.holds("http://127.0.0.1:8333/nvr/site2/box1"));
        assert!(!a.holds("http://127.0.0.1:8333/nvr/site/x/box1"));
        for bad in ["http://k:s@host", "ftp://host", "http://host/path", "host:9000"] {
            let e = ArchiveConfig::from_raw(3, raw(bad), units()).unwrap_err().to_string();
            assert!(e.starts_with("archive[3].endpoint: "), "{bad}: {e}");
            assert!(!e.contains(":s@"), "{e}");
        }
        let e = ArchiveConfig::from_raw(0, RawArchive { send: Some("events".into()), ..raw("http://h") }, units());
        assert_eq!(e.unwrap().send, Send::Events);
        let e = ArchiveConfig::from_raw(1, RawArchive { send: Some("motion".into()), ..raw("http://h") }, units());
        assert!(e.unwrap_err().to_string().starts_with("archive[1].send: \"motion\""));
    }

    #[test]
    fn login_file_must_be_private_and_debug_hides_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("creds");
        std::fs::write(&p, "AKID\nverysecret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_login(&p).unwrap_err().to_string().contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = read_login(&p).unwrap();
        assert_eq!((l.access_key.as_str(), l.secret.as_str()), ("AKID", "verysecret"));
        assert!(!format!("{l:?}").contains("verysecret"));
    }
}
