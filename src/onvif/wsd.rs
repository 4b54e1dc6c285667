//! WS-Discovery messages (the 2005/04 version ONVIF specifies): the Probe edgenvr sends and
//! the ProbeMatches cameras answer with. Sockets and timing are in `discovery`; this module
//! only builds and parses bytes.

use crate::onvif::xml::{self, malformed, Malformed};

/// `dn:NetworkVideoTransmitter`: what ONVIF cameras (Profile S) announce themselves as.
pub const TYPE_NVT: (&str, &str) = ("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter");
/// `tds:Device`: what some cameras (and NVRs) answer to instead.
pub const TYPE_DEVICE: (&str, &str) = ("http://www.onvif.org/ver10/device/wsdl", "Device");

/// Most ProbeMatch entries read from one datagram (one device sends one; a relay a few).
pub const MAX_MATCHES_PER_REPLY: usize = 16;
/// Most XAddrs kept per device (cameras send 1-3: one per address family and interface).
pub const MAX_XADDRS: usize = 8;
/// Most scopes kept per device (cameras send 5-15).
pub const MAX_SCOPES: usize = 32;
/// Most types kept per device.
pub const MAX_TYPES: usize = 8;

/// One device in a ProbeMatches reply, as sent (bounded as documented on the constants).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeMatch {
    /// The endpoint reference (`urn:uuid:...`): the device's stable identity.
    pub endpoint: String,
    /// Qualified type names as sent (`dn:NetworkVideoTransmitter`).
    pub types: Vec<String>,
    /// Scope URIs (`onvif://www.onvif.org/name/Front%20Door`).
    pub scopes: Vec<String>,
    /// Device service addresses (`http://10.0.0.5/onvif/device_service`), http(s) only.
    pub xaddrs: Vec<String>,
}

/// A random (version 4) UUID URN for a message id.
pub fn new_message_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        b[..8].copy_from_slice(&crate::time::now_us().to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!("urn:uuid:{}-{}-{}-{}-{}", h(0..4), h(4..6), h(6..8), h(8..10), h(10..16))
}

/// A Probe for devices of `type_` (namespace, local name), with `message_id`.
pub fn probe(message_id: &str, type_: (&str, &str)) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
            r#"xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:t="{ns}">"#,
            r#"<s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>"#,
            r#"<a:MessageID>{id}</a:MessageID><a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"#,
            r#"<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>"#,
            r#"<s:Body><d:Probe><d:Types>t:{local}</d:Types></d:Probe></s:Body></s:Envelope>"#
        ),
        ns = type_.0,
        local = type_.1,
        id = message_id
    )
}

/// Parses a ProbeMatches datagram. Entries without an endpoint or an XAddr are dropped
/// (nothing could be asked of them).
pub fn parse_probe_matches(text: &str) -> Result<Vec<ProbeMatch>, Malformed> {
    let doc = xml::parse(text)?;
    let pm = xml::child(xml::body(&doc)?, "ProbeMatches").ok_or_else(|| malformed("not a ProbeMatches message"))?;
    let mut out = Vec::new();
    for m in xml::children(pm, "ProbeMatch").take(MAX_MATCHES_PER_REPLY) {
        let list = |name: &str, max: usize| -> Vec<String> {
            let Some(n) = xml::child(m, name) else { return Vec::new() };
            let t = n.text().unwrap_or("");
            let mut v: Vec<String> = Vec::new();
            for w in t.split_ascii_whitespace() {
                if v.len() == max {
                    break;
                }
                let w = xml::bounded(w, xml::MAX_TEXT);
                if !v.contains(&w) {
                    v.push(w);
                }
            }
            v
        };
        let xaddrs: Vec<String> = list("XAddrs", MAX_XADDRS * 4)
            .into_iter()
            .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
            .take(MAX_XADDRS)
            .collect();
        let endpoint = xml::text_at(m, &["EndpointReference", "Address"]).or_else(|| xaddrs.first().cloned());
        let Some(endpoint) = endpoint else { continue };
        if xaddrs.is_empty() {
            continue;
        }
        out.push(ProbeMatch { endpoint, types: list("Types", MAX_TYPES), scopes: list("Scopes", MAX_SCOPES), xaddrs });
    }
    Ok(out)
}

