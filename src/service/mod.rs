//! The running service, `edgenvr run`: opens the index, recovers from the last stop, starts
//! the reaper and every enabled camera, and waits for the shutdown signal.
//!
//! - [`recorder`]: one camera's threads (source → bounded queue → chunk writer).
//! - [`status`]: live counters written along the data path, read by status and health.
//! - [`watchdog`] and [`notify`]: systemd's readiness and watchdog protocol.
//!
//! Shutdown order: sources stop → writers drain their queues and seal their chunks → the
//! reaper stops → the index connection closes (last commit done by the writers).

pub mod notify;
pub mod recorder;
pub mod status;
pub mod watchdog;

use crate::chunk::writer::WriterContext;
use crate::config::Config;
use crate::error::Result;
use crate::index::Index;
use crate::service::recorder::{start_camera, CameraHandle};
use crate::shutdown::Shutdown;
use crate::source::start::Runtimes;
use crate::storage::reaper::Reaper;
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;

/// Runs the recorder until `shutdown` fires.
pub fn run(config: &Config, shutdown: Shutdown) -> Result<()> {
    let index = Arc::new(Index::open(&config.index_path)?);
    let storage = Arc::new(Storage::open(&config.storage, &index)?);
    crate::storage::recovery::recover_at_startup(&index, &storage)?;
    if storage.pick_for_write().is_none() {
        log::error!("no storage root is writable now; cameras will record as soon as one is");
    }

    let reaper = Reaper::new(index.clone(), storage.clone(), config.recording.max_age, crate::time::now_us);
    let reaper_stats = reaper.stats.clone();
    let (reaper_handle, reaper_join) =
        reaper.spawn(shutdown.clone()).map_err(|e| crate::error::Error::io("spawning reaper", e))?;
    let poke = reaper_handle.clone();
    let ctx = WriterContext {
        storage: storage.clone(),
        index: index.clone(),
        on_space_pressure: Arc::new(move || poke.poke()),
        sync_interval: config.recording.sync_interval,
    };

    let runtimes = Runtimes::start(&config.cameras, &shutdown)?;
    let mut cameras: Vec<CameraHandle> = Vec::new();
    for cam in config.cameras.iter().filter(|c| c.enabled) {
        match start_camera(cam, ctx.clone(), &runtimes, &shutdown) {
            Ok(h) => cameras.push(h),
            Err(e) => log::error!("camera {}: cannot start: {e}", cam.id),
        }
    }
    // Every configured camera with its counters (idle ones for cameras that did not start),
    // for the API and the watchdog.
    let entries: Vec<(crate::config::CameraConfig, Arc<crate::service::status::CameraStats>)> = config
        .cameras
        .iter()
        .map(|c| (c.clone(), cameras.iter().find(|h| h.id == c.id).map(|h| h.stats.clone()).unwrap_or_default()))
        .collect();
    let state = Arc::new(crate::http::state::AppState {
        config: config.clone(),
        index: index.clone(),
        storage: storage.clone(),
        cameras: entries
            .iter()
            .map(|(config, stats)| crate::http::state::CameraEntry { config: config.clone(), stats: stats.clone() })
            .collect(),
        reaper: reaper_stats,
        started: std::time::Instant::now(),
    });
    // Recording matters more than the API: a port in use is logged, not fatal.
    let http = match std::net::TcpListener::bind(config.server.listen) {
        Ok(l) => match crate::http::start(l, state, &shutdown) {
            Ok(h) => Some(h),
            Err(e) => {
                log::error!("{e}");
                None
            }
        },
        Err(e) => {
            log::error!(
                "cannot listen on {} (server.listen): {e}; recording without the HTTP API",
                config.server.listen
            );
            None
        }
    };
    // Tell systemd we are up, and feed its watchdog while recording is healthy.
    let notifier = crate::service::notify::Notifier::from_env();
    let ready = format!("READY=1\nSTATUS=recording {} camera(s)", cameras.len());
    if let Err(e) = notifier.notify(&ready) {
        log::warn!("cannot notify systemd: {e}");
    }
    let watchdog = match crate::service::notify::watchdog_interval() {
        Some(interval) => {
            // Only the loops that run are watched: a camera that is disabled, or whose start
            // failed (logged above), has none, and must not starve the watchdog into
            // restarting the service for ever.
            let cams = entries.iter().filter(|(c, _)| cameras.iter().any(|h| h.id == c.id)).cloned().collect();
            let w = crate::service::watchdog::spawn(
                notifier.clone(),
                interval,
                cams,
                config.recording.sync_interval,
                shutdown.clone(),
            )
            .map_err(|e| crate::error::Error::io("spawning the watchdog", e))?;
            log::info!("systemd watchdog every {} ms", interval.as_millis() / 2);
            Some(w)
        }
        None => None,
    };
    log::info!(
        "recording {} camera(s) to {}; index {}",
        cameras.len(),
        config.storage.iter().map(|s| s.path.display().to_string()).collect::<Vec<_>>().join(", "),
        config.index_path.display()
    );

    while !shutdown.wait_timeout(Duration::from_secs(3600)) {}
    log::info!("stopping: sealing open chunks");
    let _ = notifier.notify("STOPPING=1\nSTATUS=stopping: sealing open chunks");
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    runtimes.join();
    for c in cameras {
        c.join();
    }
    if let Some(h) = http {
        h.join();
    }
    reaper_handle.poke();
    drop(reaper_handle);
    let _ = reaper_join.join();
    log::info!("stopped; {} index transactions", index.transactions());
    Ok(())
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it spawns
/// afterwards) and starts a thread that waits for them: the first triggers `shutdown`, a
/// second one at least a second later exits at once. Call before spawning any other thread.
pub fn handle_signals(shutdown: Shutdown) -> std::io::Result<()> {
    // SAFETY: plain libc signal-set manipulation on a local, zeroed sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        set
    };
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut first: Option<std::time::Instant> = None;
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is a valid signal set blocked in this thread; `sig` is writable.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
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
    Ok(())
}
