//! The web UI (issue 15, `docs/design/webui.md`): the files under `web/` at the top of the
//! tree, embedded in the binary with `include_bytes!` and served at `/` (the page) and
//! `/ui/{file}` (its modules and style). No build step: the files in `web/` are what the
//! browser gets, byte for byte.
//!
//! - Cost: the files' bytes in the binary (about 46 KB, 17 KB gzip, measured in
//!   `docs/design/webui.md`), no memory per request (the bodies are `&'static`), no thread.
//! - Served identity (not gzip): flate2 is no dependency and the UI is loaded once per
//!   visit, then revalidated by `ETag` (304, no body).
//! - Every reply carries a strict Content Security Policy ([`CSP`]): scripts, styles and
//!   media from this origin only, no inline script, no framing.

/// One embedded file.
pub struct Asset {
    /// Its name under `/ui/` (the page is also `/`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ctype:expr) => {
        Asset { name: $name, content_type: $ctype, bytes: include_bytes!(concat!("../../web/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The UI's files: the page, its modules, its style.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("fmt.js", JS),
    asset!("grid.js", JS),
    asset!("camera.js", JS),
    asset!("live.js", JS),
    asset!("timeline.js", JS),
    asset!("status.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// The Content Security Policy of every UI reply: nothing inline, nothing from elsewhere;
/// `blob:` for the live player's MediaSource; no framing (clickjacking), no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
     media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The file named `name` (`""`: the page).
pub fn find(name: &str) -> Option<&'static Asset> {
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}

impl Asset {
    /// A strong `ETag`: FNV-1a of the bytes (the files change only with the binary).
    pub fn etag(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in self.bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("\"ui-{h:016x}\"")
    }
}

/// The whole UI's size, bytes (uncompressed).
pub fn total_bytes() -> usize {
    ASSETS.iter().map(|a| a.bytes.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_found_and_nothing_else() {
        assert_eq!(find("").unwrap().name, "index.html");
        for a in ASSETS {
            assert!(std::ptr::eq(find(a.name).unwrap(), a), "{}", a.name);
            assert!(!a.bytes.is_empty(), "{}", a.name);
        }
        for bad in ["../Cargo.toml", "nope.js", "index.html/", "/index.html", "INDEX.HTML"] {
            assert!(find(bad).is_none(), "{bad}");
        }
        assert_ne!(find("app.js").unwrap().etag(), find("api.js").unwrap().etag());
    }

    /// Every module the page or another module imports is embedded (a file added to
    /// `web/` but not to [`ASSETS`] would be a 404 in the browser).
    #[test]
    fn every_import_is_embedded() {
        for a in ASSETS {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for part in text.split("from './").skip(1).chain(text.split("=\"/ui/").skip(1)) {
                let name = part.split(['\'', '"']).next().unwrap();
                assert!(find(name).is_some(), "{} imports {name}, which is not embedded", a.name);
            }
        }
    }

    /// The page has no inline script or style (the CSP forbids them: they would not run).
    #[test]
    fn the_page_has_nothing_inline() {
        let page = std::str::from_utf8(find("").unwrap().bytes).unwrap();
        assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains(" style="), "{page}");
        let handler = page.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "an inline event handler (onclick=...) in the page");
    }

    /// Issue 15's budget: the whole UI at most 100 KB gzip. Uncompressed it may be larger;
    /// 160 KB uncompressed keeps it well inside (text compresses 3-4x).
    #[test]
    fn the_ui_is_within_its_budget() {
        assert!(total_bytes() <= 160_000, "the UI is {} bytes", total_bytes());
    }
}
