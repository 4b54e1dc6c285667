//! The configuration file (TOML) and the embedded default.
//!
//! Parsing is two steps: serde reads the file into `Raw*` structs that deny unknown keys,
//! then `Config::from_raw` checks every value and converts units, naming the key in every
//! error (`storage[1].min_free: "10 %" is not a size ...`). A config error stops the service
//! before it records anything: recording with a half-understood config would be worse.

mod archive;
mod cameras;
mod check;
mod motion;
mod mqtt;
mod retention;
mod server;
mod units;

use crate::error::{Error, ErrorKind, Result};
use check::{absolute, invalid};
use serde::{Deserialize, Serialize};
use server::RawServer;
pub use server::{Secret, ServerConfig, ViewerToken, DEFAULT_MAX_VIEWERS, MAX_VIEWERS_LIMIT};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use motion::MotionConfig;
pub use mqtt::MqttConfig;
pub use retention::{Retention, MAX_CAPTURE, MAX_EVENT_DURATION};
pub use units::{parse_duration, parse_free_space, parse_size, FreeSpace};

/// The configuration used when no `--config` is given: one synthetic camera recording into
/// `./edgenvr-data`, the HTTP API on localhost. Every subcommand uses it by default, so
/// `edgenvr check` after the demo checks the demo's data.
pub const EMBEDDED_DEFAULT: &str = r#"
[server]
listen = "127.0.0.1:8080"

[recording]
sync_interval = "2s"

[[storage]]
path = "./edgenvr-data"
min_free = "5%"

[[camera]]
id = "demo"
source = "testsrc"
width = 640
height = 480
fps = 15
"#;

/// Most cameras a config may have. Every fixed-size document of the API (status, cameras)
/// holds them all, so this bounds its size.
pub const MAX_CAMERAS: usize = 32;
/// Longest JSON form of one camera table (API bodies, state file entries): a table is a few
/// hundred bytes; URLs are the longest part.
pub const MAX_CAMERA_JSON: usize = 16 * 1024;
/// Most storage roots a config may have (bounded for the same reason as [`MAX_CAMERAS`]).
pub const MAX_ROOTS: usize = 8;

/// The whole, validated configuration. Its `Debug` shows no secret (tokens, camera
/// passwords and URL credentials print as `***`).
#[derive(Clone)]
pub struct Config {
    /// `[server]`: the HTTP API.
    pub server: ServerConfig,
    /// `[recording]`: how video is written.
    pub recording: RecordingConfig,
    /// `[index]`: where the SQLite index lives.
    pub index_path: PathBuf,
    /// `[[storage]]`: roots in order of preference.
    pub storage: Vec<StorageConfig>,
    /// `[[camera]]`: the cameras.
    pub cameras: Vec<CameraConfig>,
    /// `[mqtt]`: the broker events and state go to, if any.
    pub mqtt: Option<MqttConfig>,
    /// The `[[camera]]` tables as written (what the camera state file stores; see
    /// [`CameraTable`]).
    pub camera_tables: Vec<CameraTable>,
    /// `[[archive]]`: off-box copies (`docs/design/archive.md`).
    pub archive: Vec<crate::archive::settings::ArchiveConfig>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Each part's own Debug hides its secrets ([`ServerConfig`]'s tokens are
        // [`Secret`]s, [`RtspConfig`] redacts its URL and password).
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("recording", &self.recording)
            .field("index_path", &self.index_path)
            .field("storage", &self.storage)
            .field("cameras", &self.cameras)
            .field("archive", &self.archive)
            .finish()
    }
}

/// `[recording]` settings.
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    /// How often written video is fsync'd: the most video a power cut can lose.
    pub sync_interval: Duration,
    /// Footage older than this is deleted by the reaper (the default of every camera's
    /// continuous footage; [`RecordingConfig::retention`] holds it with the other defaults).
    pub max_age: Option<Duration>,
    /// The defaults of every camera's retention classes and event capture.
    pub retention: Retention,
}

