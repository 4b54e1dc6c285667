//! The ONVIF device service: the camera's clock, its identity, and where its other services
//! live. Request bodies are built here and replies parsed by pure functions (tested on any
//! bytes).

use crate::error::Result;
use crate::onvif::soap::{bad_reply, Client};
use crate::onvif::xml::{self, malformed, Malformed};
use serde::Serialize;

const NS_DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";
const NS_MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
const NS_EVENTS: &str = "http://www.onvif.org/ver10/events/wsdl";

/// What GetDeviceInformation says about the camera. Every field may be empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInformation {
    /// Maker, e.g. `HIKVISION`.
    pub manufacturer: String,
    /// Model, e.g. `DS-2CD2043G2-I`.
    pub model: String,
    /// Firmware version.
    pub firmware_version: String,
    /// Serial number.
    pub serial_number: String,
    /// Hardware id.
    pub hardware_id: String,
}

/// Where the camera's media and event services are (absolute `http://` URLs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Services {
    /// The media (ver10) service: profiles and stream URIs.
    pub media: Option<String>,
    /// The event service: PullPoint subscriptions.
    pub events: Option<String>,
}

/// GetSystemDateAndTime's `UTCDateTime` as µs since the epoch; `None` when the camera only
/// gives local time (its offset is then unknown, so the caller assumes none).
pub fn parse_system_date_and_time(text: &str) -> Result<Option<i64>, Malformed> {
    let doc = xml::parse(text)?;
    let body = xml::body(&doc)?;
    let dt = xml::find(body, "SystemDateAndTime").ok_or_else(|| malformed("no SystemDateAndTime"))?;
    let Some(utc) = xml::child(dt, "UTCDateTime") else { return Ok(None) };
    let num = |names: &[&str], lo: i64, hi: i64| -> Result<i64, Malformed> {
        let t = xml::text_at(utc, names).ok_or_else(|| malformed("UTCDateTime lacks a field"))?;
        t.parse::<i64>().ok().filter(|v| (lo..=hi).contains(v)).ok_or_else(|| malformed("UTCDateTime out of range"))
    };
    let year = num(&["Date", "Year"], 1970, 9999)?;
    let month = num(&["Date", "Month"], 1, 12)? as u32;
    let day = num(&["Date", "Day"], 1, 31)? as u32;
    let c = crate::time::Civil {
        year,
        month,
        day,
        hour: num(&["Time", "Hour"], 0, 23)? as u32,
        minute: num(&["Time", "Minute"], 0, 59)? as u32,
        second: num(&["Time", "Second"], 0, 60)? as u32,
    };
    Ok(Some(c.to_us()))
}

/// Parses a GetDeviceInformation reply.
pub fn parse_device_information(text: &str) -> Result<DeviceInformation, Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "GetDeviceInformationResponse")
        .ok_or_else(|| malformed("no GetDeviceInformationResponse"))?;
    let f = |name: &str| xml::text_at(r, &[name]).unwrap_or_default();
    Ok(DeviceInformation {
        manufacturer: f("Manufacturer"),
        model: f("Model"),
        firmware_version: f("FirmwareVersion"),
        serial_number: f("SerialNumber"),
        hardware_id: f("HardwareId"),
    })
}

/// Parses a GetCapabilities reply: `Capabilities/Media/XAddr` and `Capabilities/Events/XAddr`.
pub fn parse_capabilities(text: &str) -> Result<Services, Malformed> {
    let doc = xml::parse(text)?;
    let caps = xml::find(xml::body(&doc)?, "Capabilities").ok_or_else(|| malformed("no Capabilities"))?;
    Ok(Services {
        media: xml::text_at(caps, &["Media", "XAddr"]).filter(|u| is_http(u)),
        events: xml::text_at(caps, &["Events", "XAddr"]).filter(|u| is_http(u)),
    })
}

/// Parses a GetServices reply: the XAddr of the services whose namespace is media ver10 and
/// events.
pub fn parse_services(text: &str) -> Result<Services, Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "GetServicesResponse").ok_or_else(|| malformed("no GetServicesResponse"))?;
    let mut s = Services::default();
    for svc in xml::children(r, "Service").take(64) {
        let addr = xml::text_at(svc, &["XAddr"]).filter(|u| is_http(u));
        match xml::text_at(svc, &["Namespace"]).as_deref() {
            Some(NS_MEDIA) if s.media.is_none() => s.media = addr,
            Some(NS_EVENTS) if s.events.is_none() => s.events = addr,
            _ => {}
        }
    }
    Ok(s)
}

