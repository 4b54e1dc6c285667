//! `edgenvr discover [--timeout 3s] [--username U --password-file F] [--json]`: finds ONVIF
//! cameras on the LAN and prints each as a `[[camera]]` snippet ready to paste into the
//! config (or, with `--json`, the document `GET /api/v1/discover` serves). Exit status 0 when
//! every camera found is ready to add, 1 when none was found or some are not ready.

#![allow(clippy::print_stdout)] // the CLI talks to people on stdout

use crate::error::{Error, Result};
use crate::onvif::{self, Candidate, Credentials, Scan, ScanOptions};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Longest password file read (a password is a line).
const MAX_PASSWORD_FILE: u64 = 4096;

/// Options of `discover`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DiscoverArgs {
    /// `--timeout`: how long to wait for discovery replies.
    pub timeout: Option<String>,
    /// `--username`.
    pub username: Option<String>,
    /// `--password-file` (a file whose first line is the password; `-` reads stdin).
    pub password_file: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
}

impl DiscoverArgs {
    /// Takes `--timeout`, `--username` or `--password-file` with its value.
    pub fn set(&mut self, option: &str, value: String) {
        match option {
            "--timeout" => self.timeout = Some(value),
            "--username" => self.username = Some(value),
            _ => self.password_file = Some(PathBuf::from(value)),
        }
    }
}

/// Reads the password: the file's first line, without its line ending.
fn read_password(path: &PathBuf) -> Result<String> {
    let mut text = String::new();
    let r = if path.as_os_str() == "-" {
        std::io::stdin().take(MAX_PASSWORD_FILE).read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_PASSWORD_FILE).read_to_string(&mut text))
    };
    r.map_err(|e| Error::io(format!("cannot read the password file {}", path.display()), e))?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}

/// Turns the arguments into scan options (the login is read here).
pub fn options(a: &DiscoverArgs, taken_ids: Vec<String>) -> Result<ScanOptions> {
    let mut opts = ScanOptions { taken_ids, ..ScanOptions::default() };
    if let Some(t) = &a.timeout {
        let d = crate::config::parse_duration(t).map_err(|e| crate::err!(InvalidArgument, "--timeout: {e}"))?;
        if d > onvif::discovery::MAX_WAIT || d < Duration::from_millis(100) {
            crate::bail!(InvalidArgument, "--timeout must be between 100ms and 30s");
        }
        opts.probe.wait = d;
    }
    opts.credentials = match (&a.username, &a.password_file) {
        (Some(u), Some(f)) => Some(Credentials::new(u.clone(), read_password(f)?)),
        (Some(u), None) => Some(Credentials::new(u.clone(), "")),
        (None, Some(_)) => {
            crate::bail!(InvalidArgument, "--password-file goes with --username");
        }
        (None, None) => None,
    };
    Ok(opts)
}

/// Runs `discover` from the command line; returns the exit code. A config is optional: with
/// one, suggested ids avoid the cameras it has.
pub fn main(config: Option<&std::path::Path>, a: &DiscoverArgs) -> i32 {
    let taken = match config.map(|p| crate::config::Config::load(Some(p))) {
        Some(Ok(c)) => c.cameras.into_iter().map(|c| c.id).collect(),
        Some(Err(e)) => {
            eprintln!("edgenvr: {e}");
            return 2;
        }
        None => Vec::new(),
    };
    match run(a, taken) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgenvr: {e}");
            if e.kind() == crate::error::ErrorKind::InvalidArgument {
                2
            } else {
                3
            }
        }
    }
}

/// Runs `discover`; returns the exit code.
pub fn run(a: &DiscoverArgs, taken_ids: Vec<String>) -> Result<i32> {
    let opts = options(a, taken_ids)?;
    let scan = onvif::scan(&opts)?;
    if a.json {
        let s = serde_json::to_string_pretty(&scan)
            .map_err(|e| crate::err!(Internal, "cannot write JSON").with_source(e))?;
        println!("{s}");
    } else {
        print!("{}", render_text(&scan, a.password_file.as_ref()));
    }
    let ready = !scan.cameras.is_empty() && scan.cameras.iter().all(|c| c.main.is_some());
    Ok(if ready { 0 } else { 1 })
}

/// The human report: one block per camera with its streams and a config snippet.
pub fn render_text(scan: &Scan, password_file: Option<&PathBuf>) -> String {
    let mut out = String::new();
    let from = if scan.interfaces.is_empty() {
        String::new()
    } else {
        format!(" (probed from {})", scan.interfaces.join(", "))
    };
    out += &format!(
        "{} ONVIF device(s) answered within {:.1} s{from}.\n",
        scan.cameras.len(),
        scan.wait_ms as f64 / 1000.0
    );
    if scan.ignored_devices > 0 {
        out += &format!(
            "{} more device(s) answered and were ignored (at most {} are listed).\n",
            scan.ignored_devices,
            onvif::discovery::MAX_DEVICES
        );
    }
    if scan.bad_replies > 0 {
        out += &format!("{} reply(ies) could not be read.\n", scan.bad_replies);
    }
    for c in &scan.cameras {
        out += "\n";
        out += &render_camera(c, password_file);
    }
    out
}

