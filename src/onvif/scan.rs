//! Discovery plus the device calls: from a WS-Discovery probe to a list of cameras ready to
//! add (main and sub stream URLs, codec, resolution). `edgenvr discover` and the HTTP route
//! `GET /api/v1/discover` both call [`scan`].
//!
//! Per device, with the caller's login (if any): GetSystemDateAndTime (clock offset), then
//! GetDeviceInformation, GetCapabilities/GetServices, GetProfiles, GetStreamUri for the main
//! and sub profile. A device that fails part way is still listed, with what was learned and
//! the error. Bounds: [`MAX_PARALLEL`] devices are asked at once, and no new call starts on a
//! device after [`DEVICE_BUDGET`] (each call has its own timeout, `soap::CALL_TIMEOUT`).

use crate::error::Result;
use crate::onvif::discovery::{self, Device, ProbeOptions};
use crate::onvif::media::{self, Profile};
use crate::onvif::soap::Client;
use crate::onvif::wsse::Credentials;
use crate::onvif::{device, xml};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Devices asked at once (threads that live only during a scan).
pub const MAX_PARALLEL: usize = 4;
/// No new call starts on a device after this much time on it.
pub const DEVICE_BUDGET: Duration = Duration::from_secs(15);

/// What to scan for and with which login.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// The WS-Discovery probe.
    pub probe: ProbeOptions,
    /// The login for the device calls; without one only what cameras give anonymously is
    /// learned (often nothing beyond discovery).
    pub credentials: Option<Credentials>,
    /// Camera ids already in use: suggestions avoid them.
    pub taken_ids: Vec<String>,
}

/// One stream of a camera.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stream {
    /// The RTSP URL, without credentials (they go in the camera's `username`/`password`).
    pub url: String,
    /// The ONVIF profile it belongs to.
    pub profile: String,
    /// `H264`, `H265`, ... as the camera names it.
    pub codec: Option<String>,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Frame rate limit.
    pub fps: Option<u32>,
    /// Bitrate limit, kbit/s.
    pub bitrate_kbps: Option<u32>,
}

/// A camera found on the LAN, ready to add (when `main` is set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// A suggested camera id (valid for the config, unique in this scan and the taken ids).
    pub id: String,
    /// A name for people: the device's name scope, else its model, else its address.
    pub name: String,
    /// Maker (GetDeviceInformation).
    pub manufacturer: Option<String>,
    /// Model (GetDeviceInformation, else the hardware scope).
    pub model: Option<String>,
    /// Firmware version.
    pub firmware: Option<String>,
    /// Location scope.
    pub location: Option<String>,
    /// WS-Discovery endpoint reference (`urn:uuid:...`): stable across address changes.
    pub endpoint: String,
    /// The address its discovery reply came from.
    pub address: String,
    /// The device service address used.
    pub device_url: String,
    /// The event service address (for motion events), if the camera has one.
    pub events_url: Option<String>,
    /// The user name the streams need (the password is the one given to the scan).
    pub username: Option<String>,
    /// The main stream: the recordable (H.264/H.265) profile with the most pixels.
    pub main: Option<Stream>,
    /// The sub stream: the next smaller recordable profile.
    pub sub: Option<Stream>,
    /// Why the camera is not (fully) ready, if it is not.
    pub error: Option<String>,
}

/// The result of a scan.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scan {
    /// The cameras, in the order they answered the probe.
    pub cameras: Vec<Candidate>,
    /// Devices that answered beyond `discovery::MAX_DEVICES` (not listed).
    pub ignored_devices: usize,
    /// Discovery replies that could not be read.
    pub bad_replies: usize,
    /// The local addresses the probe went out from.
    pub interfaces: Vec<String>,
    /// How long replies were awaited, ms.
    pub wait_ms: u64,
}

