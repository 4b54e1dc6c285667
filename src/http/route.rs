//! The route table: a request's method and path parsed into a [`Route`], once, before any
//! handler runs. Ids are taken from the path as they are (never percent-decoded or joined
//! into file paths); handlers look them up in the camera list and the index.

use super::auth::Scope;
use crate::export::Format;

/// The methods the API distinguishes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// GET.
    Get,
    /// HEAD (a GET without the body).
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// Anything else.
    Other,
}

impl Verb {
    /// From the request's method.
    pub fn of(m: &hyper::Method) -> Verb {
        match *m {
            hyper::Method::GET => Verb::Get,
            hyper::Method::HEAD => Verb::Head,
            hyper::Method::POST => Verb::Post,
            hyper::Method::PUT => Verb::Put,
            hyper::Method::DELETE => Verb::Delete,
            _ => Verb::Other,
        }
    }

    /// GET and HEAD change nothing.
    pub fn is_safe(self) -> bool {
        matches!(self, Verb::Get | Verb::Head)
    }
}

/// Every route the API serves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /player.html?camera=&from=&to=`: the plain export player.
    Player,
    /// `GET /` (the web UI's page) and `/ui/{file}` (its modules and style); the name is
    /// what follows `/ui/` (empty for the page), looked up in `super::ui::ASSETS`.
    Ui(&'a str),
    /// `GET /api/v1/health`.
    Health,
    /// `GET /api/v1/status` (PyNVR: `/api/1/system.json`).
    Status,
    /// `GET /api/v1/cameras` (PyNVR: `/api/1/cameras.json`).
    Cameras,
    /// `GET /api/v1/session`: the caller's role and CSRF token.
    Session,
    /// `POST /api/v1/login`.
    Login,
    /// `POST /api/v1/logout`.
    Logout,
    /// `GET /api/v1/cameras/{id}/recordings`.
    Recordings(&'a str),
    /// `GET /api/v1/cameras/{id}/chunks`.
    Chunks(&'a str),
    /// `GET /api/v1/cameras/{id}/export.{mp4,h264,h265}`.
    Export(&'a str, Format),
    /// `GET /api/v1/chunks/{id}` (the id as sent; the handler parses it).
    Chunk(&'a str),
    /// PyNVR's `GET /api/1/range/{camera}.{YYYYMMDD.HHMM}.to.{YYYYMMDD.HHMM}.mp4`.
    PynvrRange(&'a str),
    /// `POST /api/v1/cameras/{id}/events`: start an event (or record a finished one).
    StartEvent(&'a str),
    /// `GET /api/v1/events`: the events, filtered and paged.
    Events,
    /// `GET /api/v1/events/{event}`: one event with links.
    Event(&'a str),
    /// `POST /api/v1/events/{event}/end`: end an open event.
    EndEvent(&'a str),
    /// `POST /api/v1/cameras`: add a camera.
    AddCamera,
    /// `PUT /api/v1/cameras/{id}`: replace a camera's table.
    ReplaceCamera(&'a str),
    /// `DELETE /api/v1/cameras/{id}`.
    RemoveCamera(&'a str),
    /// `POST /api/v1/cameras/{id}/enable` (`true`) and `/disable`.
    SetEnabled(&'a str, bool),
    /// `GET /api/v1/discover`: ONVIF cameras on the LAN.
    Discover,
    /// `GET /api/v1/cameras/{id}/live.mp4`: the live fMP4 stream.
    Live(&'a str),
    /// `GET /api/v1/cameras/{id}/live.m3u8`: the live HLS playlist.
    HlsPlaylist(&'a str),
    /// `GET /api/v1/cameras/{id}/live.{name}`: an HLS segment (`{seq}.m4s`) or init
    /// segment (`init-{generation}.mp4`); the name is what follows `live.`.
    HlsPart(&'a str, &'a str),
    /// `GET /api/v1/cameras/{id}/thumbnail.jpg?at=&width=`.
    Thumbnail(&'a str),
    /// `GET /api/v1/cameras/{id}/keyframe.mp4?at=`: one keyframe as MP4 (H.265's thumbnail).
    Keyframe(&'a str),
    /// `GET /api/v1/cameras/{id}/days?from=&to=&tz=`: the timeline summary.
    Days(&'a str),
    /// PyNVR's `GET /api/1/camera/{id}.(preview|thumbnail).{date}.{HHMM}.(jpg|mp4)`.
    PynvrCamera(&'a str),
    /// PyNVR's `GET /api/1/cameras/{YYYYMMDD}?camera_ids=`: the minutes recorded that day.
    PynvrDay(&'a str),
}

/// Why a request has no route.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// 404.
    NotFound,
    /// 405; the methods the path does allow (for `Allow`).
    MethodNotAllowed(&'static str),
}

impl<'a> Route<'a> {
    /// Parses `path` (without the query).
    pub fn parse(verb: Verb, path: &'a str) -> Result<Route<'a>, RouteError> {
        let route = Route::of_path(path).ok_or(RouteError::NotFound)?;
        let (allowed, allow) = route.methods();
        if !allowed.contains(&verb) {
            return Err(RouteError::MethodNotAllowed(allow));
        }
        // One path, several routes: the method picks.
        Ok(match (route, verb) {
            (Route::Cameras, Verb::Post) => Route::AddCamera,
            (Route::ReplaceCamera(id), Verb::Delete) => Route::RemoveCamera(id),
            (r, _) => r,
        })
    }

    fn of_path(path: &'a str) -> Option<Route<'a>> {
        let rest = path.strip_prefix('/')?;
        let mut segs = rest.split('/');
        let s: [Option<&str>; 6] = std::array::from_fn(|_| segs.next());
        Some(match s {
            [Some("player.html"), None, ..] => Route::Player,
            [Some(""), None, ..] => Route::Ui(""),
            [Some("ui"), Some(name), None, ..] if !name.is_empty() => Route::Ui(name),
            [Some("api"), Some("v1"), Some(what), None, ..] => match what {
                "health" => Route::Health,
                "status" => Route::Status,
                "cameras" => Route::Cameras,
                "session" => Route::Session,
                "login" => Route::Login,
                "logout" => Route::Logout,
                "events" => Route::Events,
                "discover" => Route::Discover,
                _ => return None,
            },
            [Some("api"), Some("v1"), Some("cameras"), Some(id), None, ..] if !id.is_empty() => {
                Route::ReplaceCamera(id)
            }
            [Some("api"), Some("v1"), Some("cameras"), Some(id), Some(what), None] => match what {
                "recordings" => Route::Recordings(id),
                "chunks" => Route::Chunks(id),
                "events" => Route::StartEvent(id),
                "enable" => Route::SetEnabled(id, true),
                "disable" => Route::SetEnabled(id, false),
                "live.mp4" => Route::Live(id),
                "live.m3u8" => Route::HlsPlaylist(id),
                "thumbnail.jpg" => Route::Thumbnail(id),
                "keyframe.mp4" => Route::Keyframe(id),
                "days" => Route::Days(id),
                _ => match what.strip_prefix("live.") {
                    Some(part) => Route::HlsPart(id, part),
                    None => Route::Export(id, Format::from_export_name(what)?),
                },
            },
            [Some("api"), Some("v1"), Some("chunks"), Some(id), None, ..] => Route::Chunk(id),
            [Some("api"), Some("v1"), Some("events"), Some(id), None, ..] => Route::Event(id),
            [Some("api"), Some("v1"), Some("events"), Some(id), Some("end"), None] => Route::EndEvent(id),
            [Some("api"), Some("1"), Some("system.json"), None, ..] => Route::Status,
            [Some("api"), Some("1"), Some("cameras.json"), None, ..] => Route::Cameras,
            [Some("api"), Some("1"), Some("range"), Some(spec), None, ..] => Route::PynvrRange(spec),
            [Some("api"), Some("1"), Some("camera"), Some(spec), None, ..] => Route::PynvrCamera(spec),
            [Some("api"), Some("1"), Some("cameras"), Some(day), None, ..] => Route::PynvrDay(day),
            _ => return None,
        })
    }

    /// The methods the route's path takes, and the same for `Allow`.
    fn methods(&self) -> (&'static [Verb], &'static str) {
        match self {
            Route::Login
            | Route::Logout
            | Route::SetEnabled(..)
            | Route::AddCamera
            | Route::StartEvent(_)
            | Route::EndEvent(_) => (&[Verb::Post], "POST"),
            Route::Cameras => (&[Verb::Get, Verb::Head, Verb::Post], "GET, HEAD, POST"),
            Route::ReplaceCamera(_) | Route::RemoveCamera(_) => (&[Verb::Put, Verb::Delete], "PUT, DELETE"),
            // A scan probes the LAN: not for HEAD.
            Route::Discover => (&[Verb::Get], "GET"),
            _ => (&[Verb::Get, Verb::Head], "GET, HEAD"),
        }
    }

    /// What the caller must be allowed (see [`super::auth::decide`]). A chunk's camera is
    /// known only after the lookup; its handler checks it then.
    pub fn scope(&self) -> Scope<'a> {
        match *self {
            // The UI's files hold no footage or state: the page asks for a login itself.
            Route::Player | Route::Ui(_) | Route::Health | Route::Login => Scope::Open,
            // An event's camera is known after the lookup; its handler checks it then, and
            // the list shows only the cameras the caller may see. The day document's cameras
            // come in the query; its handler checks each.
            Route::Cameras
            | Route::Session
            | Route::Chunk(_)
            | Route::Events
            | Route::Event(_)
            | Route::PynvrDay(_) => Scope::Any,
            // Changes: the admin role (and, with a session, the CSRF token: auth::decide).
            Route::StartEvent(_) | Route::EndEvent(_) => Scope::Admin,
            Route::Status => Scope::AllCameras,
            Route::Logout => Scope::OwnSession,
            Route::AddCamera | Route::ReplaceCamera(_) | Route::RemoveCamera(_) | Route::SetEnabled(..) => Scope::Admin,
            Route::Discover => Scope::Admin,
            Route::Recordings(id)
            | Route::Chunks(id)
            | Route::Export(id, _)
            | Route::Live(id)
            | Route::HlsPlaylist(id)
            | Route::HlsPart(id, _)
            | Route::Thumbnail(id)
            | Route::Keyframe(id)
            | Route::Days(id) => Scope::Camera(id),
            // The camera is the part before the first dot (see the handlers).
            Route::PynvrRange(spec) | Route::PynvrCamera(spec) => Scope::Camera(spec.split('.').next().unwrap_or("")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Route::*;
    use Verb::*;

    #[test]
    fn the_table() {
        let ok = |v, p| Route::parse(v, p).unwrap();
        assert_eq!(ok(Get, "/"), Ui(""));
        assert_eq!(ok(Get, "/ui/app.js"), Ui("app.js"));
        assert_eq!(ok(Get, "/ui/app.js").scope(), Scope::Open);
        assert_eq!(Route::parse(Post, "/ui/app.js"), Err(RouteError::MethodNotAllowed("GET, HEAD")));
        assert_eq!(ok(Head, "/player.html"), Player);
        assert_eq!(ok(Get, "/api/v1/health"), Health);
        assert_eq!(ok(Get, "/api/1/system.json"), Status);
        assert_eq!(ok(Get, "/api/1/cameras.json"), Cameras);
        assert_eq!(ok(Post, "/api/v1/login"), Login);
        assert_eq!(ok(Get, "/api/v1/cameras/door/recordings"), Recordings("door"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/export.mp4"), Export("door", Format::Mp4));
        assert_eq!(ok(Get, "/api/v1/cameras/door/export.h265"), Export("door", Format::H265));
        assert_eq!(ok(Get, "/api/v1/chunks/12"), Chunk("12"));
        assert_eq!(ok(Post, "/api/v1/cameras/door/events"), StartEvent("door"));
        assert_eq!(ok(Get, "/api/v1/events"), Events);
        assert_eq!(ok(Get, "/api/v1/events/7"), Event("7"));
        assert_eq!(ok(Post, "/api/v1/events/7/end"), EndEvent("7"));
        assert_eq!(ok(Post, "/api/v1/events/7/end").scope(), Scope::Admin);
        assert_eq!(Route::parse(Get, "/api/v1/cameras/door/events"), Err(RouteError::MethodNotAllowed("POST")));
        assert_eq!(Route::parse(Post, "/api/v1/events"), Err(RouteError::MethodNotAllowed("GET, HEAD")));
        assert_eq!(ok(Get, "/api/1/range/door.20261121.1456.to.20261121.1457.mp4").scope(), Scope::Camera("door"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/live.mp4"), Live("door"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/live.m3u8"), HlsPlaylist("door"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/live.17.m4s"), HlsPart("door", "17.m4s"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/live.init-2.mp4"), HlsPart("door", "init-2.mp4"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/thumbnail.jpg"), Thumbnail("door"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/keyframe.mp4"), Keyframe("door"));
        assert_eq!(ok(Get, "/api/v1/cameras/door/days"), Days("door"));
        assert_eq!(ok(Get, "/api/1/camera/door.preview.261121.1456.jpg"), PynvrCamera("door.preview.261121.1456.jpg"));
        assert_eq!(ok(Get, "/api/1/camera/door.thumbnail.261121.1456.jpg").scope(), Scope::Camera("door"));
        assert_eq!(ok(Get, "/api/1/cameras/20261121"), PynvrDay("20261121"));
        // Every camera route is scoped to its camera: a viewer of other cameras is refused
        // before the handler runs.
        for p in ["live.mp4", "live.m3u8", "live.3.m4s", "live.init-1.mp4", "thumbnail.jpg", "keyframe.mp4", "days"] {
            let path = format!("/api/v1/cameras/door/{p}");
            assert_eq!(Route::parse(Get, &path).unwrap().scope(), Scope::Camera("door"), "{p}");
        }
        for p in [
            "",
            "/nope",
            "/api/v1/cameras/door/export.avi",
            "/api/v1/cameras/../../etc/passwd",
            "/api/v1/health/",
            "/api/v1/cameras/door/chunks/x",
            "/ui/",
            "/ui/a/b",
        ] {
            assert_eq!(Route::parse(Get, p), Err(RouteError::NotFound), "{p:?}");
        }
        assert_eq!(Route::parse(Post, "/api/v1/status"), Err(RouteError::MethodNotAllowed("GET, HEAD")));
        assert_eq!(Route::parse(Get, "/api/v1/login"), Err(RouteError::MethodNotAllowed("POST")));
        assert_eq!(Route::parse(Delete, "/api/v1/chunks/1"), Err(RouteError::MethodNotAllowed("GET, HEAD")));
        // Camera management: the method picks the route; every change needs the admin.
        assert_eq!(ok(Post, "/api/v1/cameras"), AddCamera);
        assert_eq!(ok(Put, "/api/v1/cameras/door"), ReplaceCamera("door"));
        assert_eq!(ok(Delete, "/api/v1/cameras/door"), RemoveCamera("door"));
        assert_eq!(ok(Post, "/api/v1/cameras/door/enable"), SetEnabled("door", true));
        assert_eq!(ok(Post, "/api/v1/cameras/door/disable"), SetEnabled("door", false));
        assert_eq!(ok(Get, "/api/v1/discover"), Discover);
        for r in [AddCamera, ReplaceCamera("d"), RemoveCamera("d"), SetEnabled("d", true), Discover] {
            assert_eq!(r.scope(), Scope::Admin, "{r:?}");
        }
        assert_eq!(Route::parse(Get, "/api/v1/cameras/door"), Err(RouteError::MethodNotAllowed("PUT, DELETE")));
        assert_eq!(Route::parse(Get, "/api/v1/cameras/door/enable"), Err(RouteError::MethodNotAllowed("POST")));
        assert_eq!(Route::parse(Head, "/api/v1/discover"), Err(RouteError::MethodNotAllowed("GET")));
        assert_eq!(Route::parse(Put, "/api/v1/cameras/"), Err(RouteError::NotFound));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any path: no panic; a route's ids are single path segments.
        #[test]
        fn any_path_parses_or_is_refused(raw in proptest::collection::vec(any::<u8>(), 0..200), post in any::<bool>()) {
            let path = String::from_utf8_lossy(&raw);
            if let Ok(r) = Route::parse(if post { Post } else { Get }, &path) {
                match r {
                    Recordings(id) | Chunks(id) | Export(id, _) | Chunk(id) | PynvrRange(id) | StartEvent(id)
                    | Event(id) | EndEvent(id) | ReplaceCamera(id) | RemoveCamera(id) | SetEnabled(id, _) | Live(id)
                    | HlsPlaylist(id) | Thumbnail(id) | Keyframe(id) | Days(id) | PynvrCamera(id) | PynvrDay(id) => {
                        prop_assert!(!id.contains('/'));
                    }
                    Ui(name) => prop_assert!(!name.contains('/')),
                    HlsPart(id, part) => prop_assert!(!id.contains('/') && !part.contains('/')),
                    _ => {}
                }
                let _ = r.scope();
            }
        }
    }
}
