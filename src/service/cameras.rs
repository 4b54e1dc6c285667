//! The running cameras, changed while the service runs: over the API
//! (`src/http/manage.rs`) and by `SIGHUP` (the TOML file's cameras again).
//!
//! Rules:
//! 1. Every change is checked whole by the config file's code ([`check_cameras`]) before
//!    anything happens: an invalid change changes nothing, and its error names the key.
//! 2. Changes are serialized (one lock); each is persisted to the state file
//!    ([`super::state_file`], `docs/design/crash-safety.md`, "The camera state file")
//!    before any camera stops or starts, so a power cut leaves the old or the new list.
//! 3. Only cameras whose table changed stop and start; every other camera keeps its threads,
//!    counters and live view and loses no frame. A stopped camera's writer seals its chunk
//!    before its replacement starts (the new one continues after the old one's last frame).
//! 4. A removed camera's footage stays in the index until the reaper takes it; the API keeps
//!    serving it by id.
//! 5. Each camera has its own stop signal; the service's shutdown fires all of them.
//!
//! Cost: one mutex, the tables (a few hundred bytes per camera); no thread of its own.

use super::motion::MotionSink;
use super::recorder::{start_camera, CameraHandle};
use super::state_file;
use super::status::CameraStats;
use crate::chunk::writer::WriterContext;
use crate::config::{check_cameras, CameraConfig, CameraTable, Retention};
use crate::error::Result;
use crate::http::state::{no_camera, CameraControl, CameraEntry, CameraList, Change};
use crate::shutdown::Shutdown;
use crate::source::start::Runtimes;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A camera that records, with what it was started from.
struct Running {
    table: CameraTable,
    config: CameraConfig,
    handle: CameraHandle,
    stop: Shutdown,
}

/// What changes under the lock.
struct Inner {
    /// The list as written, in order.
    tables: Vec<CameraTable>,
    /// The recording cameras.
    running: Vec<Running>,
    /// Counters of cameras that do not record (disabled, or failed to start), kept so
    /// their entries in the API do not change on every change.
    idle: Vec<(String, Arc<CameraStats>)>,
    /// Shared source runtimes (RTSP's is started by the first RTSP camera).
    runtimes: Option<Runtimes>,
    /// Motion threads (`super::motion`), also of stopped cameras until they end: joined at
    /// the service's end, finished ones dropped at every change.
    motion: Vec<std::thread::JoinHandle<()>>,
}

/// The service's cameras (see the module doc).
pub struct CameraManager {
    inner: Mutex<Inner>,
    /// Every running camera's stop signal, apart from `inner` so that the service's shutdown
    /// never waits for a change in progress.
    stops: Arc<Mutex<Vec<Shutdown>>>,
    ctx: WriterContext,
    shutdown: Shutdown,
    max_viewers: usize,
    state_file: PathBuf,
    list: Arc<CameraList>,
    /// The retention and capture defaults every camera's table is checked with.
    retention: Retention,
    /// Where cameras' own motion goes (`None`: motion is not listened to, e.g. in tests).
    motion: Option<MotionSink>,
}