/// One `[[storage]]` root.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// The directory chunks are written under (made absolute at load time).
    pub path: PathBuf,
    /// Free space the reaper keeps on this root's filesystem.
    pub min_free: FreeSpace,
    /// Optional byte budget for recordings on this root.
    pub max_bytes: Option<u64>,
    /// Room on this root continuous footage may not take, kept for event footage
    /// (`events_reserve`; `docs/design/events.md`).
    pub events_reserve: Option<FreeSpace>,
    /// When true the root is used only while it is on a different filesystem than `/`, so an
    /// unmounted USB disk is never silently replaced by a directory on the SD card.
    pub require_mount: bool,
}

/// One `[[camera]]`.
#[derive(Clone, Debug)]
pub struct CameraConfig {
    /// Short id used in paths, the index and the API (`[A-Za-z0-9_-]`, at most 64 bytes).
    pub id: String,
    /// A disabled camera is known to the API but not recorded.
    pub enabled: bool,
    /// Where its video comes from.
    pub source: SourceConfig,
    /// How long its footage is kept by class, and how its events capture.
    pub retention: Retention,
    /// Its own motion detection, heard over ONVIF (`onvif_events = true`).
    pub motion: Option<MotionConfig>,
}

/// A camera's source and its source-specific settings.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    /// The built-in synthetic camera.
    Testsrc(TestsrcConfig),
    /// An IP camera over RTSP.
    Rtsp(RtspConfig),
    /// A local V4L2 device.
    V4l2(V4l2Config),
}

/// Settings of the synthetic camera.
#[derive(Clone, Debug)]
pub struct TestsrcConfig {
    /// Frame width in pixels (even).
    pub width: u32,
    /// Frame height in pixels (even).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate of the H.264 encoder, bits per second.
    pub bitrate: u32,
    /// Frames between IDR frames.
    pub keyframe_interval: u32,
    /// How fast the synthetic clock runs relative to real time (1.0 = real time). Faster
    /// clocks let tests and benchmarks produce hours of footage in minutes.
    pub speed: f64,
}

/// Settings of an RTSP camera. Its `Debug` redacts the URL's credentials and the password.
#[derive(Clone)]
pub struct RtspConfig {
    /// `rtsp://` URL, possibly with credentials.
    pub url: String,
    /// User name, if not in the URL.
    pub username: Option<String>,
    /// Password, if not in the URL.
    pub password: Option<String>,
    /// How RTP reaches us.
    pub transport: Transport,
    /// Give up on a connection that has not delivered a frame this long after connecting.
    pub first_frame_timeout: Duration,
    /// Give up on a connection that has been silent this long.
    pub frame_timeout: Duration,
    /// Record the camera's audio (AAC, G.711) when it offers it (`audio`, default true;
    /// `docs/design/audio.md`).
    pub audio: bool,
}

/// `transport = "tcp" | "udp"` of an RTSP camera.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// RTP interleaved in the RTSP connection: one TCP connection, passes NAT and firewalls,
    /// no loss to reorder. The default.
    #[default]
    Tcp,
    /// RTP over UDP: less latency on a clean LAN, loses packets on a busy one.
    Udp,
}

impl std::fmt::Debug for RtspConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtspConfig")
            .field("url", &crate::text::redact(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("transport", &self.transport)
            .field("first_frame_timeout", &self.first_frame_timeout)
            .field("frame_timeout", &self.frame_timeout)
            .field("audio", &self.audio)
            .finish()
    }
}

