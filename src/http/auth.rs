//! Who may do what (`docs/design/http.md`, "Access").
//!
//! Credentials: `[server] token` (or `token_file`) is the admin's; `[server] viewer_tokens`
//! may only read, optionally only some cameras. A request presents one as
//! `Authorization: Bearer TOKEN`, as the session cookie `POST /api/v1/login` sets, or, on
//! GET and HEAD only, as `?token=` (for players given a plain URL; it is redacted from
//! logs). Tokens and CSRF tokens are compared in constant time.
//!
//! Rules, in order ([`decide`]):
//! 1. A request whose `Origin` does not name the host it was sent to is refused: a page on
//!    another site can make a browser send requests, but never with our `Origin`.
//! 2. Open routes (health, the web UI's files, the player page, login) need no credential.
//! 3. Every other route needs one; with no token configured everyone is admin (the config
//!    then listens on loopback only, or the service warns loudly).
//! 4. State-changing methods (POST, PUT, DELETE) need the admin role, a credential that is
//!    not in the URL, and for a session cookie an `X-CSRF-Token` header equal to the
//!    session's CSRF token (a cross-site form can send the cookie, not the header).
//!    Logout needs only the session it ends.
//! 5. Reads need a role that may see the camera (or all cameras).

use crate::config::ViewerToken;

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The configured credentials.
#[derive(PartialEq, Eq)]
pub struct Tokens {
    /// The admin token (`None`: no token configured, every request is admin).
    admin: Option<String>,
    /// Viewer tokens and their roles.
    viewers: Vec<(String, Role)>,
}

impl Tokens {
    /// The admin token (from `token` or `token_file`) and the viewer tokens.
    pub fn new(admin: Option<String>, viewers: &[ViewerToken]) -> Tokens {
        let viewers = viewers.iter().map(|v| (v.token.expose().to_owned(), Role::Viewer(v.cameras.clone()))).collect();
        Tokens { admin, viewers }
    }

    /// Whether any token is configured (else everyone is admin).
    pub fn configured(&self) -> bool {
        self.admin.is_some()
    }

    /// The role of `token`, comparing it with every configured token in constant time.
    pub fn role_for(&self, token: &str) -> Option<Role> {
        let mut found = None;
        if let Some(a) = &self.admin {
            if constant_time_eq(a.as_bytes(), token.as_bytes()) {
                found = Some(Role::Admin);
            }
        }
        for (t, role) in &self.viewers {
            if constant_time_eq(t.as_bytes(), token.as_bytes()) && found.is_none() {
                found = Some(role.clone());
            }
        }
        found
    }
}

/// What a credential allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads only; `None` = every camera, else only these.
    Viewer(Option<Vec<String>>),
}

impl Role {
    /// Whether this role may read camera `id`.
    pub fn may_see(&self, id: &str) -> bool {
        match self {
            Role::Admin | Role::Viewer(None) => true,
            Role::Viewer(Some(cams)) => cams.iter().any(|c| c == id),
        }
    }

    /// Whether this role may read every camera.
    pub fn sees_all(&self) -> bool {
        matches!(self, Role::Admin | Role::Viewer(None))
    }

    /// The name the session document shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer(_) => "viewer",
        }
    }
}

/// How the credential came.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// No token is configured: every request is admin.
    NoTokenConfigured,
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
    /// `?token=` in the URL.
    Query,
}

/// An authenticated requester.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// What it may do.
    pub role: Role,
    /// How it proved it.
    pub via: Via,
}

/// What a route needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Nothing (health, the web UI's files, the player page, login).
    Open,
    /// Any credential (the camera list, filtered by role; the session document).
    Any,
    /// A role that sees every camera (status).
    AllCameras,
    /// A role that sees this camera.
    Camera(&'a str),
    /// The session cookie being used (logout).
    OwnSession,
    /// The admin role.
    Admin,
}

/// The facts of one request that the decision depends on.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    /// Who is asking (`None`: no valid credential).
    pub principal: Option<&'a Principal>,
    /// GET or HEAD (no state change allowed).
    pub safe_method: bool,
    /// An `X-CSRF-Token` header equal to the session's CSRF token was sent.
    pub csrf_ok: bool,
    /// `Origin` is absent or names the host the request was sent to.
    pub origin_ok: bool,
}

