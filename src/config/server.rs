//! `[server]`: where the API listens and who may use it (`docs/design/http.md`, "Access").
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:8080"
//! token_file = "/var/lib/edgenvr/api-token"    # admin token; made on first start
//! viewer_tokens = ["a-long-random-viewer-token", { token = "...", cameras = ["door"] }]
//! allowed_hosts = ["nvr.example.org"]          # names besides IPs, localhost, HOSTNAME(.local)
//! ```
//!
//! Secrets are kept as [`Secret`], whose `Debug` prints `***`.

use super::check::{absolute, invalid};
use crate::error::Result;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Shortest token accepted: long enough that guessing is hopeless.
pub const MIN_TOKEN_LEN: usize = 16;
/// Most viewer tokens.
pub const MAX_VIEWER_TOKENS: usize = 32;
/// Most `allowed_hosts` entries.
pub const MAX_ALLOWED_HOSTS: usize = 32;

/// A secret string: `Debug` prints `***`, so no log or panic message shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for comparing and sending.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A token that may only read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewerToken {
    /// The token.
    pub token: Secret,
    /// The cameras it may see (`None`: all).
    pub cameras: Option<Vec<String>>,
}

/// `[server]` settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// The admin token, when given in the config.
    pub token: Option<Secret>,
    /// A file holding the admin token, made with a random one on first start if missing.
    pub token_file: Option<PathBuf>,
    /// Tokens that may only read (GET), some of them only some cameras.
    pub viewer_tokens: Vec<ViewerToken>,
    /// Host names the API answers to besides IP literals, `localhost` and the box's own
    /// name (DNS rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Live viewers accepted per camera at once (`max_viewers`, 0 turns the live view off);
    /// each costs up to 1 MiB of memory (the live hub's per-viewer queue).
    pub max_viewers: usize,
    /// The box's name in MQTT topics, Home Assistant ids and archive buckets (`box_id`;
    /// default: the host name): several boxes share a bucket under their own prefixes
    /// (`docs/design/archive.md`).
    pub box_id: String,
    /// `state_file`: where the camera list changed over the API is kept (absolute; `None`:
    /// `cameras.json` next to the index, see `Config::state_file`).
    pub state_file: Option<PathBuf>,
}

/// Most live viewers per camera a config may allow.
pub const MAX_VIEWERS_LIMIT: usize = 64;
/// The default `[server] max_viewers`.
pub const DEFAULT_MAX_VIEWERS: usize = 8;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    listen: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default)]
    viewer_tokens: Vec<RawViewer>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    max_viewers: Option<usize>,
    box_id: Option<String>,
    state_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawViewer {
    Token(String),
    Scoped(RawScopedViewer),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScopedViewer {
    token: String,
    cameras: Vec<String>,
}

fn check_token(key: &str, t: &str) -> Result<()> {
    if t.len() < MIN_TOKEN_LEN {
        return Err(invalid(key, format!("is shorter than {MIN_TOKEN_LEN} characters; use a long random token")));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(key, "may hold only printable ASCII without spaces"));
    }
    Ok(())
}

/// Whether `h` can be a host name in `allowed_hosts`.
fn valid_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && !h.starts_with('.')
}

