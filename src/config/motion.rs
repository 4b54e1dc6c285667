//! A camera's own motion events over ONVIF (`onvif_device`, `onvif_events`): where its
//! device service is, and whether to subscribe. The camera detects motion; edgenvr only
//! listens (`src/service/motion.rs`, `docs/design/onvif.md`, "Events").

use super::check::invalid;
use crate::error::Result;

/// Where to listen for a camera's motion events.
#[derive(Clone)]
pub struct MotionConfig {
    /// The ONVIF device service, `http://host[:port]/onvif/device_service`.
    pub device_url: String,
    /// The ONVIF login (the camera's `username`, else the RTSP URL's).
    pub username: Option<String>,
    /// Its password (never in `Debug`).
    pub password: Option<String>,
}

impl std::fmt::Debug for MotionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is http:// with a host (checked), and any login in it is left out.
        let host = self.device_url.trim_start_matches("http://").split('/').next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or("");
        write!(f, "MotionConfig(http://{host}/..., user {:?})", self.username)
    }
}

/// Checks `onvif_device` and `onvif_events` of camera `key`: events need the device's
/// address; the address must be plain `http://` (cameras' ONVIF services are, on the LAN;
/// the client follows no redirect).
pub fn check(
    key: &dyn Fn(&str) -> String,
    device: Option<&str>,
    events: Option<bool>,
    login: (Option<String>, Option<String>),
) -> Result<Option<MotionConfig>> {
    if let Some(d) = device {
        let host = d.strip_prefix("http://").map(|r| r.split('/').next().unwrap_or(""));
        if host.is_none_or(str::is_empty) || d.len() > 512 {
            return Err(invalid(&key("onvif_device"), "must be an http:// URL of the camera's device service"));
        }
    }
    match (device, events.unwrap_or(false)) {
        (_, false) => Ok(None),
        (None, true) => Err(invalid(&key("onvif_events"), "needs onvif_device (the camera's ONVIF device service)")),
        (Some(d), true) => Ok(Some(MotionConfig { device_url: d.to_owned(), username: login.0, password: login.1 })),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn camera(extra: &str) -> crate::error::Result<Config> {
        Config::parse(&format!(
            "[[storage]]\npath = \"/tmp/x\"\n[[camera]]\nid = \"door\"\nurl = \"rtsp://u:p%40ss@cam/s\"\n{extra}"
        ))
    }

    #[test]
    fn motion_keys_are_checked_and_take_the_cameras_login() {
        let c = camera("onvif_device = \"http://cam/onvif/device_service\"\nonvif_events = true\n").unwrap();
        let m = c.cameras[0].motion.as_ref().unwrap();
        assert_eq!((m.username.as_deref(), m.password.as_deref()), (Some("u"), Some("p@ss")));
        assert!(!format!("{:?}", c.cameras[0]).contains("p@ss"), "the password in Debug");
        assert!(camera("onvif_device = \"http://cam/x\"\n").unwrap().cameras[0].motion.is_none());
        let e = camera("onvif_events = true\n").unwrap_err().to_string();
        assert!(e.contains("camera[0].onvif_events: needs onvif_device"), "{e}");
        let e = camera("onvif_device = \"ftp://cam\"\nonvif_events = true\n").unwrap_err().to_string();
        assert!(e.contains("camera[0].onvif_device: must be an http:// URL"), "{e}");
    }
}