/// The value of the ONVIF scope `onvif://www.onvif.org/{key}/{value}`, percent-decoded
/// (`name`, `hardware`, `location`). The first such scope wins.
pub fn scope_value(scopes: &[String], key: &str) -> Option<String> {
    let prefix = format!("onvif://www.onvif.org/{key}/");
    scopes
        .iter()
        .find_map(|s| s.strip_prefix(&prefix))
        .map(|v| crate::text::percent_decode(v, false).trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onvif::testdata::mutated;

    /// Shaped like what an Axis camera sends (one match, IPv4 and IPv6 XAddrs).
    pub(crate) const MATCHES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><SOAP-ENV:Header><wsa:MessageID>urn:uuid:6c7b1b4e-0000-4000-8000-00408c000001</wsa:MessageID><wsa:RelatesTo>urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:RelatesTo><wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>urn:uuid:a1b2c3d4-0000-4000-8000-00408c000001</wsa:Address></wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming onvif://www.onvif.org/name/Front%20Door onvif://www.onvif.org/hardware/M3065-V onvif://www.onvif.org/location/country/sweden</d:Scopes><d:XAddrs>http://192.168.1.20/onvif/device_service http://[fe80::240:8cff:fe00:1]/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

    #[test]
    fn parses_a_camera_reply() {
        let m = parse_probe_matches(MATCHES).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].endpoint, "urn:uuid:a1b2c3d4-0000-4000-8000-00408c000001");
        assert_eq!(m[0].types, ["dn:NetworkVideoTransmitter", "tds:Device"]);
        assert_eq!(m[0].xaddrs.len(), 2);
        assert_eq!(scope_value(&m[0].scopes, "name").as_deref(), Some("Front Door"));
        assert_eq!(scope_value(&m[0].scopes, "hardware").as_deref(), Some("M3065-V"));
        assert_eq!(scope_value(&m[0].scopes, "location").as_deref(), Some("country/sweden"));
        assert_eq!(scope_value(&m[0].scopes, "mac"), None);
    }

    #[test]
    fn bounds_lists_and_drops_useless_entries() {
        let many_scopes = MATCHES.replace(
            "onvif://www.onvif.org/type/video_encoder",
            &(0..1000).map(|i| format!("onvif://x/{i}")).collect::<Vec<_>>().join(" "),
        );
        assert_eq!(parse_probe_matches(&many_scopes).unwrap()[0].scopes.len(), MAX_SCOPES);
        let no_xaddr = MATCHES.replace(
            "http://192.168.1.20/onvif/device_service http://[fe80::240:8cff:fe00:1]/onvif/device_service",
            "ftp://x",
        );
        assert!(parse_probe_matches(&no_xaddr).unwrap().is_empty());
        let no_epr = MATCHES.replace("urn:uuid:a1b2c3d4-0000-4000-8000-00408c000001", "");
        assert_eq!(parse_probe_matches(&no_epr).unwrap()[0].endpoint, "http://192.168.1.20/onvif/device_service");
        let probe_msg = probe(&new_message_id(), TYPE_NVT);
        assert!(parse_probe_matches(&probe_msg).is_err(), "a Probe is not an answer");
    }

    #[test]
    fn probe_is_well_formed_with_a_v4_uuid() {
        let id = new_message_id();
        assert_eq!(id.len(), 45, "{id}");
        assert_eq!(&id[23..24], "4");
        let p = probe(&id, TYPE_DEVICE);
        let doc = xml::parse(&p).unwrap();
        let types = xml::find(doc.root_element(), "Types").unwrap();
        assert_eq!(types.text(), Some("t:Device"));
        assert_eq!(types.lookup_namespace_uri(Some("t")), Some(TYPE_DEVICE.0));
    }

    proptest::proptest! {
        #![proptest_config(crate::onvif::testdata::config())]
        #[test]
        fn parser_takes_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = parse_probe_matches(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn parser_takes_damaged_replies(m in mutated(MATCHES)) {
            if let Ok(v) = parse_probe_matches(&m) {
                proptest::prop_assert!(v.len() <= MAX_MATCHES_PER_REPLY);
                for p in v {
                    proptest::prop_assert!(p.xaddrs.len() <= MAX_XADDRS && p.scopes.len() <= MAX_SCOPES);
                }
            }
        }
    }
}
