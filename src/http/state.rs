//! What the HTTP handlers read: the camera list, the index (through the API's own readers),
//! the storage roots, the live counters of cameras and reaper, and the access settings.
//! Shared read-only (counters are atomics); the camera list can be replaced while the
//! service runs (handlers take a snapshot per request).

use super::auth::Tokens;
use super::host::HostPolicy;
use super::session::Sessions;
use crate::config::{CameraConfig, CameraTable, Config};
use crate::error::{ErrorKind, Result};
use crate::index::readers::Readers;
use crate::index::Index;
use crate::service::status::CameraStats;
use crate::storage::reaper::ReaperStats;
use crate::storage::Storage;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// One configured camera and its counters.
#[derive(Clone)]
pub struct CameraEntry {
    /// Its configuration.
    pub config: Arc<CameraConfig>,
    /// Its counters (idle for a disabled camera).
    pub stats: Arc<CameraStats>,
    /// Its live view (none for a camera that is not recording).
    pub live: Option<Arc<crate::live::hub::LiveHub>>,
}

impl CameraEntry {
    /// A camera, its counters and its live view.
    pub fn new(
        config: &CameraConfig,
        stats: &Arc<CameraStats>,
        live: Option<Arc<crate::live::hub::LiveHub>>,
    ) -> CameraEntry {
        CameraEntry { config: Arc::new(config.clone()), stats: stats.clone(), live }
    }
}

/// The cameras the API serves, replaceable at run time (cameras added over the API later):
/// readers take a snapshot, a writer swaps in a new list and tells the listeners (MQTT's
/// discovery follows the list that way).
pub struct CameraList {
    cameras: RwLock<Arc<[CameraEntry]>>,
    /// Called after every replace; each must be cheap (set a flag, wake a thread): the camera
    /// manager holds its lock while they run.
    listeners: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl CameraList {
    /// A list of these cameras.
    pub fn new(cameras: Vec<CameraEntry>) -> CameraList {
        CameraList { cameras: RwLock::new(cameras.into()), listeners: Mutex::default() }
    }

    /// The cameras now, in config order.
    pub fn snapshot(&self) -> Arc<[CameraEntry]> {
        self.cameras.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the list; requests already running keep the snapshot they took.
    pub fn replace(&self, cameras: Vec<CameraEntry>) {
        *self.cameras.write().unwrap_or_else(|p| p.into_inner()) = cameras.into();
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).iter().for_each(|f| f());
    }

    /// Calls `f` after every later [`CameraList::replace`].
    pub fn on_change(&self, f: impl Fn() + Send + Sync + 'static) {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(f));
    }
}

/// One change of the camera list.
#[derive(Debug)]
pub enum Change {
    /// Add a camera (its id must be new).
    Add(CameraTable),
    /// Replace the camera with the table's id.
    Replace(CameraTable),
    /// Remove a camera (its footage stays until the reaper takes it).
    Remove(String),
    /// Start (`true`) or stop recording a camera.
    SetEnabled(String, bool),
}

/// What the service does with a change: check the whole new list as the config file is
/// checked, persist it, then stop and start only the cameras it changes. Changes are
/// serialized; an invalid change changes nothing. Blocking (it joins stopped threads).
pub trait CameraControl: Send + Sync {
    /// Applies `change`; `InvalidArgument` names the key, `NotFound` an unknown id.
    fn apply(&self, change: Change) -> Result<()>;
}

/// A change's error kind for ids that are not cameras.
pub fn no_camera(id: &str) -> crate::error::Error {
    crate::error::Error::new(ErrorKind::NotFound, format!("no camera {id:?}"))
}

/// The admin token: `token`, else the one in `token_file` (made on first start).
fn admin_token(s: &crate::config::ServerConfig) -> Result<Option<String>> {
    Ok(match (&s.token, &s.token_file) {
        (Some(t), _) => Some(t.expose().to_owned()),
        (None, Some(path)) => {
            let (t, made) = super::token_file::load_or_create(path)?;
            if made {
                log::warn!("made a new API token in {} (first start); `edgenvr status` shows it", path.display());
            }
            Some(t)
        }
        (None, None) => None,
    })
}

/// What the service hands the API.
pub struct Parts {
    /// The index (its running totals; the API reads rows through its own readers).
    pub index: Arc<Index>,
    /// Storage roots.
    pub storage: Arc<Storage>,
    /// Every configured camera, in config order (the service replaces the list when
    /// cameras change).
    pub cameras: Arc<CameraList>,
    /// The reaper's counters.
    pub reaper: Arc<ReaperStats>,
    /// Events: the one way to start and end them (so MQTT hears of it).
    pub events: Arc<crate::events::Events>,
    /// Who changes the camera list (`None`: the API cannot, e.g. in tests).
    pub control: Option<Arc<dyn CameraControl>>,
    /// The MQTT client's counters, when `[mqtt]` is configured and it started.
    pub mqtt: Option<Arc<crate::mqtt::MqttStats>>,
}

/// Everything the API serves from.
pub struct AppState {
    /// The writers' index: running totals for `/status`.
    pub index: Arc<Index>,
    /// The API's read-only index connections.
    pub readers: Readers,
    /// Storage roots.
    pub storage: Arc<Storage>,
    /// Events (started and ended through it; read through [`AppState::readers`]).
    pub events: Arc<crate::events::Events>,
    /// The cameras.
    pub cameras: Arc<CameraList>,
    /// Who changes the camera list.
    pub control: Option<Arc<dyn CameraControl>>,
    /// The MQTT client's counters (status and health), when it runs.
    pub mqtt: Option<Arc<crate::mqtt::MqttStats>>,
    /// Whether an ONVIF discovery scan runs (one at a time).
    pub scanning: AtomicBool,
    /// The reaper's counters.
    pub reaper: Arc<ReaperStats>,
    /// When the service started.
    pub started: Instant,
    /// The admin and viewer tokens (replaced by `SIGHUP`: [`AppState::reload_tokens`]).
    tokens: RwLock<Arc<Tokens>>,
    /// The names the API answers to.
    pub hosts: HostPolicy,
    /// Login sessions.
    pub sessions: Sessions,
    /// Problems of the setup that status shows (e.g. listening beyond loopback with no
    /// token).
    pub warnings: Vec<String>,
    /// Thumbnails (decoded in a child process, one at a time, cached).
    pub thumbs: crate::thumb::Thumbnailer,
    /// The `[[archive]]` targets, for `/status`, health and exports' fetch-back
    /// (`docs/design/archive.md`).
    pub archive: Vec<crate::archive::settings::ArchiveConfig>,
    /// This box's name in an archive bucket (`[server] box_id`).
    pub box_id: String,
}

impl AppState {
    /// The state for `config`: reads (or makes) the token file, opens the readers, and
    /// warns loudly when the API is open to the network.
    pub fn new(config: &Config, parts: Parts) -> Result<AppState> {
        let s = &config.server;
        let admin = admin_token(s)?;
        let mut warnings = Vec::new();
        if admin.is_none() && !s.listen.ip().is_loopback() {
            let w = format!(
                "the API listens on {} with no token: anyone who can reach it can watch and download \
                 footage; set [server] token_file (or token)",
                s.listen
            );
            log::warn!("!!! {w} !!!");
            warnings.push(w);
        }
        let tokens = RwLock::new(Arc::new(Tokens::new(admin, &s.viewer_tokens)));
        let readers = Readers::open(parts.index.clone(), Some(&config.index_path));
        Ok(AppState {
            index: parts.index,
            readers,
            storage: parts.storage,
            events: parts.events,
            cameras: parts.cameras,
            control: parts.control,
            mqtt: parts.mqtt,
            scanning: AtomicBool::new(false),
            reaper: parts.reaper,
            started: Instant::now(),
            tokens,
            hosts: HostPolicy::for_this_host(&s.allowed_hosts),
            sessions: Sessions::default(),
            warnings,
            thumbs: crate::thumb::Thumbnailer::for_service(),
            archive: config.archive.clone(),
            box_id: s.box_id.clone(),
        })
    }

