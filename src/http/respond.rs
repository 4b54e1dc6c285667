//! Replies to responses: JSON documents, streamed lists, and files with `ETag`,
//! `If-None-Match` (304), `Range` and `If-Range` (206/416) and HEAD.

use super::body::{from_reader, Body};
use super::range::{self, RangeReply};
use super::{json, lists, App};
use crate::export::VirtualFile;
use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

/// What a route answers.
pub(crate) enum Reply {
    /// A JSON document with a status and extra headers.
    Json(u16, Vec<u8>, Vec<(HeaderName, String)>),
    /// A JSON document of unknown length, produced piece by piece (chunked).
    Stream(lists::JsonStream),
    /// A downloadable file, with `Range` support, and its file name.
    File(Box<dyn VirtualFile>, String),
    /// An HTML page.
    Html(&'static str),
    /// One of the web UI's embedded files (`ETag`, 304, the UI's CSP).
    Ui(&'static super::ui::Asset),
    /// Bytes already in memory (a thumbnail, an HLS segment's fragments), sent as they are
    /// with this content type and extra headers.
    Media(String, Vec<Bytes>, Vec<(HeaderName, String)>),
    /// A live stream (`live.mp4`): its content type and the body that forwards a live
    /// viewer's pieces as they come (dropping the body leaves the hub).
    Live(String, Body),
}

/// A response with `status`, these headers and `body`.
fn response(status: u16, headers: Vec<(HeaderName, String)>, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        // Values are built from ASCII names and numbers; one that is not is left out.
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// `{"error": msg}` with `status`.
pub(crate) fn error(status: u16, msg: &str) -> Response<Body> {
    let h = vec![(header::CONTENT_TYPE, "application/json".into()), (header::CACHE_CONTROL, "no-store".into())];
    response(status, h, Body::full(json::error(msg)))
}

/// The response to `reply` for a request with `req` headers (`head`: a HEAD request).
pub(crate) fn build(app: &App, reply: Reply, req: &HeaderMap, head: bool) -> Response<Body> {
    let json_headers =
        || vec![(header::CONTENT_TYPE, "application/json".into()), (header::CACHE_CONTROL, "no-store".into())];
    match reply {
        Reply::Json(status, doc, extra) => {
            let mut h = json_headers();
            h.extend(extra);
            with_body(status, h, doc.into(), head)
        }
        Reply::Html(page) => {
            let h = vec![
                (header::CONTENT_TYPE, "text/html; charset=utf-8".into()),
                (header::REFERRER_POLICY, "no-referrer".into()),
            ];
            with_body(200, h, Bytes::from_static(page.as_bytes()), head)
        }
        Reply::Ui(asset) => ui_response(asset, req, head),
        Reply::Stream(s) => {
            let body = if head { Body::empty() } else { from_reader(&app.pool, Box::new(s), None) };
            response(200, json_headers(), body)
        }
        Reply::File(file, name) => file_response(app, file.as_ref(), &name, req, head),
        Reply::Media(ctype, parts, extra) => {
            let mut h = vec![(header::CONTENT_TYPE, ctype)];
            h.extend(extra);
            let len: usize = parts.iter().map(Bytes::len).sum();
            if head || parts.len() <= 1 {
                let body = parts.into_iter().next().unwrap_or_default();
                return with_body(200, h, body, head);
            }
            // Several shared pieces: sent one after the other, never copied into one.
            let (tx, body) = Body::channel(Some(len as u64));
            tokio::spawn(async move {
                for p in parts {
                    if tx.send(Ok(p)).await.is_err() {
                        return;
                    }
                }
            });
            response(200, h, body)
        }
        Reply::Live(ctype, body) => {
            let h = vec![(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "no-store".into())];
            response(200, h, if head { Body::empty() } else { body })
        }
    }
}

/// A whole body (HEAD: its length, no bytes).
fn with_body(status: u16, mut h: Vec<(HeaderName, String)>, body: Bytes, head: bool) -> Response<Body> {
    if head {
        h.push((header::CONTENT_LENGTH, body.len().to_string()));
        return response(status, h, Body::empty());
    }
    response(status, h, Body::full(body))
}

/// A UI file: revalidated on every load (`no-cache`: a new binary's UI is seen at once),
/// answered 304 while its `ETag` matches.
fn ui_response(asset: &super::ui::Asset, req: &HeaderMap, head: bool) -> Response<Body> {
    let etag = asset.etag();
    let h = vec![
        (header::CONTENT_TYPE, asset.content_type.to_owned()),
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "no-cache".into()),
        (header::CONTENT_SECURITY_POLICY, super::ui::CSP.into()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
        (header::X_FRAME_OPTIONS, "DENY".into()),
        (header::REFERRER_POLICY, "no-referrer".into()),
    ];
    let matches = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if matches.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return response(304, h, Body::empty());
    }
    with_body(200, h, Bytes::from_static(asset.bytes), head)
}

fn file_response(
    app: &App,
    file: &dyn crate::export::VirtualFile,
    name: &str,
    req: &HeaderMap,
    head: bool,
) -> Response<Body> {
    let get = |n: HeaderName| req.get(n).and_then(|v| v.to_str().ok());
    let len = file.len();
    let etag = file.etag();
    let mut h = vec![
        (header::CONTENT_TYPE, file.content_type().to_owned()),
        (header::ETAG, etag.clone()),
        (header::ACCEPT_RANGES, "bytes".into()),
        (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")),
    ];
    if get(header::IF_NONE_MATCH).is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return response(304, h, Body::empty());
    }
    // A Range applies only if If-Range (when present) still names this version.
    let range_header = get(header::RANGE).filter(|_| get(header::IF_RANGE).is_none_or(|v| v.trim() == etag));
    let (status, start, end) = match range::parse(range_header, len) {
        RangeReply::Full => (200, 0, len),
        RangeReply::Partial { start, end } => {
            h.push((header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", end - 1)));
            (206, start, end)
        }
        RangeReply::Unsatisfiable => {
            h.push((header::CONTENT_RANGE, format!("bytes */{len}")));
            return with_body(416, h, json::error("range not satisfiable").into(), head);
        }
    };
    if head {
        h.push((header::CONTENT_LENGTH, (end - start).to_string()));
        return response(status, h, Body::empty());
    }
    response(status, h, from_reader(&app.pool, file.reader(start, end), Some(end - start)))
}