/// Settings of a V4L2 camera (see `docs/design/v4l2.md`).
#[derive(Clone, Debug)]
pub struct V4l2Config {
    /// Device node path; a stable `/dev/v4l/by-id/...` link survives re-plugging into
    /// another USB port.
    pub device: PathBuf,
    /// Wanted width; `None` lets the negotiation pick (largest up to 1920x1080).
    pub width: Option<u32>,
    /// Wanted height (with `width`).
    pub height: Option<u32>,
    /// Wanted frame rate; `None` = the fastest the chosen size offers, up to 30.
    pub fps: Option<u32>,
    /// Wanted pixel format as a fourcc (`"H264"`, `"YUYV"`, `"MJPG"`, `"NV12"`, `"YU12"`);
    /// `None` prefers H.264 from the camera, then raw formats, then MJPEG.
    pub format: Option<crate::kernel::v4l2::Fourcc>,
    /// Which H.264 encoder raw frames go to.
    pub encoder: EncoderChoice,
    /// Target bitrate of the encoder, bits per second (`None`: scaled to the picture size).
    pub bitrate: Option<u32>,
    /// Frames between IDR frames (`None`: two seconds' worth).
    pub keyframe_interval: Option<u32>,
}

/// `encoder = "auto" | "hardware" | "software"` of a V4L2 camera.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EncoderChoice {
    /// The board's V4L2 memory-to-memory H.264 encoder when the probe finds one, falling back
    /// to openh264 if it fails to start.
    Auto,
    /// Only the hardware encoder; the camera reports an error if there is none.
    Hardware,
    /// Only openh264.
    Software,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    recording: RawRecording,
    #[serde(default)]
    index: RawIndex,
    #[serde(default)]
    storage: Vec<RawStorage>,
    #[serde(default)]
    camera: Vec<RawCamera>,
    mqtt: Option<mqtt::RawMqtt>,
    #[serde(default)]
    archive: Vec<crate::archive::settings::RawArchive>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecording {
    sync_interval: Option<String>,
    max_age: Option<String>,
    events_max_age: Option<String>,
    pre_capture: Option<String>,
    post_capture: Option<String>,
    max_duration: Option<String>,
}

impl RawRecording {
    /// The retention and capture defaults (`docs/design/events.md`).
    fn retention(&self) -> Result<Retention> {
        let raw = retention::RawRetention {
            max_age: self.max_age.as_deref(),
            events_max_age: self.events_max_age.as_deref(),
            pre_capture: self.pre_capture.as_deref(),
            post_capture: self.post_capture.as_deref(),
            max_duration: self.max_duration.as_deref(),
        };
        Retention::resolve("recording", raw, &Retention::default())
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    path: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: PathBuf,
    min_free: Option<String>,
    max_bytes: Option<String>,
    events_reserve: Option<String>,
    #[serde(default)]
    require_mount: bool,
}

/// One `[[camera]]` table before its values are checked; also the JSON body of the camera
/// API and an entry of the camera state file, so all three are read by the same code.
#[derive(Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    id: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bitrate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyframe_interval: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_frame_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events_max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pre_capture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_capture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    onvif_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    onvif_events: Option<bool>,
}

/// One camera as written, before its values are checked: a `[[camera]]` table, a JSON body
/// of the camera API, an entry of the camera state file (`config/cameras.rs` reads JSON).
/// Its `Debug` shows only the id (the table may hold a password).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CameraTable(RawCamera);

/// Checks a whole camera list: every table as the config file's `camera[i]`, ids unique, at
/// most [`MAX_CAMERAS`]. Either every camera is valid or nothing is returned.
pub fn check_cameras(tables: &[CameraTable], defaults: &Retention) -> Result<Vec<CameraConfig>> {
    if tables.len() > MAX_CAMERAS {
        return Err(invalid("camera", format!("at most {MAX_CAMERAS} cameras are supported")));
    }
    let mut cameras: Vec<CameraConfig> = Vec::with_capacity(tables.len());
    for (i, t) in tables.iter().enumerate() {
        let cam = camera_from_raw(i, t.0.clone(), defaults)?;
        if cameras.iter().any(|o| o.id == cam.id) {
            return Err(invalid(&format!("camera[{i}].id"), format!("{:?} is used by two cameras", cam.id)));
        }
        cameras.push(cam);
    }
    Ok(cameras)
}

fn yes() -> bool {
    true
}

