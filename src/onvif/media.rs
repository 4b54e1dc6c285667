//! The ONVIF media service (ver10, Profile S): the camera's profiles (one per stream it can
//! send: codec, size, rate) and the RTSP address of each.

use crate::error::Result;
use crate::onvif::soap::{bad_reply, Client};
use crate::onvif::xml::{self, malformed, Malformed};
use serde::Serialize;

const NS_MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
const NS_SCHEMA: &str = "http://www.onvif.org/ver10/schema";

/// Most profiles kept from one camera (cameras have 2-4; the rest are ignored).
pub const MAX_PROFILES: usize = 16;

/// One media profile with its video encoder settings (fields the camera left out are `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The token GetStreamUri takes.
    pub token: String,
    /// The camera's name for it (`mainStream`, `Profile_1`, ...).
    pub name: String,
    /// `H264`, `H265`, `JPEG`, `MPEG4` as the camera spells it; `None` without a video encoder.
    pub codec: Option<String>,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Frame rate limit, frames per second.
    pub fps: Option<u32>,
    /// Bitrate limit, kbit/s.
    pub bitrate_kbps: Option<u32>,
}

impl Profile {
    /// Pixels per picture (0 when unknown), to rank main and sub streams.
    pub fn area(&self) -> u64 {
        u64::from(self.width.unwrap_or(0)) * u64::from(self.height.unwrap_or(0))
    }

    /// Whether edgenvr can record this profile's stream (H.264 or H.265).
    pub fn recordable(&self) -> bool {
        matches!(self.codec.as_deref().map(str::to_ascii_uppercase).as_deref(), Some("H264" | "H265" | "HEVC"))
    }
}

/// Parses a GetProfiles reply (at most [`MAX_PROFILES`] profiles).
pub fn parse_profiles(text: &str) -> Result<Vec<Profile>, Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "GetProfilesResponse").ok_or_else(|| malformed("no GetProfilesResponse"))?;
    let mut out = Vec::new();
    for p in xml::children(r, "Profiles").take(MAX_PROFILES) {
        let Some(token) = xml::attr(p, "token").filter(|t| !t.is_empty()) else { continue };
        let num = |names: &[&str]| -> Option<u32> {
            let v = xml::path(p, names).map(xml::text)?;
            // Some cameras write rates as decimals ("25.000000").
            v.parse::<u32>().ok().or_else(|| v.parse::<f64>().ok().filter(|f| (0.0..1e9).contains(f)).map(|f| f as u32))
        };
        let enc = "VideoEncoderConfiguration";
        out.push(Profile {
            name: xml::text_at(p, &["Name"]).unwrap_or_else(|| token.clone()),
            token,
            codec: xml::text_at(p, &[enc, "Encoding"]),
            width: num(&[enc, "Resolution", "Width"]),
            height: num(&[enc, "Resolution", "Height"]),
            fps: num(&[enc, "RateControl", "FrameRateLimit"]),
            bitrate_kbps: num(&[enc, "RateControl", "BitrateLimit"]),
        });
    }
    Ok(out)
}

/// Parses a GetStreamUri reply: `MediaUri/Uri`.
pub fn parse_stream_uri(text: &str) -> Result<String, Malformed> {
    let doc = xml::parse(text)?;
    let r = xml::child(xml::body(&doc)?, "GetStreamUriResponse").ok_or_else(|| malformed("no GetStreamUriResponse"))?;
    let uri = xml::text_at(r, &["MediaUri", "Uri"]).ok_or_else(|| malformed("no MediaUri/Uri"))?;
    if !uri.to_ascii_lowercase().starts_with("rtsp://") {
        return Err(malformed("the stream URI is not rtsp://"));
    }
    Ok(uri)
}

