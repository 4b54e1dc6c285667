//! ONVIF: finding IP cameras on the LAN, asking them for their streams, and (for the events
//! issue) listening to their own motion detection. Design and every bound:
//! `docs/design/onvif.md`.
//!
//! ```text
//! discovery (WS-Discovery Probe, UDP multicast; wsd: the messages)
//!   → devices (endpoint, XAddrs, scopes)
//!   → scan: per device, over soap (bounded HTTP, wsse digest on the camera's clock)
//!       device: GetSystemDateAndTime, GetDeviceInformation, GetCapabilities/GetServices
//!       media:  GetProfiles, GetStreamUri (main and sub)
//!   → cameras ready to add (`edgenvr discover`, `GET /api/v1/discover`)
//! events: PullPoint subscription → MotionEvent (camera, active, time)
//! ```
//!
//! Everything here is blocking (std sockets, ureq) and runs on the caller's thread: the CLI,
//! an HTTP handler, or a per-camera events thread. Nothing is spawned except [`scan()`]'s
//! short-lived worker threads (at most [`scan::MAX_PARALLEL`]).

pub mod device;
pub mod discovery;
pub mod events;
pub mod media;
pub mod scan;
pub mod soap;
pub mod wsd;
pub mod wsse;
pub mod xml;

pub use scan::{scan, Candidate, Scan, ScanOptions, Stream};
pub use wsse::Credentials;

/// Shared test inputs.
#[cfg(test)]
pub(crate) mod testdata {
    use proptest::prelude::*;

    /// Cases per property test: 512 keeps the whole set to a few seconds (and bounded under
    /// qemu-user); `PROPTEST_CASES=100000` runs a longer search by hand.
    pub fn config() -> ProptestConfig {
        let default = ProptestConfig::default();
        let cases = if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { 512 };
        ProptestConfig { cases, ..default }
    }

    /// `sample` with up to 8 random byte edits (replace, insert, delete): damaged replies
    /// that still look mostly like XML, which random bytes rarely do.
    pub fn mutated(sample: &'static str) -> impl Strategy<Value = String> {
        let byte = prop_oneof![Just(b'<'), Just(b'>'), Just(b'/'), Just(b'"'), Just(b'&'), Just(b':'), any::<u8>()];
        proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, byte), 1..8).prop_map(move |edits| {
            let mut b = sample.as_bytes().to_vec();
            for (i, op, byte) in edits {
                if b.is_empty() {
                    break;
                }
                let at = i.index(b.len());
                match op {
                    0 => b[at] = byte,
                    1 => b.insert(at, byte),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            String::from_utf8_lossy(&b).into_owned()
        })
    }
}