impl Config {
    /// Loads `path`, or the embedded default when `path` is `None`. Relative storage and
    /// index paths are resolved against the current directory.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        match path {
            None => Config::parse(EMBEDDED_DEFAULT),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Error::io(format!("cannot read config file {}", p.display()), e))?;
                Config::parse(&text).map_err(|e| Error::new(e.kind(), format!("config {}", p.display())).with_source(e))
            }
        }
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string().trim_end().to_owned()))?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config> {
        let sync_interval = parse_duration(raw.recording.sync_interval.as_deref().unwrap_or("2s"))
            .map_err(|why| invalid("recording.sync_interval", why))?;
        if sync_interval < Duration::from_millis(100) || sync_interval > Duration::from_secs(600) {
            return Err(invalid("recording.sync_interval", "must be between 100ms and 10m"));
        }
        let defaults = raw.recording.retention()?;
        let max_age = defaults.max_age;

        if raw.storage.len() > MAX_ROOTS {
            return Err(invalid("storage", format!("at most {} roots are supported", MAX_ROOTS)));
        }
        if raw.storage.is_empty() {
            return Err(invalid("storage", "at least one [[storage]] root is required"));
        }
        let mut storage = Vec::with_capacity(raw.storage.len());
        for (i, s) in raw.storage.into_iter().enumerate() {
            let key = |k: &str| format!("storage[{i}].{k}");
            let min_free = parse_free_space(s.min_free.as_deref().unwrap_or("5%"))
                .map_err(|why| invalid(&key("min_free"), why))?;
            let max_bytes = match &s.max_bytes {
                None => None,
                Some(v) => Some(parse_size(v).map_err(|why| invalid(&key("max_bytes"), why))?),
            };
            if s.path.as_os_str().is_empty() {
                return Err(invalid(&key("path"), "is empty"));
            }
            let path = absolute(&s.path);
            if storage.iter().any(|o: &StorageConfig| o.path == path) {
                return Err(invalid(&key("path"), format!("{} is listed twice", path.display())));
            }
            let events_reserve = retention::events_reserve(&key("events_reserve"), s.events_reserve.as_deref())?;
            storage.push(StorageConfig { path, min_free, max_bytes, events_reserve, require_mount: s.require_mount });
        }
        let index_path = match raw.index.path {
            Some(p) => absolute(&p),
            None => storage[0].path.join("index.db"),
        };

        let camera_tables: Vec<CameraTable> = raw.camera.into_iter().map(CameraTable).collect();
        let cameras = check_cameras(&camera_tables, &defaults)?;
        let archive = archive::from_raw(raw.archive)?;
        Ok(Config {
            server: ServerConfig::from_raw(raw.server, &cameras.iter().map(|c| c.id.as_str()).collect::<Vec<_>>())?,
            recording: RecordingConfig { sync_interval, max_age, retention: defaults },
            index_path,
            storage,
            cameras,
            mqtt: raw.mqtt.map(MqttConfig::from_raw).transpose()?,
            camera_tables,
            archive,
        })
    }
}

impl Config {
    /// The camera state file: `[server] state_file`, else `cameras.json` next to the index
    /// (the data partition; `docs/design/crash-safety.md`, "The camera state file").
    pub fn state_file(&self) -> PathBuf {
        self.server.state_file.clone().unwrap_or_else(|| self.index_path.with_file_name("cameras.json"))
    }
}