impl CameraManager {
    /// Starts `tables` (already checked: they come from the config or the state file).
    /// Cameras that cannot start are logged and left idle. Nothing is persisted here.
    pub fn start(
        tables: Vec<CameraTable>,
        ctx: WriterContext,
        shutdown: &Shutdown,
        max_viewers: usize,
        state_file: PathBuf,
        retention: Retention,
        motion: Option<MotionSink>,
    ) -> Result<Arc<CameraManager>> {
        let configs = check_cameras(&tables, &retention)?;
        let runtimes = Runtimes::start(&configs, shutdown)?;
        let stops: Arc<Mutex<Vec<Shutdown>>> = Arc::default();
        let s = stops.clone();
        shutdown.on_trigger(move || s.lock().unwrap_or_else(|p| p.into_inner()).iter().for_each(Shutdown::trigger));
        let m = Arc::new(CameraManager {
            inner: Mutex::new(Inner {
                tables: Vec::new(),
                running: Vec::new(),
                idle: Vec::new(),
                runtimes: Some(runtimes),
                motion: Vec::new(),
            }),
            stops,
            ctx,
            shutdown: shutdown.clone(),
            max_viewers,
            state_file,
            list: Arc::new(CameraList::new(Vec::new())),
            retention,
            motion,
        });
        m.switch(&mut m.lock(), tables, configs);
        Ok(m)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The list the API serves (replaced on every change).
    pub fn list(&self) -> Arc<CameraList> {
        self.list.clone()
    }

    /// How many cameras record now.
    pub fn recording(&self) -> usize {
        self.lock().running.len()
    }

    /// The recording cameras and their counters, for the watchdog.
    pub fn watched(&self) -> Vec<(CameraConfig, Arc<CameraStats>)> {
        self.lock().running.iter().map(|r| (r.config.clone(), r.handle.stats.clone())).collect()
    }

    /// Replaces the whole list (`SIGHUP`: the TOML file's cameras), persisted, applied as
    /// any change.
    pub fn replace_all(&self, tables: Vec<CameraTable>) -> Result<()> {
        let mut inner = self.lock();
        self.commit(&mut inner, tables)
    }

    /// Rules 1 to 3: check, persist, switch.
    fn commit(&self, inner: &mut Inner, tables: Vec<CameraTable>) -> Result<()> {
        let configs = check_cameras(&tables, &self.retention)?;
        state_file::save(&self.state_file, &tables)?;
        self.switch(inner, tables, configs);
        Ok(())
    }

    /// Stops the cameras whose table changed or went, starts the new and changed ones, and
    /// publishes the new list.
    fn switch(&self, inner: &mut Inner, tables: Vec<CameraTable>, configs: Vec<CameraConfig>) {
        let keep = |r: &Running| tables.iter().any(|t| t == &r.table && t.enabled());
        let (kept, gone): (Vec<Running>, Vec<Running>) = std::mem::take(&mut inner.running).into_iter().partition(keep);
        inner.running = kept;
        for r in gone {
            log::info!("camera {}: stopping (its configuration changed or it was removed)", r.config.id);
            r.stop.trigger();
            r.handle.join();
        }
        self.stops.lock().unwrap_or_else(|p| p.into_inner()).retain(|s| !s.is_triggered());
        for (t, c) in tables.iter().zip(&configs) {
            if !t.enabled() || inner.running.iter().any(|r| r.config.id == c.id) {
                continue;
            }
            match self.start_one(inner, c) {
                Ok((handle, stop)) => {
                    inner.idle.retain(|(id, _)| id != &c.id);
                    inner.running.push(Running { table: t.clone(), config: c.clone(), handle, stop });
                }
                Err(e) => log::error!("camera {}: cannot start: {e}", c.id),
            }
        }
        inner.idle.retain(|(id, _)| configs.iter().any(|c| &c.id == id));
        let entries = configs.iter().map(|c| match inner.running.iter().find(|r| r.config.id == c.id) {
            Some(r) => CameraEntry::new(c, &r.handle.stats, Some(r.handle.live.clone())),
            None => {
                let stats = match inner.idle.iter().find(|(id, _)| id == &c.id) {
                    Some((_, s)) => s.clone(),
                    None => {
                        let s = Arc::new(CameraStats::default());
                        inner.idle.push((c.id.clone(), s.clone()));
                        s
                    }
                };
                CameraEntry::new(c, &stats, None)
            }
        });
        let entries: Vec<CameraEntry> = entries.collect();
        self.list.replace(entries);
        inner.tables = tables;
    }

    /// Starts one camera with its own stop signal (rule 5).
    fn start_one(&self, inner: &mut Inner, c: &CameraConfig) -> Result<(CameraHandle, Shutdown)> {
        let runtimes = inner.runtimes.as_mut().ok_or_else(|| crate::err!(Busy, "the service is stopping"))?;
        runtimes.ensure_for(c, &self.shutdown)?;
        let stop = Shutdown::new();
        let handle = start_camera(c, self.ctx.clone(), runtimes, &stop, self.max_viewers)?;
        // The watchdog gives a new camera's source loop its limit from now.
        handle.stats.beat_source();
        if let Some(sink) = &self.motion {
            inner.motion.retain(|t| !t.is_finished());
            match super::motion::spawn(c, sink.clone(), &stop) {
                Ok(t) => inner.motion.extend(t),
                // Recording matters more: the camera records without its motion events.
                Err(e) => log::error!("camera {}: {e}", c.id),
            }
        }
        let mut stops = self.stops.lock().unwrap_or_else(|p| p.into_inner());
        stops.push(stop.clone());
        if self.shutdown.is_triggered() {
            stop.trigger();
        }
        Ok((handle, stop))
    }

    /// After shutdown fired: waits for the runtimes and every camera's threads (writers
    /// seal their chunks).
    pub fn join(&self) {
        let mut inner = self.lock();
        if let Some(rt) = inner.runtimes.take() {
            rt.join();
        }
        for r in std::mem::take(&mut inner.running) {
            r.stop.trigger();
            r.handle.join();
        }
        for t in std::mem::take(&mut inner.motion) {
            let _ = t.join();
        }
    }
}

impl CameraControl for CameraManager {
    fn apply(&self, change: Change) -> Result<()> {
        let mut inner = self.lock();
        let mut tables = inner.tables.clone();
        let at = |id: &str| tables.iter().position(|t| t.id() == id).ok_or_else(|| no_camera(id));
        match change {
            Change::Add(t) => tables.push(t),
            Change::Replace(t) => {
                let i = at(t.id())?;
                tables[i] = t;
            }
            Change::Remove(id) => {
                let i = at(&id)?;
                tables.remove(i);
            }
            Change::SetEnabled(id, on) => {
                let i = at(&id)?;
                tables[i] = tables[i].with_enabled(on);
            }
        }
        self.commit(&mut inner, tables)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FreeSpace, StorageConfig};
    use crate::index::Index;
    use crate::storage::Storage;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    fn table(json: &str) -> CameraTable {
        CameraTable::from_json(json.as_bytes(), None).unwrap()
    }

