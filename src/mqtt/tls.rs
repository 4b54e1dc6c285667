//! TLS to the broker (`[mqtt] tls = true`; only in builds with the cargo feature `tls`).
//!
//! The same rustls with ring as the archive's https (docs/design/archive.md): our own
//! `ClientConfig` handed to rumqttc (its provider-less feature), so no second crypto
//! library (aws-lc-rs) comes in. Trusted roots: the PEM certificates in `ca_file` (a LAN
//! broker's own CA) and nothing else, or without `ca_file` the Mozilla roots built into the
//! binary (webpki-roots; the system's store is not read). The broker's name is checked
//! against `host` (an address must be in the certificate's IP names).

use crate::config::MqttConfig;
use crate::error::Result;
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use std::sync::Arc;

/// The TLS transport for `cfg` (read when the client starts: a bad `ca_file` stops the
/// MQTT client, not recording).
pub(super) fn transport(cfg: &MqttConfig) -> Result<Transport> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs =
                CertificateDer::pem_file_iter(path).and_then(|certs| certs.collect::<Result<Vec<_>, _>>()).map_err(
                    |e| crate::err!(InvalidArgument, "mqtt.ca_file: cannot read {}", path.display()).with_source(e),
                )?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                crate::bail!(InvalidArgument, "mqtt.ca_file: {} holds no usable PEM certificate", path.display());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::err!(Internal, "mqtt: TLS set-up").with_source(e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ca_file: Option<&std::path::Path>) -> MqttConfig {
        MqttConfig {
            host: "broker.lan".into(),
            port: 8883,
            username: None,
            password_file: None,
            prefix: "edgenvr".into(),
            discovery_prefix: "homeassistant".into(),
            thumbnail_interval: None,
            tls: true,
            ca_file: ca_file.map(Into::into),
        }
    }

    /// A `ca_file` that is missing or holds no certificate is a clear error naming the key;
    /// without one the built-in roots serve.
    #[test]
    fn ca_file_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for p in [&missing, &empty] {
            let e = transport(&cfg(Some(p))).err().expect("an error").to_string();
            assert!(e.starts_with("mqtt.ca_file") && e.contains(p.to_str().unwrap()), "{e}");
        }
        assert!(matches!(transport(&cfg(None)), Ok(Transport::Tls(_))));
    }
}