/// Whether `id` is usable as a camera id: it becomes a directory and file-name component.
pub fn valid_camera_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn camera_from_raw(i: usize, c: RawCamera, defaults: &Retention) -> Result<CameraConfig> {
    let key = |k: &str| format!("camera[{i}].{k}");
    if !valid_camera_id(&c.id) {
        return Err(invalid(&key("id"), format!("{:?} must be 1-64 characters of A-Z a-z 0-9 - _", c.id)));
    }
    let kinds = c.source.is_some() as u8 + c.url.is_some() as u8 + c.device.is_some() as u8;
    if kinds != 1 {
        return Err(invalid(
            &key("source"),
            "set exactly one of source = \"testsrc\", url = \"rtsp://...\" or device = \"/dev/videoN\"",
        ));
    }
    if c.device.is_none() {
        if c.format.is_some() {
            return Err(invalid(&key("format"), "applies to V4L2 cameras (device = ...) only"));
        }
        if c.encoder.is_some() {
            return Err(invalid(&key("encoder"), "applies to V4L2 cameras (device = ...) only"));
        }
    }
    if c.url.is_none() && c.audio.is_some() {
        return Err(invalid(&key("audio"), "applies to RTSP cameras (url = ...) only"));
    }
    let source = if c.source.is_some() {
        SourceConfig::Testsrc(testsrc_from_raw(&key, &c)?)
    } else if c.url.is_some() {
        SourceConfig::Rtsp(rtsp_from_raw(&key, &c)?)
    } else {
        SourceConfig::V4l2(v4l2_from_raw(&key, &c)?)
    };
    let raw_retention = retention::RawRetention {
        max_age: c.max_age.as_deref(),
        events_max_age: c.events_max_age.as_deref(),
        pre_capture: c.pre_capture.as_deref(),
        post_capture: c.post_capture.as_deref(),
        max_duration: c.max_duration.as_deref(),
    };
    let retention = Retention::resolve(&format!("camera[{i}]"), raw_retention, defaults)?;
    let login = match &source {
        SourceConfig::Rtsp(r) => rtsp_login(r),
        _ => (c.username.clone(), c.password.clone()),
    };
    let motion = motion::check(&key, c.onvif_device.as_deref(), c.onvif_events, login)?;
    Ok(CameraConfig { id: c.id, enabled: c.enabled, source, retention, motion })
}

/// An RTSP camera's login for ONVIF: its `username`/`password` keys, else its URL's (as
/// the RTSP client takes them, percent-decoded).
fn rtsp_login(r: &RtspConfig) -> (Option<String>, Option<String>) {
    let url = url::Url::parse(&r.url).ok();
    let decode = |s: &str| crate::text::percent_decode(s, false);
    let user = url.as_ref().filter(|u| !u.username().is_empty()).map(|u| decode(u.username()));
    let pass = url.as_ref().and_then(|u| u.password()).map(decode);
    (r.username.clone().or(user), r.password.clone().or(pass))
}

fn testsrc_from_raw(key: &dyn Fn(&str) -> String, c: &RawCamera) -> Result<TestsrcConfig> {
    let s = c.source.as_deref().expect("exactly one source kind was checked before");
    if s != "testsrc" {
        return Err(invalid(&key("source"), format!("{s:?} is unknown; the only built-in source is \"testsrc\"")));
    }
    let width = c.width.unwrap_or(640);
    let height = c.height.unwrap_or(480);
    if !(16..=3840).contains(&width) || width % 2 != 0 {
        return Err(invalid(&key("width"), "must be an even number from 16 to 3840"));
    }
    if !(16..=2160).contains(&height) || height % 2 != 0 {
        return Err(invalid(&key("height"), "must be an even number from 16 to 2160"));
    }
    let fps = c.fps.unwrap_or(15);
    if !(1..=60).contains(&fps) {
        return Err(invalid(&key("fps"), "must be from 1 to 60"));
    }
    let bitrate = c.bitrate.unwrap_or(500_000);
    if !(20_000..=50_000_000).contains(&bitrate) {
        return Err(invalid(&key("bitrate"), "must be from 20000 to 50000000 bits per second"));
    }
    let keyframe_interval = c.keyframe_interval.unwrap_or(fps * 2);
    if !(1..=600).contains(&keyframe_interval) {
        return Err(invalid(&key("keyframe_interval"), "must be from 1 to 600 frames"));
    }
    let speed = c.speed.unwrap_or(1.0);
    if !(speed.is_finite() && (0.1..=100.0).contains(&speed)) {
        return Err(invalid(&key("speed"), "must be from 0.1 to 100"));
    }
    Ok(TestsrcConfig { width, height, fps, bitrate, keyframe_interval, speed })
}

