//! Response bodies, and reading request bodies within limits.
//!
//! [`Body`] is either whole bytes or a stream: a bounded channel of pieces from a producer
//! task or thread. Each piece a producer sends is handed to hyper as one frame when it
//! arrives, and hyper writes it to the socket before asking for the next, so a producer's
//! piece leaves at once (a live stream's fragment is not held back waiting for more). The
//! channel holds at most [`STREAM_QUEUE`] pieces: a client that reads slowly slows the
//! producer, it does not make us buffer.
//!
//! Blocking producers (files, exports, the index) run on the blocking pool in bursts that
//! last while the queue has room ([`from_reader`]), so a slow client holds no thread
//! while it is not reading.

use super::limits::{MAX_JSON_BODY, STREAM_CHUNK, STREAM_QUEUE};
use super::Pool;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// A response body.
pub struct Body {
    kind: Kind,
    /// Runs when the body is finished or dropped (the connection tracker's "request done").
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

enum Kind {
    Full(Option<Bytes>),
    Stream { rx: mpsc::Receiver<std::io::Result<Bytes>>, len: Option<u64> },
}

/// The producer's end of a streamed body.
pub type Sender = mpsc::Sender<std::io::Result<Bytes>>;

impl Body {
    /// A body of these bytes.
    pub fn full(b: impl Into<Bytes>) -> Body {
        Body { kind: Kind::Full(Some(b.into())), on_end: None }
    }

    /// No body.
    pub fn empty() -> Body {
        Body { kind: Kind::Full(None), on_end: None }
    }

    /// A streamed body of `len` bytes (`None`: unknown, sent chunked) and the sender its
    /// producer writes pieces to. An `Err` piece ends the response by closing the
    /// connection (the status line is already sent).
    pub fn channel(len: Option<u64>) -> (Sender, Body) {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        (tx, Body { kind: Kind::Stream { rx, len }, on_end: None })
    }

    /// Calls `f` once when the body is done or dropped.
    pub fn on_end(mut self, f: impl FnOnce() + Send + 'static) -> Body {
        self.on_end = Some(Box::new(f));
        self
    }

    fn end(&mut self) {
        if let Some(f) = self.on_end.take() {
            f();
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.end();
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        let r = match &mut self.kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream { rx, .. } => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        };
        if matches!(r, Poll::Ready(None)) {
            self.end();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream { len: Some(n), .. } => SizeHint::with_exact(*n),
            Kind::Stream { len: None, .. } => SizeHint::default(),
        }
    }
}

/// Pieces one blocking task reads at most before handing its thread back (1 MiB), so a
/// fast download never holds a pool thread while other requests wait for one.
const BURST: usize = 32;

/// A body that reads `reader` (blocking I/O: a file, an export, a list from the index) on
/// the blocking pool, [`STREAM_CHUNK`] at a time. A task reads while the body's queue has
/// room (up to `BURST` pieces), then gives the thread back until the client has taken
/// some: one thread hand-off per burst instead of per piece. `len` is what it will yield,
/// if known.
pub fn from_reader(pool: &Pool, reader: Box<dyn Read + Send>, len: Option<u64>) -> Body {
    let (tx, body) = Body::channel(len);
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut reader = Some(reader);
        loop {
            // Wait until half the queue is free, so no piece is read that nobody will take
            // and a client slower than the reader does not cost a hand-off per piece.
            if tx.reserve_many(STREAM_QUEUE / 2).await.is_err() {
                return; // the client is gone
            }
            let (Some(r), tx2) = (reader.take(), tx.clone()) else { return };
            match pool.run(move || burst(r, &tx2)).await {
                Ok((r, false)) => reader = Some(r),
                _ => return,
            }
        }
    });
    body
}

/// Reads pieces into `tx` while it has room, at most [`BURST`]; returns the reader and
/// whether the body is over (its end, an error, or the client gone).
fn burst(mut r: Box<dyn Read + Send>, tx: &Sender) -> (Box<dyn Read + Send>, bool) {
    for _ in 0..BURST {
        let permit = match tx.try_reserve() {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => return (r, false),
            Err(mpsc::error::TrySendError::Closed(())) => return (r, true),
        };
        let mut buf = vec![0u8; STREAM_CHUNK];
        match read_full(&mut *r, &mut buf) {
            Ok(0) => return (r, true),
            Ok(n) => {
                buf.truncate(n);
                permit.send(Ok(Bytes::from(buf)));
            }
            Err(e) => {
                log::warn!("http: reading a response body failed: {e}");
                permit.send(Err(e));
                return (r, true);
            }
        }
    }
    (r, false)
}

/// Reads until `buf` is full or the reader ends.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why a request body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// 415: not `Content-Type: application/json`.
    NotJson,
    /// 413: over [`MAX_JSON_BODY`].
    TooLarge,
    /// 408: not all there within the body timeout.
    TooSlow(Duration),
    /// 400: the connection failed while reading it.
    Broken,
}

impl BodyError {
    /// The status and message a client gets.
    pub fn reply(&self) -> (u16, String) {
        match self {
            BodyError::NotJson => (415, "the body must be JSON (Content-Type: application/json)".into()),
            BodyError::TooLarge => (413, format!("the body is larger than {} KiB", MAX_JSON_BODY >> 10)),
            BodyError::TooSlow(d) => (408, format!("the body did not arrive within {} ms", d.as_millis())),
            BodyError::Broken => (400, "the body could not be read".into()),
        }
    }
}

/// Reads a JSON request body: `Content-Type: application/json`, at most
/// [`MAX_JSON_BODY`] bytes (a larger `Content-Length` is refused before reading), all of it
/// within `timeout`.
pub async fn read_json(headers: &hyper::HeaderMap, body: Incoming, timeout: Duration) -> Result<Vec<u8>, BodyError> {
    let ctype = headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(BodyError::NotJson);
    }
    if hyper::body::Body::size_hint(&body).lower() > MAX_JSON_BODY as u64 {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut out = Vec::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            if let Some(d) = frame.data_ref() {
                if out.len() + d.len() > MAX_JSON_BODY {
                    return Err(BodyError::TooLarge);
                }
                out.extend_from_slice(d);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| BodyError::TooSlow(timeout))?
}
