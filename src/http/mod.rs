//! The HTTP API: status and health JSON, cameras, timelines, chunk downloads and
//! on-the-fly MP4 / Annex B exports with `Range`, login sessions; the live view (fMP4 and
//! HLS, [`live`]), thumbnails and the day summary ([`footage`]). See `docs/design/http.md`
//! and `docs/design/live.md`.
//!
//! - [`server`]: hyper (HTTP/1.1) on its own current-thread runtime on the thread `http`;
//!   connections capped and timed out as [`limits`] says; files and SQLite on a small
//!   blocking pool ([`Pool`]).
//! - [`dispatch`]: one request's checks in order: target length, `Host` ([`host`]), route
//!   ([`route`]), query ([`query`]), credential and access ([`auth`], [`session`]); then
//!   [`handlers`] and [`respond`].
//! - [`ui`]: the web UI's files (`web/`), embedded, at `/` and `/ui/{file}`.
//! - Ids are looked up in the camera list and the index, never joined into paths, so no
//!   request can read outside the storage roots.
//! - Errors become `{"error": "..."}` with a status chosen in one place ([`status_for`]).
//! - Lists stream from the index through the API's own read-only connections
//!   ([`crate::index::readers`]); bodies stream through [`body::Body`].

pub mod auth;
pub mod body;
pub mod conn;
pub mod dispatch;
pub mod events;
pub mod exports;
pub mod footage;
pub mod handlers;
pub mod host;
pub mod json;
pub mod limits;
pub mod lists;
pub mod live;
pub mod manage;
pub mod query;
pub mod range;
pub mod respond;
pub mod route;
pub mod server;
pub mod session;
pub mod state;
pub mod token_file;
pub mod ui;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::shutdown::Shutdown;
use limits::{Limits, BLOCKING_THREADS, HEALTH_PERMITS};
use state::AppState;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The running server.
pub struct HttpHandle {
    thread: std::thread::JoinHandle<()>,
    /// What it serves from (SIGHUP reloads its tokens).
    pub state: Arc<AppState>,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
}

impl HttpHandle {
    /// Waits for the server thread (after shutdown fired).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// What every request handler can reach.
pub(crate) struct App {
    /// The shared state.
    state: Arc<AppState>,
    /// The blocking pool.
    pool: Pool,
    /// The timeouts and caps.
    limits: Limits,
}

/// The API's blocking pool: files and SQLite run here, never on the `http` thread. Its
/// threads are tokio's (at most [`BLOCKING_THREADS`]); permits keep [`HEALTH_PERMITS`] of
/// them for health checks, so a busy API never makes `/api/v1/health` wait for a thread.
#[derive(Clone)]
pub struct Pool {
    work: Arc<Semaphore>,
    health: Arc<Semaphore>,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            work: Arc::new(Semaphore::new(BLOCKING_THREADS - HEALTH_PERMITS)),
            health: Arc::new(Semaphore::new(HEALTH_PERMITS)),
        }
    }

    /// Runs `f` on the pool once a thread is free.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        Pool::on(&self.work, f).await
    }

    /// Runs a health check on the thread kept for it.
    pub async fn run_health<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        Pool::on(&self.health, f).await
    }

    async fn on<T: Send + 'static>(sem: &Arc<Semaphore>, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = sem.clone().acquire_owned().await.map_err(|_| Error::new(ErrorKind::Internal, "pool closed"))?;
        // The permit moves with the work: a request abandoned by its client still holds
        // its thread until the work ends, so the pool never runs more than its threads.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "a blocking task failed").with_source(e))
    }
}

/// Serves the API on `listener` until `shutdown` fires, with the service's limits.
pub fn start(listener: TcpListener, state: Arc<AppState>, shutdown: &Shutdown) -> Result<HttpHandle> {
    // Cameras may be added while the service runs: keep descriptors for the most it may have.
    let limits = Limits::for_service(crate::config::MAX_CAMERAS);
    start_with(listener, state, shutdown, limits)
}

/// [`start`] with given limits (tests shorten the timeouts).
pub fn start_with(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: &Shutdown,
    limits: Limits,
) -> Result<HttpHandle> {
    let addr = listener.local_addr().map_err(|e| Error::io("reading the listen address", e))?;
    listener.set_nonblocking(true).map_err(|e| Error::io("setting the listener non-blocking", e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("http-blocking")
        .build()
        .map_err(|e| Error::io("starting the HTTP runtime", e))?;
    let (tx, stop) = tokio::sync::watch::channel(false);
    shutdown.on_trigger(move || {
        let _ = tx.send(true);
    });
    let app = Arc::new(App { state: state.clone(), pool: Pool::new(), limits });
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => server::serve(l, app, stop).await,
                    Err(e) => log::error!("http: cannot use the listener on {addr}: {e}"),
                }
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| Error::io("spawning the HTTP thread", e))?;
    log::info!("http: listening on {addr} (at most {} connections)", limits.max_connections);
    Ok(HttpHandle { thread, state, addr })
}

/// The service's API: builds the state from the config (the admin token from `token_file`,
/// made on first start), binds `[server] listen` and serves. Recording matters more than
/// the API: any failure here is logged and the service records without it.
pub fn start_service(config: &Config, parts: state::Parts, shutdown: &Shutdown) -> Option<HttpHandle> {
    let state = match AppState::new(config, parts) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            log::error!("{e}; recording without the HTTP API");
            return None;
        }
    };
    let listener = match TcpListener::bind(config.server.listen) {
        Ok(l) => l,
        Err(e) => {
            log::error!(
                "cannot listen on {} (server.listen): {e}; recording without the HTTP API",
                config.server.listen
            );
            return None;
        }
    };
    start(listener, state, shutdown).map_err(|e| log::error!("{e}")).ok()
}

/// The HTTP status for an error kind: the one place this mapping lives.
pub fn status_for(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::InvalidArgument => 400,
        ErrorKind::NotFound => 404,
        ErrorKind::NoSpace => 507,
        ErrorKind::Media => 502,
        ErrorKind::Busy => 503,
        ErrorKind::DataLoss | ErrorKind::Io | ErrorKind::Database | ErrorKind::Internal => 500,
    }
}

#[cfg(test)]
mod tests;
