//! The HTTP API, on tiny_http: status and health JSON, cameras, timelines, chunk downloads
//! and on-the-fly MP4 / Annex B exports with `Range`.
//!
//! - A fixed pool of [`WORKERS`] handler threads; tiny_http's own per-connection threads are
//!   kept bounded by the [`warden`].
//! - The paths answered are parsed in one table (`Route::parse` in `route.rs`).
//! - Ids are looked up in the config and the index, never joined into paths, so no request
//!   can read outside the storage roots.
//! - Errors become `{"error": "..."}` with a status chosen in one place ([`status_for`]).
//! - `[server] token`, when set, guards every route but `/api/v1/health` ([`auth`]).

pub mod auth;
pub mod json;
pub mod lists;
pub mod range;
mod route;
pub mod state;
pub mod warden;

use crate::err;
use crate::error::{Error, ErrorKind, Result};
use crate::export::{annexb::AnnexBFile, mp4::Mp4File, plan::make_plan, RawFile, VirtualFile};
use crate::shutdown::Shutdown;
use crate::time::{now_us, parse_time};
use range::RangeReply;
use route::{ExportFormat, Route};
use state::AppState;
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// Handler threads: concurrent requests being answered (a long download holds one).
pub const WORKERS: usize = 6;
/// Longest request target accepted.
pub const MAX_URL: usize = 4096;

const PLAYER_HTML: &str = include_str!("player.html");

/// The running server.
pub struct HttpHandle {
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
}

impl HttpHandle {
    /// Waits for the workers (after shutdown fired).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Serves the API on `listener` until `shutdown` fires.
pub fn start(listener: TcpListener, state: Arc<AppState>, shutdown: &Shutdown) -> Result<HttpHandle> {
    let addr = listener.local_addr().map_err(|e| Error::io("reading the listen address", e))?;
    let server = Arc::new(
        tiny_http::Server::from_listener(listener, None)
            .map_err(|e| err!(Io, "starting the HTTP server on {addr}").with_source(e))?,
    );
    let mut threads = Vec::new();
    for i in 0..WORKERS {
        let (server, state, shutdown) = (server.clone(), state.clone(), shutdown.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || {
                    while !shutdown.is_triggered() {
                        match server.recv() {
                            Ok(rq) => handle(&state, rq),
                            Err(e) => {
                                if !shutdown.is_triggered() {
                                    log::warn!("http: {e}");
                                }
                            }
                        }
                    }
                })
                .map_err(|e| Error::io("spawning an HTTP worker", e))?,
        );
    }
    threads.push(warden::spawn(addr.port(), shutdown.clone()).map_err(|e| Error::io("spawning the HTTP warden", e))?);
    let s = server.clone();
    shutdown.on_trigger(move || {
        for _ in 0..WORKERS {
            s.unblock();
        }
    });
    log::info!("http: listening on {addr}");
    Ok(HttpHandle { threads, addr })
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

/// What a route answers.
enum Reply {
    /// A JSON document with a status.
    Json(u16, Vec<u8>),
    /// A JSON document of unknown length (chunked).
    Stream(lists::JsonStream),
    /// A downloadable file, with `Range` support.
    File(Box<dyn VirtualFile>, String),
    /// An HTML page.
    Html(&'static str),
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

fn not_found(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::NotFound, msg)
}

/// Query parameters, decoded; bounded in number and size.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Result<Query> {
        let mut v = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            if v.len() >= 16 {
                return Err(bad("too many query parameters"));
            }
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            v.push((crate::text::percent_decode(k, true), crate::text::percent_decode(val, true)));
        }
        Ok(Query(v))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    fn time(&self, k: &str) -> Result<Option<i64>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => {
                parse_time(v).map(Some).ok_or_else(|| bad(format!("{k}: {v:?} is not RFC 3339 or Unix seconds")))
            }
        }
    }

    fn range(&self, required: bool) -> Result<(i64, i64)> {
        let (from, to) = (self.time("from")?, self.time("to")?);
        if required && (from.is_none() || to.is_none()) {
            return Err(bad("from and to are required (RFC 3339 or Unix seconds)"));
        }
        let (from, to) = (from.unwrap_or(0), to.unwrap_or(now_us() + 86_400_000_000));
        if from > to {
            return Err(bad("from is after to"));
        }
        Ok((from, to))
    }

    /// `after`: the `next` value of a previous page of chunks, `START_US:ID`.
    fn after(&self) -> Result<(i64, i64)> {
        match self.get("after") {
            None => Ok((i64::MIN, 0)),
            Some(a) => a
                .split_once(':')
                .and_then(|(s, i)| Some((s.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| bad("after must be the `next` value of a previous page")),
        }
    }

    fn limit(&self) -> Result<usize> {
        match self.get("limit") {
            None => Ok(lists::DEFAULT_LIMIT),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=lists::MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(bad(format!("limit must be from 1 to {}", lists::MAX_LIMIT))),
            },
        }
    }
}