/// Probes the LAN and asks every device that answered for its streams.
pub fn scan(opts: &ScanOptions) -> Result<Scan> {
    let found = discovery::probe(&opts.probe)?;
    let devices = found.devices;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Candidate>>> = Mutex::new(vec![None; devices.len()]);
    std::thread::scope(|s| {
        for _ in 0..MAX_PARALLEL.min(devices.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = devices.get(i) else { break };
                let c = query(d, opts.credentials.as_ref());
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(c);
            });
        }
    });
    let mut cameras: Vec<Candidate> =
        results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().flatten().collect();
    let mut taken = opts.taken_ids.clone();
    for c in &mut cameras {
        c.id = unique_id(&c.id, &taken);
        taken.push(c.id.clone());
    }
    Ok(Scan {
        cameras,
        ignored_devices: found.ignored_devices,
        bad_replies: found.bad_replies,
        interfaces: found.interfaces.iter().map(|a| a.to_string()).collect(),
        wait_ms: opts.probe.wait.min(discovery::MAX_WAIT).as_millis() as u64,
    })
}

/// Asks one device everything; never fails (errors land in [`Candidate::error`]).
pub fn query(d: &Device, creds: Option<&Credentials>) -> Candidate {
    let mut c = Candidate {
        id: String::new(),
        name: String::new(),
        manufacturer: None,
        model: d.hardware(),
        firmware: None,
        location: d.location(),
        endpoint: d.endpoint.clone(),
        address: d.from.to_string(),
        device_url: d.best_xaddr().to_owned(),
        events_url: None,
        username: creds.map(|c| c.username.clone()),
        main: None,
        sub: None,
        error: None,
    };
    if let Err(e) = ask(&mut c, creds) {
        c.error = Some(e.to_string());
    }
    let host = url::Url::parse(&c.device_url).ok().and_then(|u| u.host_str().map(str::to_owned));
    c.name = d.name().or_else(|| c.model.clone()).or(host).unwrap_or_else(|| c.address.clone());
    c.id = slug(&c.name);
    c
}

fn ask(c: &mut Candidate, creds: Option<&Credentials>) -> Result<()> {
    let start = Instant::now();
    let budget = |what: &str| -> Result<()> {
        if start.elapsed() > DEVICE_BUDGET {
            return Err(crate::err!(Io, "gave up before {what}: the camera used up its {DEVICE_BUDGET:?}"));
        }
        Ok(())
    };
    let client = Client::new(creds.cloned());
    let url = c.device_url.clone();
    if let Err(e) = device::sync_clock(&client, &url) {
        // Not fatal: a camera whose clock is right needs no offset.
        log::debug!("ONVIF {url}: no clock ({e}); assuming it agrees with ours");
    }
    budget("GetDeviceInformation")?;
    let info = device::get_device_information(&client, &url)?;
    let some = |s: String| (!s.is_empty()).then_some(s);
    c.manufacturer = some(info.manufacturer);
    c.model = some(info.model).or(c.model.take());
    c.firmware = some(info.firmware_version);
    budget("GetCapabilities")?;
    let services = device::get_services(&client, &url)?;
    c.events_url = services.events;
    let media_url = services.media.ok_or_else(|| crate::err!(Media, "the camera has no media service"))?;
    budget("GetProfiles")?;
    let profiles = media::get_profiles(&client, &media_url)?;
    let (main, sub) = choose_streams(&profiles);
    let main = main.ok_or_else(|| {
        crate::err!(
            Media,
            "the camera offers no H.264 or H.265 profile (edgenvr records those; check its encoder settings)"
        )
    })?;
    budget("GetStreamUri")?;
    c.main = Some(stream(&client, &media_url, main)?);
    if let Some(sub) = sub {
        budget("GetStreamUri")?;
        c.sub = Some(stream(&client, &media_url, sub)?);
    }
    Ok(())
}