impl ServerConfig {
    /// Checks `[server]`; `cameras` are the configured cameras' ids (viewer tokens name them).
    pub(super) fn from_raw(raw: RawServer, cameras: &[&str]) -> Result<ServerConfig> {
        let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| invalid("server.listen", format!("{listen:?} is not an address like \"127.0.0.1:8080\"")))?;
        if let Some(t) = &raw.token {
            check_token("server.token", t)?;
        }
        if raw.token.is_some() && raw.token_file.is_some() {
            return Err(invalid("server.token_file", "set token or token_file, not both"));
        }
        if raw.token_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(invalid("server.token_file", "is empty"));
        }
        if !raw.viewer_tokens.is_empty() && raw.token.is_none() && raw.token_file.is_none() {
            return Err(invalid(
                "server.viewer_tokens",
                "need an admin token too ([server] token or token_file): without one everyone is admin",
            ));
        }
        if raw.viewer_tokens.len() > MAX_VIEWER_TOKENS {
            return Err(invalid("server.viewer_tokens", format!("at most {MAX_VIEWER_TOKENS} are supported")));
        }
        let mut viewer_tokens: Vec<ViewerToken> = Vec::new();
        for (i, v) in raw.viewer_tokens.into_iter().enumerate() {
            let key = format!("server.viewer_tokens[{i}]");
            let (token, scope) = match v {
                RawViewer::Token(t) => (t, None),
                RawViewer::Scoped(s) => (s.token, Some(s.cameras)),
            };
            check_token(&key, &token)?;
            if raw.token.as_deref() == Some(token.as_str()) || viewer_tokens.iter().any(|o| o.token.0 == token) {
                return Err(invalid(&key, "is used twice (each token must be different)"));
            }
            if let Some(cams) = &scope {
                if cams.is_empty() {
                    return Err(invalid(&format!("{key}.cameras"), "is empty; leave it out to allow every camera"));
                }
                if let Some(c) = cams.iter().find(|c| !cameras.contains(&c.as_str())) {
                    return Err(invalid(&format!("{key}.cameras"), format!("there is no camera {c:?}")));
                }
            }
            viewer_tokens.push(ViewerToken { token: Secret(token), cameras: scope });
        }
        if raw.allowed_hosts.len() > MAX_ALLOWED_HOSTS {
            return Err(invalid("server.allowed_hosts", format!("at most {MAX_ALLOWED_HOSTS} are supported")));
        }
        for (i, h) in raw.allowed_hosts.iter().enumerate() {
            if !valid_host_name(h) {
                return Err(invalid(&format!("server.allowed_hosts[{i}]"), format!("{h:?} is not a host name")));
            }
        }
        let max_viewers = raw.max_viewers.unwrap_or(DEFAULT_MAX_VIEWERS);
        if max_viewers > MAX_VIEWERS_LIMIT {
            return Err(invalid("server.max_viewers", format!("{max_viewers} is more than {MAX_VIEWERS_LIMIT}")));
        }
        Ok(ServerConfig {
            state_file: raw.state_file.map(|p| check_state_file(&p)).transpose()?,
            box_id: box_id(raw.box_id.as_deref())?,
            max_viewers,
            listen,
            token: raw.token.map(Secret),
            token_file: raw.token_file.map(|p| absolute(&p)),
            viewer_tokens,
            allowed_hosts: raw.allowed_hosts,
        })
    }
}

