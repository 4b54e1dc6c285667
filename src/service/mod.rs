//! The running service, `edgenvr run`, in the steps [`run`] lists: open the index and the
//! storage roots (recovering from the last stop), start the reaper, every enabled camera and
//! the HTTP API, tell systemd, wait for the shutdown signal, stop.
//!
//! - [`recorder`]: one camera's threads (source → bounded queue → chunk writer).
//! - [`cameras`]: the running cameras, changed over the API and by `SIGHUP`; [`state_file`]
//!   keeps the list as last changed; [`motion`] turns cameras' own motion into events.
//! - [`status`]: live counters written along the data path, read by status and health.
//! - [`watchdog`] and [`notify`]: systemd's readiness and watchdog protocol.
//! - [`allocator`]: glibc's mmap threshold fixed, so a camera session's memory leaves with it.
//!
//! Shutdown order: sources stop → writers drain their queues and seal their chunks → the
//! reaper stops → the archive uploader ends its upload (it stops reading at the signal) →
//! the index connection closes (last commit done by the writers).

pub mod allocator;
pub mod cameras;
pub mod motion;
pub mod notify;
pub mod recorder;
pub mod state_file;
pub mod status;
pub mod watchdog;

use crate::chunk::writer::WriterContext;
use crate::config::Config;
use crate::config::{check_cameras, CameraTable};
use crate::error::{Error, Result};
use crate::http::state::{CameraControl, Parts};
use crate::http::HttpHandle;
use crate::index::Index;
use crate::service::cameras::CameraManager;
use crate::service::notify::Notifier;
use crate::shutdown::Shutdown;
use crate::storage::reaper::{Reaper, ReaperHandle, ReaperStats};
use crate::storage::Storage;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Runs the recorder until `shutdown` fires: each step below is one function, in the order
/// the service comes up; `stop` takes it down in the order the module doc gives.
/// `SIGHUP` reloads the cameras of the config file at `config_path` (the embedded default
/// when `None`); `hangups` brings them (and a wake-up when shutdown fires).
pub fn run(config: &Config, config_path: Option<&Path>, shutdown: Shutdown, hangups: Receiver<()>) -> Result<()> {
    allocator::tune();
    // Held for the service's life: no second service, no repair of the chunks it writes.
    let _lock = crate::index::lock::IndexLock::for_service(&config.index_path, crate::index::lock::SERVICE_PATIENCE)?;
    let (index, storage) = open_index_and_storage(config)?;
    let events = Arc::new(crate::events::Events::new(index.clone(), config, crate::time::now_us));
    events.close_overdue()?;
    let reaper = start_reaper(config, &index, &storage, &shutdown)?;
    let motion = motion::into_events(events.clone());
    let cameras = start_cameras(config, (&index, motion), &storage, &reaper.handle, &shutdown)?;
    // Footage the index does not know, found in the background once recording runs.
    let indexer = crate::storage::indexer::start(&index, &storage, reaper.handle.clone(), &shutdown)?;
    let archive = start_archive(config, &index, &storage, &shutdown);
    let mqtt = start_mqtt(config, &index, &events, &storage, &cameras, &shutdown);
    let mqtt_stats = mqtt.as_ref().map(|m| m.stats.clone());
    let api = start_api(config, (&index, &events, mqtt_stats), &storage, &cameras, &reaper.stats, &shutdown);
    let notifier = Notifier::from_env();
    let watchdog = notify_ready(&notifier, config, &cameras, &shutdown)?;
    log::info!(
        "recording {} camera(s) to {}; index {}",
        cameras.recording(),
        config.storage.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>().join(", "),
        config.index_path.display()
    );
    // The main thread waits for SIGHUP (reloading the config file's cameras) and, every
    // few seconds, closes events left open past their max_duration.
    while !shutdown.is_triggered() {
        match hangups.recv_timeout(crate::events::CLOSE_CHECK) {
            Ok(()) if !shutdown.is_triggered() => reload(config_path, &cameras, api.as_ref()),
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                shutdown.wait_timeout(crate::events::CLOSE_CHECK);
            }
        }
        if let Err(e) = events.close_overdue() {
            log::warn!("events: {e}");
        }
    }
    stop(&notifier, watchdog, cameras, api, reaper);
    let _ = indexer.join();
    if let Some(m) = mqtt {
        m.join();
    }
    if let Some(a) = archive {
        let _ = a.thread.join();
    }
    log::info!("stopped; {} index transactions", index.transactions());
    Ok(())
}

