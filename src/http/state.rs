//! What the HTTP handlers read: the configuration, the index, the storage roots, and the
//! live counters of cameras and reaper. Shared read-only (counters are atomics).

use crate::config::{CameraConfig, Config};
use crate::index::Index;
use crate::service::status::CameraStats;
use crate::storage::reaper::ReaperStats;
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Instant;

/// One configured camera and its counters.
pub struct CameraEntry {
    /// Its configuration.
    pub config: CameraConfig,
    /// Its counters (idle for a disabled camera).
    pub stats: Arc<CameraStats>,
    /// Its live view (none for a camera that is not recording).
    pub live: Option<Arc<crate::live::hub::LiveHub>>,
}

/// Everything the API serves from.
pub struct AppState {
    /// The configuration (for cameras and server settings).
    pub config: Config,
    /// The index.
    pub index: Arc<Index>,
    /// Storage roots.
    pub storage: Arc<Storage>,
    /// Every configured camera, in config order.
    pub cameras: Vec<CameraEntry>,
    /// The reaper's counters.
    pub reaper: Arc<ReaperStats>,
    /// When the service started.
    pub started: Instant,
}

impl AppState {
    /// A camera by id.
    pub fn camera(&self, id: &str) -> Option<&CameraEntry> {
        self.cameras.iter().find(|c| c.config.id == id)
    }
}