/// Whether `id` can name the box in topics and ids: 1-64 of `A-Z a-z 0-9 - _`.
fn valid_box_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `[server] state_file`: an absolute path naming a file (a relative one would follow the
/// service's working directory). Whether its directory is writable is checked where it is
/// used (`edgenvr check`, and every save names the path in its error).
fn check_state_file(p: &Path) -> Result<PathBuf> {
    let s = p.to_string_lossy();
    if !p.is_absolute() || s.ends_with('/') || p.file_name().is_none() {
        return Err(invalid("server.state_file", format!("{s:?} must be an absolute path to a file")));
    }
    Ok(p.to_owned())
}

/// `[server] box_id`: as written, else the host name (when it is a valid id), else
/// `edgenvr`.
fn box_id(raw: Option<&str>) -> Result<String> {
    match raw {
        Some(id) if valid_box_id(id) => Ok(id.to_owned()),
        Some(id) => Err(invalid("server.box_id", format!("{id:?} must be 1-64 characters of A-Z a-z 0-9 - _"))),
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let host = host.trim();
            Ok(if valid_box_id(host) { host.to_owned() } else { "edgenvr".to_owned() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use crate::error::ErrorKind;

    const BASE: &str = "[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"door\"\nsource = \"testsrc\"\n";

    fn parse(server: &str) -> crate::error::Result<Config> {
        Config::parse(&format!("[server]\n{server}\n{BASE}"))
    }

    #[test]
    fn state_file_is_absolute_and_defaults_next_to_the_index() {
        let p = |s: &str| std::path::PathBuf::from(s);
        assert_eq!(parse("").unwrap().state_file(), p("/x/cameras.json"));
        assert_eq!(parse("state_file = \"/etc-rw/cams.json\"").unwrap().state_file(), p("/etc-rw/cams.json"));
        for bad in ["cams.json", "/var/lib/edgenvr/", ""] {
            let e = parse(&format!("state_file = \"{bad}\"")).unwrap_err().to_string();
            assert!(e.starts_with("server.state_file: "), "{bad}: {e}");
        }
    }

    #[test]
    fn tokens_token_file_viewers_and_hosts() {
        let c = parse(
            "listen = \"0.0.0.0:8080\"\ntoken_file = \"/var/lib/edgenvr/api-token\"\n\
             viewer_tokens = [\"viewer-token-0123456789\", { token = \"door-viewer-token-0123\", cameras = [\"door\"] }]\n\
             allowed_hosts = [\"nvr.example.org\"]",
        )
        .unwrap();
        let s = &c.server;
        assert_eq!(s.token, None);
        assert_eq!(s.token_file.as_deref(), Some(std::path::Path::new("/var/lib/edgenvr/api-token")));
        assert_eq!(s.viewer_tokens.len(), 2);
        assert_eq!(s.viewer_tokens[0].cameras, None);
        assert_eq!(s.viewer_tokens[1].cameras.as_deref(), Some(&["door".to_owned()][..]));
        assert_eq!(s.viewer_tokens[1].token.expose(), "door-viewer-token-0123");
        assert_eq!(s.allowed_hosts, ["nvr.example.org"]);
    }

    #[test]
    fn errors_name_the_key() {
        let t = "token = \"admin-token-0123456789\"\n";
        for (server, key) in [
            ("token = \"short\"", "server.token"),
            ("token = \"admin-token-0123456789\"\ntoken_file = \"/t\"", "server.token_file"),
            ("token_file = \"\"", "server.token_file"),
            ("viewer_tokens = [\"viewer-token-0123456789\"]", "server.viewer_tokens"),
            (&format!("{t}viewer_tokens = [\"short\"]"), "server.viewer_tokens[0]"),
            (&format!("{t}viewer_tokens = [\"admin-token-0123456789\"]"), "server.viewer_tokens[0]"),
            (
                &format!("{t}viewer_tokens = [\"viewer-token-0123456789\", \"viewer-token-0123456789\"]"),
                "server.viewer_tokens[1]",
            ),
            (
                &format!("{t}viewer_tokens = [{{ token = \"viewer-token-0123456789\", cameras = [\"yard\"] }}]"),
                "server.viewer_tokens[0].cameras",
            ),
            (
                &format!("{t}viewer_tokens = [{{ token = \"viewer-token-0123456789\", cameras = [] }}]"),
                "server.viewer_tokens[0].cameras",
            ),
            ("allowed_hosts = [\"evil example\"]", "server.allowed_hosts[0]"),
            ("listen = \"localhost\"", "server.listen"),
        ] {
            let e = parse(server).expect_err(server);
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.to_string().contains(key), "{server:?}: {e}");
        }
        // A malformed viewer entry is refused by the parser, pointing at the key.
        let e = parse(&format!("{t}viewer_tokens = [{{ tokn = \"x\" }}]")).unwrap_err();
        assert!(e.to_string().contains("viewer_tokens"), "{e}");
    }

    /// Regression: `Config`'s derived Debug printed the token and camera passwords.
    #[test]
    fn debug_shows_no_secret() {
        let c = Config::parse(
            "[server]\ntoken = \"admin-secret-0123456789\"\n\
             viewer_tokens = [\"viewer-secret-0123456789\"]\n\
             [[storage]]\npath = \"/x\"\n\
             [[camera]]\nid = \"door\"\nurl = \"rtsp://admin:url-secret@cam/s?user=admin&password=query-secret\"\n\
             password = \"key-secret\"\n",
        )
        .unwrap();
        let d = format!("{c:?} {:?}", c.server);
        for secret in ["admin-secret", "viewer-secret", "url-secret", "query-secret", "key-secret"] {
            assert!(!d.contains(secret), "{secret} in {d}");
        }
        assert!(d.contains("***"), "{d}");
    }
}