fn handle(state: &Arc<AppState>, rq: Request) {
    let method = rq.method().clone();
    let url = rq.url().to_owned();
    let reply = route(state, &rq, &method, &url);
    let reply = reply.unwrap_or_else(|e| {
        let status = status_for(e.kind());
        if status >= 500 {
            log::warn!("http: {method} {}: {e}", url.split('?').next().unwrap_or(""));
        }
        Reply::Json(status, json::error(&e.to_string()))
    });
    if let Err(e) = respond(rq, &method, reply) {
        log::debug!("http: sending the response failed: {e}");
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header names and ASCII values are valid")
}

fn route(state: &Arc<AppState>, rq: &Request, method: &Method, url: &str) -> Result<Reply> {
    if url.len() > MAX_URL {
        return Err(bad("request target too long"));
    }
    if !matches!(method, Method::Get | Method::Head) {
        return Err(bad(format!("method {method} is not supported; use GET")));
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let q = Query::parse(query)?;
    if path != "/api/v1/health" {
        let authz = rq.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str());
        if !auth::allowed(state.config.server.token.as_deref(), authz, q.get("token")) {
            return Ok(Reply::Json(
                401,
                json::error("a bearer token is required (Authorization: Bearer ..., or ?token=)"),
            ));
        }
    }
    // A camera is looked up before its query is read: an unknown camera is a 404 whatever
    // the query says.
    match Route::parse(path)? {
        Route::Player => Ok(Reply::Html(PLAYER_HTML)),
        Route::Status => Ok(Reply::Json(200, document(|b| json::status(state, b))?)),
        Route::Health => health(state),
        Route::Cameras => Ok(Reply::Json(200, document(|b| json::cameras(state, b))?)),
        Route::Recordings { camera } => {
            let camera = camera_id(state, camera)?;
            let (from, to) = q.range(false)?;
            Ok(Reply::Stream(lists::recordings(state.clone(), camera, from, to, q.limit()?)))
        }
        Route::Chunks { camera } => {
            let camera = camera_id(state, camera)?;
            let (from, to) = q.range(false)?;
            Ok(Reply::Stream(lists::chunks(state.clone(), camera, from, to, q.after()?, q.limit()?)))
        }
        Route::Export { camera, format } => {
            let camera = camera_id(state, camera)?;
            let (from, to) = q.range(true)?;
            export(state, &camera, from, to, format)
        }
        Route::Chunk { id } => chunk_file(state, id),
        Route::PynvrRange { camera, from, to } => {
            export(state, &camera_id(state, camera)?, from, to, ExportFormat::Mp4)
        }
    }
}

/// A configured camera's id, or a 404.
fn camera_id(state: &AppState, id: &str) -> Result<String> {
    let cam = state.camera(id).ok_or_else(|| not_found(format!("no camera {id:?}")))?;
    Ok(cam.config.id.clone())
}

/// `/api/v1/health`: 200 when healthy, 503 when not, the same document either way.
fn health(state: &AppState) -> Result<Reply> {
    let mut healthy = false;
    let doc = document(|b| {
        let (ok, n) = json::health(state, b)?;
        healthy = ok;
        Ok(n)
    })?;
    Ok(Reply::Json(if healthy { 200 } else { 503 }, doc))
}

/// `/api/v1/chunks/{id}`: a sealed chunk's file, as stored.
fn chunk_file(state: &AppState, id: i64) -> Result<Reply> {
    let row = state.index.chunk(id)?.ok_or_else(|| not_found(format!("no chunk {id}")))?;
    if row.state != crate::index::ChunkState::Sealed {
        return Err(not_found(format!("chunk {id} is still being written or being deleted")));
    }
    let root = state
        .storage
        .root(row.root_id)
        .ok_or_else(|| not_found(format!("chunk {id}'s storage root is not configured")))?;
    let name = row.rel_path.file_name().and_then(|n| n.to_str()).unwrap_or("chunk").to_owned();
    let path = root.path().join(&row.rel_path);
    crate::export::plan::check_file(&row, &path)?;
    let file = RawFile::new(path, row.bytes, format!("\"chunk-{id}-{}\"", row.bytes));
    Ok(Reply::File(Box::new(file), name))
}

/// Serialises a fixed-shape document into a [`json::DOC_BYTES`] buffer (allocated only for
/// the routes that answer one) and returns the bytes written.
fn document(write: impl FnOnce(&mut [u8]) -> Result<usize>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; json::DOC_BYTES];
    let n = write(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn export(state: &AppState, camera: &str, from: i64, to: i64, format: ExportFormat) -> Result<Reply> {
    let plan = make_plan(&state.index, &state.storage, camera, from, to)?;
    format.check_codec(camera, plan.codec)?;
    let stamp = crate::time::Civil::from_us(from);
    let name = format!("{camera}-{}-{}.{}", stamp.yyyymmdd(), stamp.hhmm(), format.extension());
    Ok(match format {
        ExportFormat::Mp4 => Reply::File(Box::new(Mp4File::new(plan)?), name),
        ExportFormat::H264 | ExportFormat::H265 => Reply::File(Box::new(AnnexBFile::new(plan)), name),
    })
}

fn respond(rq: Request, method: &Method, reply: Reply) -> std::io::Result<()> {
    let head = *method == Method::Head;
    match reply {
        Reply::Json(status, body) => {
            let len = body.len();
            let r = Response::new(
                StatusCode(status),
                vec![header("Content-Type", "application/json"), header("Cache-Control", "no-store")],
                if head { &[][..] } else { &body[..] },
                Some(if head { 0 } else { len }),
                None,
            );
            rq.respond(r)
        }
        Reply::Html(page) => {
            rq.respond(Response::from_string(page).with_header(header("Content-Type", "text/html; charset=utf-8")))
        }
        Reply::Stream(s) => rq.respond(Response::new(
            StatusCode(200),
            vec![header("Content-Type", "application/json"), header("Cache-Control", "no-store")],
            s,
            None,
            None,
        )),
        Reply::File(file, name) => {
            let len = file.len();
            let etag = file.etag();
            let get = |n: &str| {
                rq.headers()
                    .iter()
                    .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(n))
                    .map(|h| h.value.as_str().to_owned())
            };
            let mut headers = vec![
                header("Content-Type", file.content_type()),
                header("ETag", &etag),
                header("Accept-Ranges", "bytes"),
                header("Content-Disposition", &format!("inline; filename=\"{name}\"")),
            ];
            if get("If-None-Match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
                return rq.respond(Response::new(StatusCode(304), headers, std::io::empty(), Some(0), None));
            }
            // A Range applies only if If-Range (when present) still names this version.
            let range_header = get("Range").filter(|_| get("If-Range").is_none_or(|v| v.trim() == etag));
            let (status, start, end) = match range::parse(range_header.as_deref(), len) {
                RangeReply::Full => (200, 0, len),
                RangeReply::Partial { start, end } => {
                    headers.push(header("Content-Range", &format!("bytes {start}-{}/{len}", end - 1)));
                    (206, start, end)
                }
                RangeReply::Unsatisfiable => {
                    headers.push(header("Content-Range", &format!("bytes */{len}")));
                    let body = json::error("range not satisfiable");
                    let n = body.len();
                    return rq.respond(Response::new(StatusCode(416), headers, &body[..], Some(n), None));
                }
            };
            let body: Box<dyn Read + Send> = if head { Box::new(std::io::empty()) } else { file.reader(start, end) };
            let n = (end - start) as usize;
            rq.respond(
                Response::new(StatusCode(status), headers, body, Some(n), None).with_chunked_threshold(usize::MAX),
            )
        }
    }
}