/// The verdict.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// 401: no (valid) credential.
    Unauthorized(&'static str),
    /// 403: a credential that does not allow this.
    Forbidden(&'static str),
}

/// Why a request without a credential is refused.
pub const NEED_CREDENTIAL: &str =
    "a token is required: Authorization: Bearer TOKEN, a session (POST /api/v1/login), or ?token= on GET";

/// The access decision for `scope` (the rules in the module doc).
pub fn decide(scope: Scope<'_>, f: &Facts<'_>) -> Decision {
    use Decision::*;
    if !f.origin_ok {
        return Forbidden("the Origin header names another site; cross-site requests are refused");
    }
    if scope == Scope::Open {
        return Allow;
    }
    let Some(p) = f.principal else { return Unauthorized(NEED_CREDENTIAL) };
    if !f.safe_method {
        if p.via == Via::Query {
            return Forbidden("a token in the URL is accepted for GET only; send Authorization: Bearer");
        }
        if p.via == Via::Cookie && !f.csrf_ok {
            return Forbidden("X-CSRF-Token is missing or wrong (GET /api/v1/session tells it)");
        }
        if scope == Scope::OwnSession {
            return if p.via == Via::Cookie { Allow } else { Forbidden("logout ends a cookie session; there is none") };
        }
        if p.role != Role::Admin {
            return Forbidden("this token may only read (GET)");
        }
        return Allow;
    }
    match scope {
        Scope::Open | Scope::Any => Allow,
        Scope::OwnSession if p.via == Via::Cookie => Allow,
        Scope::OwnSession => Forbidden("logout ends a cookie session; there is none"),
        Scope::Admin if p.role == Role::Admin => Allow,
        Scope::Admin => Forbidden("this needs the admin token"),
        Scope::AllCameras if p.role.sees_all() => Allow,
        Scope::AllCameras => Forbidden("this token may only see some cameras"),
        Scope::Camera(id) if p.role.may_see(id) => Allow,
        Scope::Camera(_) => Forbidden("this token may not see this camera"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::*;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!constant_time_eq(b"0123456789abcdef", b"0123456789abcdeF"));
        assert!(!constant_time_eq(b"a", b"ab"));
    }

    /// Role x method x credential kind x camera (and CSRF, Origin): the whole table.
    #[test]
    fn decision_table() {
        let admin = |via| Principal { role: Role::Admin, via };
        let viewer = |via| Principal { role: Role::Viewer(None), via };
        let door = |via| Principal { role: Role::Viewer(Some(vec!["door".into()])), via };
        let (a_bearer, a_cookie, a_query, open) =
            (admin(Via::Bearer), admin(Via::Cookie), admin(Via::Query), admin(Via::NoTokenConfigured));
        let (v_bearer, v_cookie, v_query) = (viewer(Via::Bearer), viewer(Via::Cookie), viewer(Via::Query));
        let (d_bearer, d_cookie) = (door(Via::Bearer), door(Via::Cookie));
        /// (principal, safe method, CSRF header ok, Origin ok).
        type Req<'a> = (Option<&'a Principal>, bool, bool, bool);
        fn get(p: Option<&Principal>) -> Req<'_> {
            (p, true, false, true)
        }
        fn post(p: Option<&Principal>, csrf: bool) -> Req<'_> {
            (p, false, csrf, true)
        }
        #[rustfmt::skip]
        let table: Vec<(Scope, Req, Decision)> = vec![
            // Open routes: anyone, any method, unless another site's Origin.
            (Scope::Open, get(None), Allow),
            (Scope::Open, post(None, false), Allow),
            (Scope::Open, (None, false, false, false), Forbidden("")),
            // No credential.
            (Scope::Any, get(None), Unauthorized("")),
            (Scope::Camera("door"), get(None), Unauthorized("")),
            (Scope::Admin, post(None, false), Unauthorized("")),
            // Admin: every read by any kind; writes by bearer, or cookie with CSRF.
            (Scope::Camera("yard"), get(Some(&a_bearer)), Allow),
            (Scope::AllCameras, get(Some(&a_cookie)), Allow),
            (Scope::Admin, get(Some(&a_query)), Allow),
            (Scope::Admin, post(Some(&a_bearer), false), Allow),
            (Scope::Admin, post(Some(&a_cookie), true), Allow),
            (Scope::Admin, post(Some(&a_cookie), false), Forbidden("")),
            (Scope::Admin, post(Some(&a_query), false), Forbidden("")),
            (Scope::Camera("door"), post(Some(&a_bearer), false), Allow),
            // No token configured: admin, but still no cross-site requests.
            (Scope::Admin, post(Some(&open), false), Allow),
            (Scope::Admin, (Some(&open), false, false, false), Forbidden("")),
            (Scope::Camera("door"), (Some(&open), true, false, false), Forbidden("")),
            // Viewer of every camera: reads anything but admin routes, never writes.
            (Scope::Camera("yard"), get(Some(&v_bearer)), Allow),
            (Scope::AllCameras, get(Some(&v_cookie)), Allow),
            (Scope::Camera("door"), get(Some(&v_query)), Allow),
            (Scope::Admin, get(Some(&v_bearer)), Forbidden("")),
            (Scope::Camera("door"), post(Some(&v_bearer), false), Forbidden("")),
            (Scope::Admin, post(Some(&v_cookie), true), Forbidden("")),
            (Scope::Admin, post(Some(&v_query), false), Forbidden("")),
            // Viewer of camera door only.
            (Scope::Camera("door"), get(Some(&d_bearer)), Allow),
            (Scope::Camera("yard"), get(Some(&d_bearer)), Forbidden("")),
            (Scope::Camera("yard"), get(Some(&d_cookie)), Forbidden("")),
            (Scope::AllCameras, get(Some(&d_bearer)), Forbidden("")),
            (Scope::Any, get(Some(&d_cookie)), Allow),
            (Scope::Camera("door"), post(Some(&d_cookie), true), Forbidden("")),
            // Logout: the cookie session itself, with its CSRF token; any role.
            (Scope::OwnSession, post(Some(&d_cookie), true), Allow),
            (Scope::OwnSession, post(Some(&a_cookie), false), Forbidden("")),
            (Scope::OwnSession, post(Some(&a_bearer), false), Forbidden("")),
            (Scope::OwnSession, post(None, false), Unauthorized("")),
            (Scope::OwnSession, (Some(&v_cookie), false, true, false), Forbidden("")),
        ];
        for (i, (scope, (principal, safe_method, csrf_ok, origin_ok), want)) in table.into_iter().enumerate() {
            let got = decide(scope, &Facts { principal, safe_method, csrf_ok, origin_ok });
            let same = matches!(
                (got, want),
                (Allow, Allow) | (Unauthorized(_), Unauthorized(_)) | (Forbidden(_), Forbidden(_))
            );
            assert!(
                same,
                "row {i}: {scope:?} {principal:?} safe={safe_method} csrf={csrf_ok} origin={origin_ok}: {got:?}"
            );
        }
    }
}