/// Calls GetProfiles on the media service.
pub fn get_profiles(c: &Client, media_url: &str) -> Result<Vec<Profile>> {
    let reply = c.call(
        media_url,
        "http://www.onvif.org/ver10/media/wsdl/GetProfiles",
        &format!(r#"<trt:GetProfiles xmlns:trt="{NS_MEDIA}"/>"#),
    )?;
    parse_profiles(&reply).map_err(|e| bad_reply(media_url, "GetProfiles", e))
}

/// Calls GetStreamUri for `profile_token`: RTP unicast over RTSP (RTSP over TCP works with
/// the same URI, which is what edgenvr uses by default).
pub fn get_stream_uri(c: &Client, media_url: &str, profile_token: &str) -> Result<String> {
    let body = format!(
        concat!(
            r#"<trt:GetStreamUri xmlns:trt="{m}" xmlns:tt="{t}"><trt:StreamSetup>"#,
            r#"<tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>"#,
            r#"</trt:StreamSetup><trt:ProfileToken>{token}</trt:ProfileToken></trt:GetStreamUri>"#
        ),
        m = NS_MEDIA,
        t = NS_SCHEMA,
        token = xml::escape(profile_token)
    );
    let reply = c.call(media_url, "http://www.onvif.org/ver10/media/wsdl/GetStreamUri", &body)?;
    parse_stream_uri(&reply).map_err(|e| bad_reply(media_url, "GetStreamUri", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onvif::testdata::mutated;

    /// Shaped like a Hikvision DS-2CD2xxx reply (trimmed: PTZ, analytics and audio removed).
    const PROFILES: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><trt:GetProfilesResponse><trt:Profiles fixed="true" token="Profile_1"><tt:Name>mainStream</tt:Name><tt:VideoSourceConfiguration token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:Bounds x="0" y="0" width="2560" height="1440"></tt:Bounds></tt:VideoSourceConfiguration><tt:VideoEncoderConfiguration token="VideoEncoderToken_1"><tt:Name>VideoEncoder_1</tt:Name><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>2560</tt:Width><tt:Height>1440</tt:Height></tt:Resolution><tt:Quality>5.000000</tt:Quality><tt:RateControl><tt:FrameRateLimit>25.000000</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles><trt:Profiles fixed="true" token="Profile_2"><tt:Name>subStream</tt:Name><tt:VideoEncoderConfiguration token="VideoEncoderToken_2"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution><tt:RateControl><tt:FrameRateLimit>15</tt:FrameRateLimit><tt:BitrateLimit>512</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration></trt:Profiles><trt:Profiles token="Profile_3"><tt:Name>audioOnly</tt:Name></trt:Profiles></trt:GetProfilesResponse></env:Body></env:Envelope>"#;

    const URI: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://10.0.0.5:554/Streaming/Channels/101?transportmode=unicast&amp;profile=Profile_1</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse></env:Body></env:Envelope>"#;

    #[test]
    fn parses_profiles() {
        let p = parse_profiles(PROFILES).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0],
            Profile {
                token: "Profile_1".into(),
                name: "mainStream".into(),
                codec: Some("H264".into()),
                width: Some(2560),
                height: Some(1440),
                fps: Some(25),
                bitrate_kbps: Some(4096),
            }
        );
        assert_eq!((p[1].width, p[1].height, p[1].fps), (Some(640), Some(360), Some(15)));
        assert!(p[0].recordable() && !p[2].recordable());
        assert_eq!(p[2].codec, None);
        let many = PROFILES.replace(
            "<trt:Profiles token=\"Profile_3\"><tt:Name>audioOnly</tt:Name></trt:Profiles>",
            &"<trt:Profiles token=\"x\"/>".repeat(100),
        );
        assert_eq!(parse_profiles(&many).unwrap().len(), MAX_PROFILES);
    }

    #[test]
    fn parses_stream_uri() {
        assert_eq!(
            parse_stream_uri(URI).unwrap(),
            "rtsp://10.0.0.5:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1"
        );
        assert!(parse_stream_uri(&URI.replace("rtsp://", "http://")).is_err());
        assert!(parse_stream_uri(PROFILES).is_err());
    }

    proptest::proptest! {
        #![proptest_config(crate::onvif::testdata::config())]
        #[test]
        fn parsers_take_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let s = String::from_utf8_lossy(&bytes);
            let _ = parse_profiles(&s);
            let _ = parse_stream_uri(&s);
        }

        #[test]
        fn parsers_take_damaged_replies(p in mutated(PROFILES), u in mutated(URI)) {
            let _ = parse_profiles(&p);
            let _ = parse_stream_uri(&u);
        }
    }
}
