//! The table of routes: a request path parsed into a [`Route`] before anything is looked up,
//! so every route the API answers reads in one place ([`Route::parse`]) and the handlers get
//! typed arguments instead of path strings.
//!
//! Parsing only reads the path: whether a camera or a chunk exists is the handlers' question
//! (a 404 there). A malformed argument (a chunk id that is not a number, a PyNVR range that
//! is not `YYYYMMDD.HHMM`) is a 400 here; a path that names no route is a 404. Ids are never
//! decoded nor joined into file paths: the handlers look them up in the config and index.

use crate::error::{Error, ErrorKind, Result};
use crate::media::h26x::Codec;
use crate::time::{parse_yyyymmdd_hhmm, US_PER_MIN};

/// The file an export is served as: an MP4 of any codec, or the raw Annex B stream, whose
/// name must match the footage's codec (an `.h265` file holding H.264 would mislead every
/// player that trusts the extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// `export.mp4`: an MP4 file, for H.264 or H.265 footage.
    Mp4,
    /// `export.h264`: the raw H.264 stream, for H.264 footage only.
    H264,
    /// `export.h265`: the raw H.265 stream, for H.265 footage only.
    H265,
}

impl ExportFormat {
    /// The format a route's last segment (`export.mp4`, ...) asks for.
    fn from_segment(seg: &str) -> Option<ExportFormat> {
        match seg {
            "export.mp4" => Some(ExportFormat::Mp4),
            "export.h264" => Some(ExportFormat::H264),
            "export.h265" => Some(ExportFormat::H265),
            _ => None,
        }
    }

    /// The raw format of `codec`'s footage.
    pub fn raw(codec: Codec) -> ExportFormat {
        match codec {
            Codec::H264 => ExportFormat::H264,
            Codec::H265 => ExportFormat::H265,
        }
    }

    /// The file name extension (and the route's suffix after `export.`).
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Mp4 => "mp4",
            ExportFormat::H264 => "h264",
            ExportFormat::H265 => "h265",
        }
    }

    /// Whether footage in `codec` can be served in this format; if not, a 400 naming the
    /// route that serves it (`camera` is a configured id, checked by the config).
    pub fn check_codec(self, camera: &str, codec: Codec) -> Result<()> {
        let raw = ExportFormat::raw(codec);
        if self == ExportFormat::Mp4 || self == raw {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "this footage is {}, not {}: ask for /api/v1/cameras/{camera}/export.{} (or export.mp4)",
                codec.as_str(),
                self.extension(),
                raw.extension()
            ),
        ))
    }
}

/// What a request path asks for; borrowed from the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`, `/player.html`: the player page.
    Player,
    /// `/api/v1/status`, PyNVR's `/api/1/system.json`.
    Status,
    /// `/api/v1/health` (open without a token).
    Health,
    /// `/api/v1/cameras`, PyNVR's `/api/1/cameras.json`.
    Cameras,
    /// `/api/v1/cameras/{camera}/recordings`: runs and gaps.
    Recordings {
        /// The camera id as written in the path.
        camera: &'a str,
    },
    /// `/api/v1/cameras/{camera}/chunks`: chunk rows, paged.
    Chunks {
        /// The camera id as written in the path.
        camera: &'a str,
    },
    /// `/api/v1/cameras/{camera}/export.{mp4,h264,h265}?from=&to=`.
    Export {
        /// The camera id as written in the path.
        camera: &'a str,
        /// The file asked for.
        format: ExportFormat,
    },
    /// `/api/v1/chunks/{id}`: one sealed chunk file.
    Chunk {
        /// The chunk's row id.
        id: i64,
    },
    /// PyNVR's `/api/1/range/{camera}.{YYYYMMDD.HHMM}.to.{YYYYMMDD.HHMM}.mp4`: an MP4 of
    /// whole minutes, both ends included.
    PynvrRange {
        /// The camera id as written in the path.
        camera: &'a str,
        /// Start of the first minute, µs.
        from: i64,
        /// End of the last minute (exclusive), µs.
        to: i64,
    },
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

fn not_found(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::NotFound, msg)
}

