//! Login sessions: a bounded in-memory table (sessions end with the process; a restarted
//! box asks for the token again).
//!
//! `POST /api/v1/login` with a valid token creates a session holding that token's role and
//! a CSRF token, and sets its id in an `HttpOnly; SameSite=Strict` cookie: page scripts
//! cannot read it and other sites' requests do not carry it. Capacity
//! [`MAX_SESSIONS`] (the least recently used goes first); a session ends after
//! [`SESSION_IDLE`] unused or [`SESSION_MAX_AGE`] in all, or at logout.

use super::auth::{constant_time_eq, Principal, Role};
use super::limits::{MAX_SESSIONS, SESSION_IDLE, SESSION_MAX_AGE};
use crate::error::{Error, Result};
use std::sync::Mutex;
use std::time::Instant;

/// The cookie that carries the session id.
pub const COOKIE: &str = "edgenvr_session";

struct Entry {
    id: String,
    csrf: String,
    role: Role,
    created: Instant,
    last_used: Instant,
}

/// A live session as a request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// What it may do.
    pub role: Role,
    /// The token state-changing requests must echo in `X-CSRF-Token`.
    pub csrf: String,
}

/// The table.
#[derive(Default)]
pub struct Sessions {
    /// A std mutex: held for a scan of at most [`MAX_SESSIONS`] entries, never across I/O.
    entries: Mutex<Vec<Entry>>,
}

impl Sessions {
    /// Creates a session for `role`; returns (session id, CSRF token).
    pub fn create(&self, role: Role) -> Result<(String, String)> {
        self.create_at(role, Instant::now())
    }

    fn create_at(&self, role: Role, now: Instant) -> Result<(String, String)> {
        let (id, csrf) = (random_token()?, random_token()?);
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|s| alive(s, now));
        if e.len() >= MAX_SESSIONS {
            if let Some(lru) = e.iter().enumerate().min_by_key(|(_, s)| s.last_used).map(|(i, _)| i) {
                e.swap_remove(lru);
            }
        }
        e.push(Entry { id: id.clone(), csrf: csrf.clone(), role, created: now, last_used: now });
        Ok((id, csrf))
    }

    /// The live session with this id, marking it used.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|s| alive(s, now));
        // Every entry is compared, so timing does not tell which prefix matched.
        let mut found = None;
        for (i, s) in e.iter().enumerate() {
            if constant_time_eq(s.id.as_bytes(), id.as_bytes()) {
                found = Some(i);
            }
        }
        let s = &mut e[found?];
        s.last_used = now;
        Some(Session { role: s.role.clone(), csrf: s.csrf.clone() })
    }

    /// Ends a session; false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let before = e.len();
        e.retain(|s| !constant_time_eq(s.id.as_bytes(), id.as_bytes()));
        e.len() < before
    }

    /// Ends every session (the tokens changed: a session made with a revoked token must
    /// not outlive it).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Sessions held now (expired ones included until the next call drops them).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn alive(s: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(s.last_used) < SESSION_IDLE
        && now.saturating_duration_since(s.created) < SESSION_MAX_AGE
}

/// 32 random bytes from the kernel (`getrandom`), as 64 hex digits.
pub fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `b`.
        let n = unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("reading random bytes (getrandom)", e));
        }
        filled += n as usize;
    }
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == COOKIE).map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/")
}

/// The `Set-Cookie` value that ends one.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The credential a request carries, checked: `Err` for one that is present but wrong.
pub(crate) struct Caller {
    /// Who, if anyone.
    pub principal: Option<Principal>,
    /// The session behind a cookie credential, and its id.
    pub session: Option<(String, Session)>,
}

/// The caller's role, for filtering lists.
pub(crate) fn role_of(caller: &Caller) -> Role {
    caller.principal.as_ref().map_or(Role::Viewer(Some(Vec::new())), |p| p.role.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sessions_live_expire_and_end() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let (id, csrf) = s.create_at(Role::Admin, t0).unwrap();
        assert_eq!((id.len(), csrf.len()), (64, 64));
        assert_ne!(id, csrf);
        assert_eq!(s.get_at(&id, t0).unwrap(), Session { role: Role::Admin, csrf: csrf.clone() });
        assert!(s.get_at("0".repeat(64).as_str(), t0).is_none());
        // Used within the idle limit it lives on, up to its maximum age.
        let mut t = t0;
        while t < t0 + SESSION_MAX_AGE - SESSION_IDLE {
            t += SESSION_IDLE - Duration::from_secs(1);
            assert!(s.get_at(&id, t).is_some());
        }
        assert!(s.get_at(&id, t0 + SESSION_MAX_AGE).is_none(), "too old");
        let (id2, _) = s.create_at(Role::Viewer(None), t0).unwrap();
        assert!(s.get_at(&id2, t0 + SESSION_IDLE).is_none(), "idle too long");
        let (id3, _) = s.create_at(Role::Viewer(None), t0).unwrap();
        assert!(s.remove(&id3));
        assert!(!s.remove(&id3));
        assert!(s.get_at(&id3, t0).is_none());
    }

    #[test]
    fn a_full_table_drops_the_least_recently_used() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let ids: Vec<String> = (0..MAX_SESSIONS)
            .map(|i| s.create_at(Role::Admin, t0 + Duration::from_secs(i as u64)).unwrap().0)
            .collect();
        // The first one is used again, so the second is now the least recently used.
        assert!(s.get_at(&ids[0], t0 + Duration::from_secs(100)).is_some());
        s.create_at(Role::Admin, t0 + Duration::from_secs(101)).unwrap();
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.get_at(&ids[1], t0 + Duration::from_secs(102)).is_none());
        assert!(s.get_at(&ids[0], t0 + Duration::from_secs(102)).is_some());
    }

    proptest::proptest! {
        /// Any Cookie header: no panic; a value found is one of its pieces.
        #[test]
        fn any_cookie_header(raw in "\\PC{0,200}") {
            if let Some(v) = cookie_value(&raw) {
                proptest::prop_assert!(raw.contains(v));
            }
        }
    }

    #[test]
    fn cookies() {
        assert_eq!(cookie_value("a=b; edgenvr_session=abc ; c=d"), Some("abc"));
        assert_eq!(cookie_value("edgenvr_sessionx=abc"), None);
        assert_eq!(cookie_value(""), None);
        assert!(set_cookie("x").contains("HttpOnly; SameSite=Strict; Path=/"));
    }
}