    /// A camera by id.
    pub fn camera(&self, id: &str) -> Option<CameraEntry> {
        self.cameras.snapshot().iter().find(|c| c.config.id == id).cloned()
    }

    /// The admin and viewer tokens now.
    pub fn tokens(&self) -> Arc<Tokens> {
        self.tokens.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `SIGHUP`: takes `token`, `token_file` and `viewer_tokens` from `config`. Changed
    /// tokens end every login session (one made with a revoked token must not outlive it).
    /// Removing the admin token is refused: whether the API may be open without one is
    /// decided (and warned about) at start, so that needs a restart. Returns whether the
    /// tokens changed.
    pub fn reload_tokens(&self, config: &Config) -> Result<bool> {
        let new = Tokens::new(admin_token(&config.server)?, &config.server.viewer_tokens);
        let mut tokens = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        if tokens.configured() && !new.configured() {
            crate::bail!(InvalidArgument, "server.token: removing the admin token needs a restart");
        }
        if **tokens == new {
            return Ok(false);
        }
        *tokens = Arc::new(new);
        self.sessions.clear();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::auth::Role;

    fn state(server: &str) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!("[server]\n{server}\n[[storage]]\npath = \"{}\"\n", dir.path().display());
        let config = Config::parse(&cfg).unwrap();
        let index = Arc::new(Index::open_in_memory().unwrap());
        let parts = Parts {
            index: index.clone(),
            storage: Arc::new(Storage::open(&config.storage, &index).unwrap()),
            cameras: Arc::new(CameraList::new(Vec::new())),
            reaper: Arc::default(),
            control: None,
            events: Arc::new(crate::events::Events::new(index, &config, crate::time::now_us)),
            mqtt: None,
        };
        (dir, AppState::new(&config, parts).unwrap())
    }

    /// SIGHUP's token reload: a new viewer token works and the old one stops, sessions end;
    /// the same tokens change nothing; removing the admin token is refused.
    #[test]
    fn tokens_reload_and_the_admin_token_cannot_be_removed() {
        let (dir, s) = state("token = \"admin-token-0123456789\"\nviewer_tokens = [\"viewer-token-0123456789\"]");
        s.sessions.create(Role::Admin).unwrap();
        let reload = |server: &str| {
            let cfg = format!("[server]\n{server}\n[[storage]]\npath = \"{}\"\n", dir.path().display());
            s.reload_tokens(&Config::parse(&cfg).unwrap())
        };
        let same = "token = \"admin-token-0123456789\"\nviewer_tokens = [\"viewer-token-0123456789\"]";
        assert!(!reload(same).unwrap());
        assert_eq!(s.sessions.len(), 1, "unchanged tokens keep sessions");
        assert!(
            reload("token = \"admin-token-0123456789\"\nviewer_tokens = [\"viewer-token-new-0123456789\"]").unwrap()
        );
        assert_eq!(s.tokens().role_for("viewer-token-0123456789"), None);
        assert!(s.tokens().role_for("viewer-token-new-0123456789").is_some());
        assert!(s.sessions.is_empty(), "changed tokens end sessions");
        let e = reload("").unwrap_err();
        assert!(e.to_string().contains("removing the admin token needs a restart"), "{e}");
        assert_eq!(s.tokens().role_for("admin-token-0123456789"), Some(Role::Admin));
    }
}