fn is_http(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

/// Asks the device service at `device_url` for its clock (no login needed) and keeps the
/// offset in `c` for later digests. Returns the offset in µs (camera minus ours).
pub fn sync_clock(c: &Client, device_url: &str) -> Result<i64> {
    let t0 = crate::time::now_us();
    let reply = c.call_anonymous(
        device_url,
        "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime",
        &format!(r#"<tds:GetSystemDateAndTime xmlns:tds="{NS_DEVICE}"/>"#),
    )?;
    let t1 = crate::time::now_us();
    let device_us = parse_system_date_and_time(&reply).map_err(|e| bad_reply(device_url, "GetSystemDateAndTime", e))?;
    // The camera read its clock somewhere during the round trip: assume the middle.
    let offset = device_us.map_or(0, |d| d - (t0 + (t1 - t0) / 2));
    c.set_clock_offset_us(offset);
    Ok(offset)
}

/// Calls GetDeviceInformation.
pub fn get_device_information(c: &Client, device_url: &str) -> Result<DeviceInformation> {
    let reply = c.call(
        device_url,
        "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation",
        &format!(r#"<tds:GetDeviceInformation xmlns:tds="{NS_DEVICE}"/>"#),
    )?;
    parse_device_information(&reply).map_err(|e| bad_reply(device_url, "GetDeviceInformation", e))
}

/// Finds the media and event services: GetCapabilities (every Profile S camera has it), then
/// GetServices for what it did not say.
pub fn get_services(c: &Client, device_url: &str) -> Result<Services> {
    let caps = c
        .call(
            device_url,
            "http://www.onvif.org/ver10/device/wsdl/GetCapabilities",
            &format!(
                r#"<tds:GetCapabilities xmlns:tds="{NS_DEVICE}"><tds:Category>All</tds:Category></tds:GetCapabilities>"#
            ),
        )
        .and_then(|r| parse_capabilities(&r).map_err(|e| bad_reply(device_url, "GetCapabilities", e)));
    match &caps {
        Ok(s) if s.media.is_some() && s.events.is_some() => return caps,
        // A refused login fails GetServices the same way: say so once.
        Err(e) if e.kind() == crate::error::ErrorKind::InvalidArgument => return caps,
        _ => {}
    }
    let services = c
        .call(
            device_url,
            "http://www.onvif.org/ver10/device/wsdl/GetServices",
            &format!(r#"<tds:GetServices xmlns:tds="{NS_DEVICE}"><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>"#),
        )
        .and_then(|r| parse_services(&r).map_err(|e| bad_reply(device_url, "GetServices", e)));
    match (caps, services) {
        (Ok(a), Ok(b)) => Ok(Services { media: a.media.or(b.media), events: a.events.or(b.events) }),
        (Ok(a), Err(_)) => Ok(a),
        (Err(_), Ok(b)) => Ok(b),
        (Err(e), Err(_)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onvif::testdata::mutated;

    const TIME: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>14</tt:Hour><tt:Minute>56</tt:Minute><tt:Second>3</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>11</tt:Month><tt:Day>21</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></s:Body></s:Envelope>"#;

    const INFO: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body><tds:GetDeviceInformationResponse><tds:Manufacturer>HIKVISION</tds:Manufacturer><tds:Model>DS-2CD2043G2-I</tds:Model><tds:FirmwareVersion>V5.7.3 build 220112</tds:FirmwareVersion><tds:SerialNumber>DS-2CD2043G2-I20220101AAWRJ12345678</tds:SerialNumber><tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse></env:Body></env:Envelope>"#;

    const CAPS: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>http://10.0.0.5/onvif/device_service</tt:XAddr></tt:Device><tt:Events><tt:XAddr>http://10.0.0.5/onvif/Events</tt:XAddr><tt:WSPullPointSupport>true</tt:WSPullPointSupport></tt:Events><tt:Media><tt:XAddr>http://10.0.0.5/onvif/Media</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse></env:Body></env:Envelope>"#;

    const SERVICES: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body><tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>http://10.0.0.5/onvif/device_service</tds:XAddr></tds:Service><tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>http://10.0.0.5/onvif/Media2</tds:XAddr></tds:Service><tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>http://10.0.0.5/onvif/Media</tds:XAddr></tds:Service><tds:Service><tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace><tds:XAddr>http://10.0.0.5/onvif/Events</tds:XAddr></tds:Service></tds:GetServicesResponse></env:Body></env:Envelope>"#;

    #[test]
    fn parses_the_clock() {
        // 2026-11-21T14:56:03Z, checked with `date -u -d @1795272963`.
        assert_eq!(parse_system_date_and_time(TIME).unwrap(), Some(1_795_272_963_000_000));
        let local_only = TIME.replace("UTCDateTime", "LocalDateTime");
        assert_eq!(parse_system_date_and_time(&local_only).unwrap(), None);
        assert!(parse_system_date_and_time(&TIME.replace(">14<", ">25<")).is_err());
        assert!(parse_system_date_and_time(&TIME.replace(">2026<", ">99999999999999999999<")).is_err());
    }

    #[test]
    fn parses_identity_and_service_addresses() {
        let i = parse_device_information(INFO).unwrap();
        assert_eq!((i.manufacturer.as_str(), i.model.as_str()), ("HIKVISION", "DS-2CD2043G2-I"));
        let want = Services {
            media: Some("http://10.0.0.5/onvif/Media".into()),
            events: Some("http://10.0.0.5/onvif/Events".into()),
        };
        assert_eq!(parse_capabilities(CAPS).unwrap(), want);
        assert_eq!(parse_services(SERVICES).unwrap(), want);
        assert!(parse_device_information(CAPS).is_err());
    }

    proptest::proptest! {
        #![proptest_config(crate::onvif::testdata::config())]
        #[test]
        fn parsers_take_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_system_date_and_time(&s);
            let _ = parse_device_information(&s);
            let _ = parse_capabilities(&s);
            let _ = parse_services(&s);
        }

        #[test]
        fn parsers_take_damaged_replies(t in mutated(TIME), i in mutated(INFO), c in mutated(CAPS), s in mutated(SERVICES)) {
            let _ = parse_system_date_and_time(&t);
            let _ = parse_device_information(&i);
            let _ = parse_capabilities(&c);
            let _ = parse_services(&s);
        }
    }
}