/// Opens the index and the storage roots and recovers what the last stop left open.
fn open_index_and_storage(config: &Config) -> Result<(Arc<Index>, Arc<Storage>)> {
    let index = Arc::new(Index::open(&config.index_path)?);
    let storage = Arc::new(Storage::open(&config.storage, &index)?);
    crate::storage::recovery::recover_at_startup(&index, &storage)?;
    if storage.pick_for_write().is_none() {
        log::error!("no storage root is writable now; cameras will record as soon as one is");
    }
    Ok((index, storage))
}

/// The reaper thread, its wake-up handle and its counters.
struct RunningReaper {
    handle: ReaperHandle,
    thread: JoinHandle<()>,
    stats: Arc<ReaperStats>,
}

fn start_reaper(
    config: &Config,
    index: &Arc<Index>,
    storage: &Arc<Storage>,
    shutdown: &Shutdown,
) -> Result<RunningReaper> {
    let reaper = Reaper::new(index.clone(), storage.clone(), config.recording.max_age, crate::time::now_us)
        .with_classes(crate::storage::reaper::Classes::from_config(config));
    let stats = reaper.stats.clone();
    let (handle, thread) = reaper.spawn(shutdown.clone()).map_err(|e| Error::io("spawning reaper", e))?;
    Ok(RunningReaper { handle, thread, stats })
}

/// The archive uploader (`docs/design/archive.md`), when `[[archive]]` targets are set.
/// Like the API, it matters less than recording: a failure to start is logged, not fatal.
fn start_archive(
    config: &Config,
    index: &Arc<Index>,
    storage: &Arc<Storage>,
    shutdown: &Shutdown,
) -> Option<crate::archive::upload::Uploader> {
    storage.set_fetch_dir(crate::archive::fetch::cache_dir(&config.index_path));
    crate::archive::upload::start(config, index, storage, shutdown)
        .map_err(|e| log::error!("archive: cannot start: {e}; recording without it"))
        .ok()
        .flatten()
}

/// The cameras the service starts with: the state file's list when there is one (the last
/// change over the API or by `SIGHUP`), else the config file's (`src/service/state_file.rs`).
/// A state file that cannot be used is logged and the config file's cameras record.
fn boot_tables(config: &Config) -> Vec<CameraTable> {
    let path = config.state_file();
    match state_file::load(&path)
        .and_then(|t| t.map(|t| check_cameras(&t, &config.recording.retention).map(|_| t)).transpose())
    {
        Ok(Some(tables)) => {
            log::info!(
                "cameras from {} (changed over the API or by SIGHUP; the config file's [[camera]] tables are not used)",
                path.display()
            );
            tables
        }
        Ok(None) => config.camera_tables.clone(),
        Err(e) => {
            log::error!("{e}; recording the config file's cameras instead");
            config.camera_tables.clone()
        }
    }
}

fn start_cameras(
    config: &Config,
    (index, motion): (&Arc<Index>, motion::MotionSink),
    storage: &Arc<Storage>,
    reaper: &ReaperHandle,
    shutdown: &Shutdown,
) -> Result<Arc<CameraManager>> {
    let poke = reaper.clone();
    let ctx = WriterContext {
        storage: storage.clone(),
        index: index.clone(),
        on_space_pressure: Arc::new(move || poke.poke()),
        sync_interval: config.recording.sync_interval,
    };
    let state_file = config.state_file();
    CameraManager::start(
        boot_tables(config),
        ctx,
        shutdown,
        config.server.max_viewers,
        state_file,
        config.recording.retention.clone(),
        Some(motion),
    )
}

