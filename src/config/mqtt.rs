//! `[mqtt]`: the broker events and state are told to (the MQTT client's settings). The password is never in the config:
//! `password_file` names a root-only file whose first line is read when the client starts.

use super::check::invalid;
use crate::error::Result;
use serde::Deserialize;
use std::path::PathBuf;

/// `[mqtt]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMqtt {
    host: String,
    port: Option<u16>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    prefix: Option<String>,
    discovery_prefix: Option<String>,
    thumbnail_interval: Option<String>,
    #[serde(default)]
    tls: bool,
    ca_file: Option<PathBuf>,
}

/// `[mqtt]`, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (default 1883).
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// File whose first line is the password (read at start, never logged).
    pub password_file: Option<PathBuf>,
    /// First level of every topic (default `edgenvr`).
    pub prefix: String,
    /// Home Assistant's discovery prefix (default `homeassistant`).
    pub discovery_prefix: String,
    /// How often each camera's latest keyframe is published as a JPEG for Home Assistant's
    /// camera entity (`thumbnail_interval`, default 60 s, at least 10 s; `"0s"`: never).
    pub thumbnail_interval: Option<std::time::Duration>,
    /// Whether to talk TLS to the broker (`tls`; needs the cargo feature `tls`).
    pub tls: bool,
    /// PEM file with the CA that signed the broker's certificate (`ca_file`: LAN brokers are
    /// mostly self-signed); absent with `tls`: the Mozilla roots built in (webpki-roots).
    pub ca_file: Option<PathBuf>,
}

/// A topic level we build: no wildcards, separators or control characters.
fn topic_level_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl MqttConfig {
    pub(super) fn from_raw(raw: RawMqtt) -> Result<MqttConfig> {
        if raw.host.is_empty() || raw.host.len() > 253 || raw.host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/')
        {
            return Err(invalid("mqtt.host", format!("{:?} is not a host name or address", raw.host)));
        }
        if raw.tls && !cfg!(feature = "tls") {
            return Err(invalid(
                "mqtt.tls",
                "this build has no TLS (built without the cargo feature `tls`); use a broker on the LAN, a TLS tunnel (stunnel), or a build with `--features tls`",
            ));
        }
        if let Some(p) = &raw.ca_file {
            if !raw.tls {
                return Err(invalid("mqtt.ca_file", "goes with mqtt.tls = true"));
            }
            if !p.is_absolute() {
                return Err(invalid("mqtt.ca_file", "must be an absolute path"));
            }
        }
        if raw.password_file.is_some() && raw.username.is_none() {
            return Err(invalid("mqtt.password_file", "goes with mqtt.username"));
        }
        if let Some(p) = &raw.password_file {
            if !p.is_absolute() {
                return Err(invalid("mqtt.password_file", "must be an absolute path"));
            }
        }
        let prefix = raw.prefix.unwrap_or_else(|| "edgenvr".into());
        if !topic_level_ok(&prefix) {
            return Err(invalid("mqtt.prefix", "must be 1-64 characters of A-Z a-z 0-9 - _ ."));
        }
        let discovery_prefix = raw.discovery_prefix.unwrap_or_else(|| "homeassistant".into());
        if !topic_level_ok(&discovery_prefix) {
            return Err(invalid("mqtt.discovery_prefix", "must be 1-64 characters of A-Z a-z 0-9 - _ ."));
        }
        let thumbnail_interval = match raw.thumbnail_interval.as_deref() {
            None => Some(std::time::Duration::from_secs(60)),
            // "0s" (any zero) means never; `parse_duration` refuses zero durations elsewhere.
            Some(s) if s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse::<f64>() == Ok(0.0) => None,
            Some(s) => {
                let d = super::units::parse_duration(s).map_err(|why| invalid("mqtt.thumbnail_interval", why))?;
                if d < std::time::Duration::from_secs(10) {
                    return Err(invalid("mqtt.thumbnail_interval", "must be at least 10s (or 0s: never)"));
                } else {
                    Some(d)
                }
            }
        };
        Ok(MqttConfig {
            thumbnail_interval,
            host: raw.host,
            port: raw.port.unwrap_or(if raw.tls { 8883 } else { 1883 }),
            username: raw.username,
            password_file: raw.password_file,
            prefix,
            discovery_prefix,
            tls: raw.tls,
            ca_file: raw.ca_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "[[storage]]\npath = \"/x\"\n";

    #[test]
    fn mqtt_table_parses_with_defaults_and_errors_name_the_key() {
        let c = Config::parse(&format!("[server]\nbox_id = \"shed\"\n[mqtt]\nhost = \"10.0.0.2\"\n{BASE}")).unwrap();
        let m = c.mqtt.unwrap();
        assert_eq!((m.port, m.prefix.as_str(), m.discovery_prefix.as_str()), (1883, "edgenvr", "homeassistant"));
        assert_eq!(c.server.box_id, "shed");
        assert!(Config::parse(BASE).unwrap().mqtt.is_none());
        assert_eq!(m.thumbnail_interval, Some(std::time::Duration::from_secs(60)));
        for never in ["0s", "0", "0m"] {
            let c = Config::parse(&format!("[mqtt]\nhost = \"h\"\nthumbnail_interval = \"{never}\"\n{BASE}")).unwrap();
            assert_eq!(c.mqtt.unwrap().thumbnail_interval, None, "{never}: never");
        }
        for (text, key) in [
            ("[mqtt]\nhost = \"a b\"\n", "mqtt.host"),
            ("[mqtt]\nhost = \"h\"\nprefix = \"a/#\"\n", "mqtt.prefix"),
            ("[mqtt]\nhost = \"h\"\npassword_file = \"/p\"\n", "mqtt.password_file"),
            ("[mqtt]\nhost = \"h\"\nusername = \"u\"\npassword_file = \"p\"\n", "mqtt.password_file"),
            ("[mqtt]\nhost = \"h\"\nca_file = \"/ca.pem\"\n", "mqtt.ca_file"),
            ("[server]\nbox_id = \"a/b\"\n", "server.box_id"),
            ("[mqtt]\nhost = \"h\"\nthumbnail_interval = \"1s\"\n", "mqtt.thumbnail_interval"),
        ] {
            let e = Config::parse(&format!("{text}{BASE}")).unwrap_err().to_string();
            assert!(e.starts_with(key), "{key}: {e}");
        }
    }

    /// `tls = true` is refused, naming the feature, by a build without it; with it, the port
    /// defaults to 8883 and `ca_file` must be absolute.
    #[test]
    fn mqtt_tls_needs_the_feature_and_defaults_to_port_8883() {
        let parse = |t: &str| Config::parse(&format!("[mqtt]\nhost = \"h\"\ntls = true\n{t}{BASE}"));
        if cfg!(feature = "tls") {
            let m = parse("ca_file = \"/etc/edgenvr/ca.pem\"\n").unwrap().mqtt.unwrap();
            assert_eq!((m.tls, m.port, m.ca_file.unwrap().to_str()), (true, 8883, Some("/etc/edgenvr/ca.pem")));
            assert_eq!(parse("port = 9000\n").unwrap().mqtt.unwrap().port, 9000);
            let e = parse("ca_file = \"ca.pem\"\n").unwrap_err().to_string();
            assert!(e.starts_with("mqtt.ca_file"), "{e}");
        } else {
            let e = parse("").unwrap_err().to_string();
            assert!(e.starts_with("mqtt.tls") && e.contains("feature `tls`"), "{e}");
        }
    }
}