fn rtsp_from_raw(key: &dyn Fn(&str) -> String, c: &RawCamera) -> Result<RtspConfig> {
    let url = c.url.clone().expect("exactly one source kind was checked before");
    if !url.starts_with("rtsp://") && !url.starts_with("rtsps://") {
        return Err(invalid(&key("url"), "must start with rtsp://"));
    }
    let transport = match c.transport.as_deref() {
        None | Some("tcp") => Transport::Tcp,
        Some("udp") => Transport::Udp,
        Some(other) => return Err(invalid(&key("transport"), format!("{other:?} must be \"tcp\" or \"udp\""))),
    };
    let timeout = |k: &str, v: &Option<String>, default: &str| -> Result<Duration> {
        let d = parse_duration(v.as_deref().unwrap_or(default)).map_err(|why| invalid(&key(k), why))?;
        if d < Duration::from_millis(500) || d > Duration::from_secs(600) {
            return Err(invalid(&key(k), "must be between 500ms and 10m"));
        }
        Ok(d)
    };
    Ok(RtspConfig {
        url,
        username: c.username.clone(),
        password: c.password.clone(),
        transport,
        first_frame_timeout: timeout("first_frame_timeout", &c.first_frame_timeout, "30s")?,
        frame_timeout: timeout("frame_timeout", &c.frame_timeout, "5s")?,
        audio: c.audio.unwrap_or(true),
    })
}

fn v4l2_from_raw(key: &dyn Fn(&str) -> String, c: &RawCamera) -> Result<V4l2Config> {
    let device = c.device.clone().expect("exactly one source kind was checked before");
    if !device.is_absolute() {
        return Err(invalid(&key("device"), "must be an absolute path like /dev/video0"));
    }
    if c.width.is_some() != c.height.is_some() {
        return Err(invalid(&key("width"), "set width and height together"));
    }
    if let (Some(w), Some(h)) = (c.width, c.height) {
        if !(16..=4096).contains(&w) || w % 2 != 0 || !(16..=4096).contains(&h) || h % 2 != 0 {
            return Err(invalid(&key("width"), "width and height must be even numbers from 16 to 4096"));
        }
    }
    if let Some(fps) = c.fps {
        if !(1..=120).contains(&fps) {
            return Err(invalid(&key("fps"), "must be from 1 to 120"));
        }
    }
    let format = match &c.format {
        None => None,
        Some(f) if f.len() == 4 && f.is_ascii() => crate::kernel::v4l2::Fourcc::parse(f),
        Some(f) => return Err(invalid(&key("format"), format!("{f:?} is not a fourcc like \"YUYV\" or \"H264\""))),
    };
    let encoder = match c.encoder.as_deref().unwrap_or("auto") {
        "auto" => EncoderChoice::Auto,
        "hardware" => EncoderChoice::Hardware,
        "software" => EncoderChoice::Software,
        other => {
            return Err(invalid(&key("encoder"), format!("{other:?} must be \"auto\", \"hardware\" or \"software\"")))
        }
    };
    if let Some(b) = c.bitrate {
        if !(25_000..=25_000_000).contains(&b) {
            return Err(invalid(&key("bitrate"), "must be from 25000 to 25000000 bits per second"));
        }
    }
    if let Some(k) = c.keyframe_interval {
        if !(1..=600).contains(&k) {
            return Err(invalid(&key("keyframe_interval"), "must be from 1 to 600 frames"));
        }
    }
    if c.speed.is_some() {
        return Err(invalid(&key("speed"), "applies to the testsrc camera only"));
    }
    Ok(V4l2Config {
        device,
        width: c.width,
        height: c.height,
        fps: c.fps,
        format,
        encoder,
        bitrate: c.bitrate,
        keyframe_interval: c.keyframe_interval,
    })
}

#[cfg(test)]
mod tests;