/// `SIGHUP`: the config file's cameras replace the running list (persisted like an API
/// change, so they also win at the next start), and the API's tokens (`token`,
/// `token_file`, `viewer_tokens`) are taken again. Everything else needs a restart (README,
/// "Reloading"). A config that does not load changes nothing.
fn reload(config_path: Option<&Path>, cameras: &CameraManager, api: Option<&HttpHandle>) {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => return log::error!("SIGHUP: {e}; tokens and cameras unchanged"),
    };
    if let Some(api) = api {
        match api.state.reload_tokens(&config) {
            Ok(true) => log::info!("SIGHUP: API tokens reloaded; login sessions ended"),
            Ok(false) => {}
            Err(e) => log::error!("SIGHUP: {e}; API tokens unchanged"),
        }
    }
    match cameras.replace_all(config.camera_tables) {
        Ok(()) => log::info!(
            "SIGHUP: cameras reloaded from the config file ({} recording); other sections apply at the next start",
            cameras.recording()
        ),
        Err(e) => log::error!("SIGHUP: {e}; cameras unchanged"),
    }
}

/// Starts the HTTP API. Recording matters more than the API: a port in use is logged, not
/// fatal.
fn start_api(
    config: &Config,
    (index, events, mqtt): (&Arc<Index>, &Arc<crate::events::Events>, Option<Arc<crate::mqtt::MqttStats>>),
    storage: &Arc<Storage>,
    cameras: &Arc<CameraManager>,
    reaper: &Arc<ReaperStats>,
    shutdown: &Shutdown,
) -> Option<HttpHandle> {
    // The list the camera manager keeps: every camera with its counters and live view.
    let control: Arc<dyn CameraControl> = cameras.clone();
    let parts = Parts {
        index: index.clone(),
        storage: storage.clone(),
        cameras: cameras.list(),
        reaper: reaper.clone(),
        control: Some(control),
        events: events.clone(),
        mqtt,
    };
    crate::http::start_service(config, parts, shutdown)
}

/// Starts the MQTT client when `[mqtt]` is configured. Like the API, it is not needed to
/// record: a failure to start (an unreadable password file) is logged, not fatal.
fn start_mqtt(
    config: &Config,
    index: &Arc<Index>,
    events: &Arc<crate::events::Events>,
    storage: &Arc<Storage>,
    cameras: &Arc<CameraManager>,
    shutdown: &Shutdown,
) -> Option<crate::mqtt::MqttHandle> {
    let cfg = config.mqtt.as_ref()?;
    // The camera list as it is at each snapshot (cameras change over the API).
    let list = cameras.list();
    let storage_for_thumbs = storage.clone();
    let storage = storage.clone();
    let snapshot = Arc::new(move || {
        let now = crate::time::now_us();
        let mut s = crate::mqtt::Snapshot::default();
        for e in list.snapshot().iter() {
            // Recording: a frame written within the last 10 s.
            let last = e.stats.last_frame_us.load(std::sync::atomic::Ordering::Relaxed);
            s.cameras.push((e.config.id.clone(), last > 0 && now - last < 10_000_000));
        }
        for root in storage.roots() {
            if let Ok(space) = crate::storage::statvfs(root.path()) {
                s.free_bytes += space.free;
                s.total_bytes += space.total;
            }
        }
        s
    });
    let thumbs = crate::thumb::Thumbnailer::for_service();
    let (ix, st) = (index.clone(), storage_for_thumbs);
    let thumbnail: crate::mqtt::ThumbnailFn = Arc::new(move |camera: &str| {
        let pick = crate::thumb::locate::Pick::AtOrBefore(crate::time::now_us());
        thumbs.jpeg(&ix, &st, camera, pick, crate::mqtt::THUMBNAIL_WIDTH).ok().map(|j| j.bytes.to_vec())
    });
    let ids = cameras.list();
    let sources = crate::mqtt::Sources {
        cameras: Arc::new(move || ids.snapshot().iter().map(|e| e.config.id.clone()).collect()),
        events: events.clone(),
        snapshot,
        thumbnail: Some(thumbnail),
    };
    let handle = crate::mqtt::start(cfg, &config.server.box_id, sources, shutdown)
        .map_err(|e| log::error!("mqtt: {e}; recording without MQTT"))
        .ok()?;
    // Discovery follows cameras added, changed and removed over the API or by SIGHUP.
    cameras.list().on_change(handle.on_cameras_changed());
    Some(handle)
}