fn stream(client: &Client, media_url: &str, p: &Profile) -> Result<Stream> {
    let url = media::get_stream_uri(client, media_url, &p.token)?;
    Ok(Stream {
        url: strip_credentials(&url),
        profile: p.token.clone(),
        codec: p.codec.clone(),
        width: p.width,
        height: p.height,
        fps: p.fps,
        bitrate_kbps: p.bitrate_kbps,
    })
}

/// Main: the recordable profile with the most pixels (the first on a tie). Sub: the
/// recordable profile with the most pixels below the main's.
pub fn choose_streams(profiles: &[Profile]) -> (Option<&Profile>, Option<&Profile>) {
    let largest_below = |limit: u64| {
        let mut best: Option<&Profile> = None;
        for p in profiles.iter().filter(|p| p.recordable() && p.area() < limit) {
            if best.is_none_or(|b| p.area() > b.area()) {
                best = Some(p);
            }
        }
        best
    };
    let main = largest_below(u64::MAX);
    (main, main.and_then(|m| largest_below(m.area())))
}

/// `url` without `user:password@` (some cameras put the login in the stream URI).
pub fn strip_credentials(url: &str) -> String {
    crate::onvif::soap::redact_url(url)
}

/// A camera id from a name: lower-case ASCII letters and digits, other runs become `-`, at
/// most 32 characters; `camera` when nothing is left.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
        if s.len() >= 32 {
            break;
        }
    }
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "camera".to_owned()
    } else {
        s.to_owned()
    }
}

/// `id`, or `id-2`, `id-3`, ... whichever is not taken.
pub fn unique_id(id: &str, taken: &[String]) -> String {
    let base = xml::bounded(if id.is_empty() { "camera" } else { id }, 32);
    (1..)
        .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
        .find(|c| !taken.contains(c))
        .expect("an unbounded range has an untaken id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(token: &str, codec: &str, w: u32, h: u32) -> Profile {
        Profile {
            token: token.into(),
            name: token.into(),
            codec: Some(codec.into()),
            width: Some(w),
            height: Some(h),
            ..Profile::default()
        }
    }

    #[test]
    fn picks_main_and_sub_streams() {
        let ps = [
            p("jpeg", "JPEG", 3840, 2160),
            p("sub", "H264", 640, 360),
            p("main", "H265", 2560, 1440),
            p("third", "H264", 1280, 720),
        ];
        let (m, s) = choose_streams(&ps);
        assert_eq!((m.unwrap().token.as_str(), s.unwrap().token.as_str()), ("main", "third"));
        let (m, s) = choose_streams(&ps[..2]);
        assert_eq!((m.unwrap().token.as_str(), s), ("sub", None));
        assert_eq!(choose_streams(&ps[..1]), (None, None));
        let same = [p("a", "H264", 1920, 1080), p("b", "H264", 1920, 1080)];
        assert_eq!(choose_streams(&same).0.unwrap().token, "a");
        assert!(choose_streams(&same).1.is_none());
    }

    #[test]
    fn suggests_valid_unique_ids() {
        assert_eq!(slug("Front Door (North)"), "front-door-north");
        assert_eq!(slug("Café 2"), "caf-2");
        assert_eq!(slug("???"), "camera");
        assert_eq!(slug(&"x".repeat(100)).len(), 32);
        for n in ["Front Door", "", "ÄÖÜ", "a--b"] {
            assert!(crate::config::valid_camera_id(&slug(n)), "{n}");
        }
        let taken = vec!["door".to_owned(), "door-2".to_owned()];
        assert_eq!(unique_id("door", &taken), "door-3");
        assert_eq!(unique_id("yard", &taken), "yard");
    }

    #[test]
    fn strips_credentials_from_stream_urls() {
        assert_eq!(
            strip_credentials("rtsp://admin:12345@10.0.0.5:554/Streaming/101"),
            "rtsp://10.0.0.5:554/Streaming/101"
        );
        assert_eq!(strip_credentials("rtsp://10.0.0.5/a?b=c"), "rtsp://10.0.0.5/a?b=c");
    }
}