    fn manager(dir: &std::path::Path, shutdown: &Shutdown) -> Arc<CameraManager> {
        let index = Arc::new(Index::open_in_memory().unwrap());
        let root = StorageConfig {
            path: dir.join("data"),
            min_free: FreeSpace::Bytes(0),
            max_bytes: None,
            require_mount: false,
            events_reserve: None,
        };
        std::fs::create_dir_all(&root.path).unwrap();
        let storage = Arc::new(Storage::open(&[root], &index).unwrap());
        let ctx =
            WriterContext { storage, index, on_space_pressure: Arc::new(|| {}), sync_interval: Duration::from_secs(1) };
        let keep = table(r#"{"id": "keep", "source": "testsrc", "width": 64, "height": 48, "fps": 5}"#);
        CameraManager::start(vec![keep], ctx, shutdown, 2, dir.join("cameras.json"), Retention::default(), None)
            .unwrap()
    }

    fn stats(m: &CameraManager, id: &str) -> Arc<CameraStats> {
        m.list().snapshot().iter().find(|c| c.config.id == id).unwrap().stats.clone()
    }

    /// Rules 1 to 3 and 5: a bad change changes nothing; a change restarts only its camera
    /// and is saved; shutdown stops every camera, also those added later.
    #[test]
    fn only_the_changed_camera_restarts_and_every_change_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let shutdown = Shutdown::new();
        let m = manager(dir.path(), &shutdown);
        let keep = stats(&m, "keep");
        let add = r#"{"id": "new", "source": "testsrc", "width": 64, "height": 48, "fps": 5}"#;
        m.apply(Change::Add(table(add))).unwrap();
        assert_eq!(m.recording(), 2);
        let saved = |p: &std::path::Path| -> Vec<String> {
            state_file::load(p).unwrap().unwrap().iter().map(|t| t.id().to_owned()).collect()
        };
        assert_eq!(saved(&dir.path().join("cameras.json")), ["keep", "new"]);

        let bad = r#"{"id": "x", "url": "http://nope"}"#;
        let e = m.apply(Change::Add(table(bad))).unwrap_err();
        assert_eq!(e.to_string(), "camera[2].url: must start with rtsp://");
        assert_eq!(m.apply(Change::Remove("nope".into())).unwrap_err().kind(), crate::error::ErrorKind::NotFound);
        assert_eq!(m.list().snapshot().len(), 2);

        let new_before = stats(&m, "new");
        let changed = r#"{"id": "new", "source": "testsrc", "width": 64, "height": 48, "fps": 10}"#;
        m.apply(Change::Replace(table(changed))).unwrap();
        assert!(!Arc::ptr_eq(&new_before, &stats(&m, "new")), "the changed camera restarted");
        assert!(Arc::ptr_eq(&keep, &stats(&m, "keep")), "the other camera kept running");
        m.apply(Change::SetEnabled("new".into(), false)).unwrap();
        assert_eq!(m.recording(), 1);
        m.apply(Change::Remove("new".into())).unwrap();
        assert_eq!(saved(&dir.path().join("cameras.json")), ["keep"]);
        assert!(Arc::ptr_eq(&keep, &stats(&m, "keep")));

        m.apply(Change::Add(table(add))).unwrap();
        let new = stats(&m, "new");
        shutdown.trigger();
        m.join();
        let frames = (keep.frames_received.load(Relaxed), new.frames_received.load(Relaxed));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            frames,
            (keep.frames_received.load(Relaxed), new.frames_received.load(Relaxed)),
            "every camera stopped"
        );
    }
}