/// Tells systemd we are up, and starts feeding its watchdog (when it asked for one) while
/// recording is healthy.
fn notify_ready(
    notifier: &Notifier,
    config: &Config,
    cameras: &Arc<CameraManager>,
    shutdown: &Shutdown,
) -> Result<Option<JoinHandle<()>>> {
    let ready = format!("READY=1\nSTATUS=recording {} camera(s)", cameras.recording());
    if let Err(e) = notifier.notify(&ready) {
        log::warn!("cannot notify systemd: {e}");
    }
    let Some(interval) = crate::service::notify::watchdog_interval() else { return Ok(None) };
    let m = cameras.clone();
    let watched = move || m.watched();
    let sync = config.recording.sync_interval;
    let w = crate::service::watchdog::spawn(notifier.clone(), interval, watched, sync, shutdown.clone())
        .map_err(|e| Error::io("spawning the watchdog", e))?;
    log::info!("systemd watchdog every {} ms", interval.as_millis() / 2);
    Ok(Some(w))
}

/// Takes the service down after shutdown fired: sources stop (their threads and the RTSP
/// runtime end), writers seal their chunks, then the API and the reaper stop.
fn stop(
    notifier: &Notifier,
    watchdog: Option<JoinHandle<()>>,
    cameras: Arc<CameraManager>,
    api: Option<HttpHandle>,
    reaper: RunningReaper,
) {
    log::info!("stopping: sealing open chunks");
    let _ = notifier.notify("STOPPING=1\nSTATUS=stopping: sealing open chunks");
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    cameras.join();
    if let Some(h) = api {
        h.join();
    }
    reaper.handle.poke();
    drop(reaper.handle);
    let _ = reaper.thread.join();
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it spawns
/// afterwards) and starts a thread that waits for them: the first triggers `shutdown`, a
/// second one at least a second later exits at once. Call before spawning any other thread.
///
/// `SIGHUP` (systemd's `ExecReload`) is blocked too and reported on the returned receiver,
/// which [`run`] waits on (one pending hang-up at most: more coalesce into it). The receiver
/// also wakes when shutdown fires.
pub fn handle_signals(shutdown: Shutdown) -> std::io::Result<Receiver<()>> {
    // SAFETY: plain libc signal-set manipulation on a local, zeroed sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        set
    };
    let (hup, hangups) = std::sync::mpsc::sync_channel::<()>(1);
    let wake = hup.clone();
    shutdown.on_trigger(move || {
        let _ = wake.try_send(());
    });
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut first: Option<std::time::Instant> = None;
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid signal set blocked in this thread; `sig` is writable.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            if sig == libc::SIGHUP {
                log::info!("SIGHUP received; reloading the cameras of the config file");
                let _ = hup.try_send(());
                continue;
            }
            match first {
                None => {
                    log::info!("signal {sig} received; shutting down (send again to exit at once)");
                    first = Some(std::time::Instant::now());
                    shutdown.trigger();
                }
                // A copy of the first signal (sent to the process and its group at once, as
                // `timeout` does) is not a second request.
                Some(t) if t.elapsed() < Duration::from_secs(1) => {}
                Some(_) => {
                    log::warn!("second signal; exiting without a clean shutdown");
                    std::process::exit(130);
                }
            }
        }
    })?;
    Ok(hangups)
}