fn render_camera(c: &Candidate, password_file: Option<&PathBuf>) -> String {
    let mut out = format!("{}: {}", c.id, c.name);
    let make: Vec<&str> = [c.manufacturer.as_deref(), c.model.as_deref()].into_iter().flatten().collect();
    if !make.is_empty() {
        out += &format!(" ({})", make.join(" "));
    }
    out += &format!(" at {}\n  device service: {}\n", c.address, c.device_url);
    for (label, s) in [("main", &c.main), ("sub", &c.sub)] {
        if let Some(s) = s {
            out += &format!("  {label:<4} {}  {}\n", describe(s), s.url);
        }
    }
    if let Some(e) = &c.error {
        out += &format!("  not ready: {e}\n");
    }
    let Some(main) = &c.main else { return out };
    out += &format!("\n[[camera]]\nid = {}\nurl = {}\n", toml_str(&c.id), toml_str(&main.url));
    if let Some(u) = &c.username {
        out += &format!("username = {}\n", toml_str(u));
        let from =
            password_file.map_or("the camera's password".to_owned(), |p| format!("the password in {}", p.display()));
        out += &format!("password = {}\n", toml_str(&format!("<{from}>")));
    }
    if let Some(s) = &c.sub {
        out += &format!("# sub stream ({}): {}\n", describe(s), s.url);
    }
    out
}

/// `H264 1920x1080 25 fps 4096 kbit/s`, leaving out what the camera did not say.
fn describe(s: &onvif::Stream) -> String {
    let mut parts: Vec<String> = vec![s.codec.clone().unwrap_or_else(|| "?".into())];
    if let (Some(w), Some(h)) = (s.width, s.height) {
        parts.push(format!("{w}x{h}"));
    }
    if let Some(f) = s.fps {
        parts.push(format!("{f} fps"));
    }
    if let Some(b) = s.bitrate_kbps {
        parts.push(format!("{b} kbit/s"));
    }
    parts.join(" ")
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::onvif::Stream;

    fn candidate() -> Candidate {
        let stream = |url: &str, w, h| Stream {
            url: url.into(),
            profile: "p".into(),
            codec: Some("H264".into()),
            width: Some(w),
            height: Some(h),
            fps: Some(25),
            bitrate_kbps: None,
        };
        Candidate {
            id: "front-door".into(),
            name: "Front \"Door\"".into(),
            manufacturer: Some("ACME".into()),
            model: Some("Cam-1".into()),
            firmware: None,
            location: None,
            endpoint: "urn:uuid:1".into(),
            address: "10.0.0.5".into(),
            device_url: "http://10.0.0.5/onvif/device_service".into(),
            events_url: None,
            username: Some("ad\"min\\".into()),
            main: Some(stream("rtsp://10.0.0.5/main?a=\"b\"", 1920, 1080)),
            sub: Some(stream("rtsp://10.0.0.5/sub", 640, 360)),
            error: None,
        }
    }

    /// The snippet is valid config: pasted under a storage root it loads, with the
    /// user name, the main URL, and no real password.
    #[test]
    fn snippet_is_a_valid_camera() {
        let scan = Scan { cameras: vec![candidate()], wait_ms: 3000, ..Scan::default() };
        let text = render_text(&scan, Some(&PathBuf::from("/root/cam.pw")));
        assert!(text.contains("main H264 1920x1080 25 fps  rtsp://10.0.0.5/main"), "{text}");
        let snippet = &text[text.find("[[camera]]").unwrap()..];
        let cfg = crate::config::Config::parse(&format!("[[storage]]\npath = \"/tmp/x\"\n{snippet}")).unwrap();
        let crate::config::SourceConfig::Rtsp(r) = &cfg.cameras[0].source else { panic!("{snippet}") };
        assert_eq!(cfg.cameras[0].id, "front-door");
        assert_eq!(r.url, "rtsp://10.0.0.5/main?a=\"b\"");
        assert_eq!(r.username.as_deref(), Some("ad\"min\\"));
        assert_eq!(r.password.as_deref(), Some("<the password in /root/cam.pw>"));
    }

    #[test]
    fn not_ready_cameras_get_no_snippet() {
        let mut c = candidate();
        c.main = None;
        c.sub = None;
        c.error = Some("GetProfiles at http://10.0.0.5/onvif/media: the camera wants a login".into());
        let text = render_text(&Scan { cameras: vec![c], ..Scan::default() }, None);
        assert!(text.contains("not ready: GetProfiles"), "{text}");
        assert!(!text.contains("[[camera]]"), "{text}");
    }

    #[test]
    fn password_comes_from_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\nignored\n").unwrap();
        let a = DiscoverArgs { username: Some("admin".into()), password_file: Some(f), ..DiscoverArgs::default() };
        let o = options(&a, vec![]).unwrap();
        assert_eq!(o.credentials, Some(Credentials::new("admin", "s3cret")));
        let bad = DiscoverArgs { timeout: Some("90s".into()), ..DiscoverArgs::default() };
        assert_eq!(options(&bad, vec![]).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let lonely = DiscoverArgs { password_file: Some("/x".into()), ..DiscoverArgs::default() };
        assert_eq!(options(&lonely, vec![]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}