impl<'a> Route<'a> {
    /// Parses a request path (without its query): the table of routes.
    pub fn parse(path: &'a str) -> Result<Route<'a>> {
        let segs: Vec<&str> = path.split('/').skip(1).take(8).collect();
        Ok(match segs.as_slice() {
            [""] | ["player.html"] => Route::Player,
            ["api", "v1", "status"] | ["api", "1", "system.json"] => Route::Status,
            ["api", "v1", "health"] => Route::Health,
            ["api", "v1", "cameras"] | ["api", "1", "cameras.json"] => Route::Cameras,
            ["api", "v1", "cameras", camera, "recordings"] => Route::Recordings { camera },
            ["api", "v1", "cameras", camera, "chunks"] => Route::Chunks { camera },
            ["api", "v1", "cameras", camera, what] => match ExportFormat::from_segment(what) {
                Some(format) => Route::Export { camera, format },
                None => return Err(not_found(format!("no route {path}"))),
            },
            ["api", "v1", "chunks", id] => {
                Route::Chunk { id: id.parse().map_err(|_| bad(format!("chunk id {id:?} is not a number")))? }
            }
            ["api", "1", "range", spec] => Route::pynvr_range(spec)?,
            _ => return Err(not_found(format!("no route {path}"))),
        })
    }

    /// `{camera}.{YYYYMMDD.HHMM}.to.{YYYYMMDD.HHMM}.mp4`, minutes inclusive.
    fn pynvr_range(spec: &'a str) -> Result<Route<'a>> {
        let spec = spec.strip_suffix(".mp4").ok_or_else(|| not_found("PyNVR ranges end in .mp4"))?;
        let (head, end) =
            spec.split_once(".to.").ok_or_else(|| bad("expected CAMERA.YYYYMMDD.HHMM.to.YYYYMMDD.HHMM.mp4"))?;
        let (camera, start) = head.split_once('.').ok_or_else(|| bad("expected CAMERA.YYYYMMDD.HHMM"))?;
        let from = parse_yyyymmdd_hhmm(start).ok_or_else(|| bad(format!("{start:?} is not YYYYMMDD.HHMM")))?;
        let to = parse_yyyymmdd_hhmm(end).ok_or_else(|| bad(format!("{end:?} is not YYYYMMDD.HHMM")))? + US_PER_MIN;
        if from >= to {
            return Err(bad("the range ends before it starts"));
        }
        Ok(Route::PynvrRange { camera, from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExportFormat::*;

    /// 2026-11-21 14:56 UTC, µs.
    const T1456: i64 = 1_795_272_960_000_000;

    #[test]
    fn every_route_parses_to_its_variant() {
        for (path, want) in [
            ("/", Route::Player),
            ("/player.html", Route::Player),
            ("/api/v1/status", Route::Status),
            ("/api/1/system.json", Route::Status),
            ("/api/v1/health", Route::Health),
            ("/api/v1/cameras", Route::Cameras),
            ("/api/1/cameras.json", Route::Cameras),
            ("/api/v1/cameras/cam/recordings", Route::Recordings { camera: "cam" }),
            ("/api/v1/cameras/cam/chunks", Route::Chunks { camera: "cam" }),
            ("/api/v1/cameras/cam/export.mp4", Route::Export { camera: "cam", format: Mp4 }),
            ("/api/v1/cameras/cam/export.h264", Route::Export { camera: "cam", format: H264 }),
            ("/api/v1/cameras/cam/export.h265", Route::Export { camera: "cam", format: H265 }),
            ("/api/v1/chunks/42", Route::Chunk { id: 42 }),
            (
                "/api/1/range/cam.20261121.1456.to.20261121.1457.mp4",
                Route::PynvrRange { camera: "cam", from: T1456, to: T1456 + 2 * US_PER_MIN },
            ),
            (
                "/api/1/range/cam.20261121.1456.to.20261121.1456.mp4",
                Route::PynvrRange { camera: "cam", from: T1456, to: T1456 + US_PER_MIN },
            ),
            // Ids are not decoded or checked here: the lookup answers 404 for these.
            ("/api/v1/cameras/..%2F..%2Fetc%2Fpasswd/chunks", Route::Chunks { camera: "..%2F..%2Fetc%2Fpasswd" }),
            ("/api/v1/cameras//recordings", Route::Recordings { camera: "" }),
            ("/api/v1/chunks/-1", Route::Chunk { id: -1 }),
        ] {
            assert_eq!(Route::parse(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn hostile_and_unknown_paths_are_refused_with_the_right_kind() {
        use ErrorKind::{InvalidArgument as Bad, NotFound};
        let long = format!("/api/v1/cameras/{}/chunks/x", "a/".repeat(5000));
        for (path, kind) in [
            ("", NotFound),
            ("*", NotFound),
            ("nope", NotFound),
            ("/nope", NotFound),
            ("//api/v1/status", NotFound),
            ("/api/v1/status/", NotFound),
            ("/API/V1/STATUS", NotFound),
            ("/api/v1/cameras/../../etc/passwd", NotFound),
            ("/api/v1/cameras/cam/export.MP4", NotFound),
            ("/api/v1/cameras/cam/export.avi", NotFound),
            ("/api/v1/cameras/cam/export", NotFound),
            ("/api/v1/cameras/cam/chunks/1", NotFound),
            ("/api/v1/cameras/cam", NotFound),
            (&long, NotFound),
            ("/api/v1/chunks/..%2F..%2Fetc%2Fpasswd", Bad),
            ("/api/v1/chunks/1%2F..%2F..", Bad),
            ("/api/v1/chunks/", Bad),
            ("/api/v1/chunks/99999999999999999999999", Bad),
            ("/api/v1/chunks/1.5", Bad),
            ("/api/1/range/cam.20261121.1456.to.20261121.1457", NotFound),
            ("/api/1/range/cam.20261121.1456.to.20261121.1457.mkv", NotFound),
            ("/api/1/range/..%2F..%2Fetc.20261121.1456.to.20261121.1457.mp4", Bad),
            ("/api/1/range/cam.2026x121.1456.to.20261121.1457.mp4", Bad),
            ("/api/1/range/cam.20261121.1456.to.2026112.1457.mp4", Bad),
            ("/api/1/range/cam.20261121.1500.to.20261121.1456.mp4", Bad),
            ("/api/1/range/cam-20261121-1456.mp4", Bad),
            ("/api/1/range/cam.to..mp4", Bad),
            ("/api/1/range/.mp4", Bad),
        ] {
            let e = Route::parse(path).expect_err(path);
            assert_eq!(e.kind(), kind, "{path}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn raw_exports_follow_the_footage_codec() {
        for (format, codec, ok) in [
            (Mp4, Codec::H264, true),
            (Mp4, Codec::H265, true),
            (H264, Codec::H264, true),
            (H265, Codec::H265, true),
            (H265, Codec::H264, false),
            (H264, Codec::H265, false),
        ] {
            let r = format.check_codec("cam", codec);
            assert_eq!(r.is_ok(), ok, "{format:?} of {codec:?}");
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::InvalidArgument);
                let right = format!("/api/v1/cameras/cam/export.{}", codec.as_str());
                assert!(e.to_string().contains(&right), "{e}");
            }
        }
    }
}
