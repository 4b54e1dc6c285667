//! One request, start to end: the target's length, the `Host` check, the route, the query,
//! the credential and the access decision, then the handler, then the response. Every
//! refusal here is cheap: nothing touches the index or a file before the request passed.

use super::auth::{decide, Decision, Facts, Principal, Via};
use super::body::Body;
use super::conn::ConnState;
use super::handlers;
use super::limits::MAX_TARGET;
use super::query::{redact_target, Query};
use super::route::{Route, RouteError, Verb};
use super::session::{cookie_value, Caller};
use super::{respond, status_for, App};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, COOKIE, HOST, ORIGIN};
use hyper::{Request, Response};
use std::convert::Infallible;
use std::sync::Arc;

/// hyper's service: answers one request; the connection counts as busy until the response
/// body is done.
pub(crate) async fn handle(
    app: Arc<App>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    conn.request_started();
    let mut resp = answer(&app, &conn, req).await;
    let body = std::mem::replace(resp.body_mut(), Body::empty());
    *resp.body_mut() = body.on_end(move || conn.request_done());
    Ok(resp)
}

fn header(h: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Finds the caller: `Authorization: Bearer`, else the session cookie, else `?token=` (on
/// GET and HEAD). A wrong bearer or URL token is refused rather than ignored.
fn authenticate(app: &App, h: &HeaderMap, q: &Query, verb: Verb) -> Result<Caller, Decision> {
    let tokens = app.state.tokens();
    if !tokens.configured() {
        let principal = Principal { role: super::auth::Role::Admin, via: Via::NoTokenConfigured };
        return Ok(Caller { principal: Some(principal), session: None });
    }
    if let Some(a) = header(h, AUTHORIZATION) {
        let token = a.trim().strip_prefix("Bearer ").map(str::trim);
        return match token.and_then(|t| tokens.role_for(t)) {
            Some(role) => Ok(Caller { principal: Some(Principal { role, via: Via::Bearer }), session: None }),
            None => Err(Decision::Unauthorized("the bearer token is not valid")),
        };
    }
    if let Some(id) = h.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(cookie_value) {
        if let Some(s) = app.state.sessions.get(id) {
            let principal = Principal { role: s.role.clone(), via: Via::Cookie };
            return Ok(Caller { principal: Some(principal), session: Some((id.to_owned(), s)) });
        }
    }
    if let Some(t) = q.get("token").filter(|_| verb.is_safe()) {
        return match tokens.role_for(t) {
            Some(role) => Ok(Caller { principal: Some(Principal { role, via: Via::Query }), session: None }),
            None => Err(Decision::Unauthorized("the token is not valid")),
        };
    }
    Ok(Caller { principal: None, session: None })
}

async fn answer(app: &Arc<App>, conn: &ConnState, req: Request<Incoming>) -> Response<Body> {
    let verb = Verb::of(req.method());
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    if target.len() > MAX_TARGET {
        return respond::error(400, "request target too long");
    }
    let h = req.headers();
    let host = header(h, HOST);
    if let Err(msg) = app.state.hosts.check(host) {
        return respond::error(403, &msg);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let route = match Route::parse(verb, path) {
        Ok(r) => r,
        Err(RouteError::NotFound) => return respond::error(404, &format!("no route {path}")),
        Err(RouteError::MethodNotAllowed(allow)) => {
            let mut r = respond::error(400, &format!("method {} is not supported here; use {allow}", req.method()));
            r.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
            return r;
        }
    };
    let q = match Query::parse(query) {
        Ok(q) => q,
        Err(e) => return respond::error(400, e.msg()),
    };
    let caller = match authenticate(app, h, &q, verb) {
        Ok(c) => c,
        Err(d) => return refusal(d),
    };
    let facts = Facts {
        principal: caller.principal.as_ref(),
        safe_method: verb.is_safe(),
        csrf_ok: caller.session.as_ref().is_some_and(|(_, s)| {
            header(h, hyper::header::HeaderName::from_static("x-csrf-token"))
                .is_some_and(|t| super::auth::constant_time_eq(t.trim().as_bytes(), s.csrf.as_bytes()))
        }),
        origin_ok: header(h, ORIGIN).is_none_or(|o| super::host::origin_matches(o, host)),
    };
    let d = decide(route.scope(), &facts);
    if d != Decision::Allow {
        return refusal(d);
    }
    if matches!(route, Route::Live(_)) {
        conn.cap_send_buffer(super::limits::LIVE_SEND_BUFFER);
    }
    let (parts, body) = req.into_parts();
    match handlers::run(app, route, &q, &caller, &parts.headers, body).await {
        Ok(reply) => respond::build(app, reply, &parts.headers, verb == Verb::Head),
        Err(e) => {
            let status = status_for(e.kind());
            if status >= 500 {
                log::warn!("http: {} {}: {e}", parts.method, redact_target(&target));
            }
            respond::error(status, &e.to_string())
        }
    }
}

fn refusal(d: Decision) -> Response<Body> {
    match d {
        Decision::Unauthorized(msg) => {
            let mut r = respond::error(401, msg);
            r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Decision::Forbidden(msg) => respond::error(403, msg),
        Decision::Allow => respond::error(500, "internal: allowed request refused"),
    }
}
