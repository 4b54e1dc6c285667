//! IANA time zones (`Europe/Berlin`) for answers a client wants in its own local time; the
//! box itself keeps UTC everywhere else.
//!
//! Zones are read from the system's TZif files (`/usr/share/zoneinfo`, the `tzdata` package
//! on Debian and in the Yocto image) and interpreted by `tz-rs`, a small pure-Rust
//! reimplementation of libc's `localtime` (TZif v1-v3 and the POSIX TZ footer that rules
//! beyond the last transition need). Why not the alternatives: a zone database compiled into
//! the binary (`chrono-tz`, `jiff`'s bundled tzdb) adds about 1 MB to a 5 MB binary and goes
//! stale with the firmware, while the system's files are updated with the OS; an own TZif
//! reader would have to get the footer rules right, which is most of `tz-rs`.
//!
//! A zone name comes from a client, so it is checked before it becomes a path: at most 64
//! bytes of `A-Z a-z 0-9 _ + - /`, no empty or dot-leading component; the file must be a
//! regular file of at most 64 KiB.

use crate::err;
use crate::error::{Error, Result};
use std::path::Path;

/// Where the system keeps its zone files.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";
/// Largest zone file read (real ones are under 4 KiB).
const MAX_TZIF_BYTES: u64 = 64 << 10;

/// A loaded time zone.
pub struct Zone {
    name: String,
    tz: tz::TimeZone,
}

fn bad(name: &str, why: &str) -> Error {
    err!(InvalidArgument, "time zone {name:?}: {why}; use an IANA name like Europe/Berlin")
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone { name: "UTC".to_owned(), tz: tz::TimeZone::utc() }
    }

    /// The zone `name` from the system's zone files.
    pub fn load(name: &str) -> Result<Zone> {
        Zone::load_from(Path::new(ZONEINFO), name)
    }

    /// The zone `name` from the zone files under `dir`.
    pub fn load_from(dir: &Path, name: &str) -> Result<Zone> {
        if name == "UTC" || name == "Etc/UTC" {
            return Ok(Zone::utc());
        }
        let valid_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-/".contains(&b));
        let valid_parts = name.split('/').all(|p| !p.is_empty() && !p.starts_with('.'));
        if name.is_empty() || name.len() > 64 || !valid_chars || !valid_parts {
            return Err(bad(name, "not a zone name"));
        }
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).map_err(|_| bad(name, "unknown zone"))?;
        if !meta.is_file() || meta.len() > MAX_TZIF_BYTES {
            return Err(bad(name, "unknown zone"));
        }
        let data = std::fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let tz = tz::TimeZone::from_tz_data(&data).map_err(|_| bad(name, "its zone file does not parse"))?;
        Ok(Zone { name: name.to_owned(), tz })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset from UTC, in seconds, at Unix time `unix_s`.
    pub fn offset_s(&self, unix_s: i64) -> i64 {
        self.tz.find_local_time_type(unix_s).map_or(0, |t| t.ut_offset() as i64)
    }

    /// The first instant (Unix seconds) whose local wall-clock time is at or after `local_s`
    /// (local seconds counted like Unix time): the instant itself when that local time
    /// happens (the earlier one when it happens twice), else the transition that skips it.
    pub fn local_to_utc(&self, local_s: i64) -> i64 {
        let before = self.offset_s(local_s - 86_400);
        let after = self.offset_s(local_s + 86_400);
        let exact = [before, after].into_iter().map(|o| local_s - o).filter(|&t| t + self.offset_s(t) == local_s).min();
        exact.unwrap_or_else(|| {
            // Skipped by a transition: find it (the first instant whose local time is past
            // `local_s`) between the two candidates.
            let (mut lo, mut hi) = ((local_s - before).min(local_s - after), (local_s - before).max(local_s - after));
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if mid + self.offset_s(mid) >= local_s {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::time::days_from_civil;

    fn local(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600
    }

    #[test]
    fn berlin_midnights_and_dst_days() {
        let z = Zone::load("Europe/Berlin").expect("tzdata is installed (scripts/install-deps.sh)");
        // Winter: UTC+1.
        assert_eq!(z.local_to_utc(local(2026, 1, 15, 0)), local(2026, 1, 14, 23));
        // 2026-03-29 has 23 hours, 2026-10-25 has 25.
        let d = |y, m, dd| z.local_to_utc(local(y, m, dd, 0));
        assert_eq!(d(2026, 3, 30) - d(2026, 3, 29), 23 * 3600);
        assert_eq!(d(2026, 10, 26) - d(2026, 10, 25), 25 * 3600);
        // 02:30 does not exist on 2026-03-29: the day jumps from 02:00 CET to 03:00 CEST,
        // at 01:00 UTC.
        assert_eq!(z.local_to_utc(local(2026, 3, 29, 2) + 1800), local(2026, 3, 29, 1));
        // 02:30 happens twice on 2026-10-25: the first time is 00:30 UTC.
        assert_eq!(z.local_to_utc(local(2026, 10, 25, 2) + 1800), local(2026, 10, 25, 0) + 1800);
        // Far beyond the file's transitions, the footer rule still gives summer time.
        assert_eq!(z.offset_s(local(2090, 7, 1, 12)), 7200);
    }

    #[test]
    fn half_hour_zones_and_utc() {
        let z = Zone::load("Asia/Kolkata").unwrap();
        assert_eq!(z.offset_s(0), 19_800);
        assert_eq!(z.local_to_utc(local(2026, 11, 21, 0)), local(2026, 11, 20, 18) + 1800);
        assert_eq!(Zone::load("UTC").unwrap().local_to_utc(12345), 12345);
    }

    #[test]
    fn hostile_names_never_become_paths() {
        for name in ["../../etc/passwd", "/etc/passwd", "Europe/../../x", "", ".hidden", "a//b", "Europe/Nowhere"] {
            assert_eq!(Zone::load(name).err().map(|e| e.kind()), Some(ErrorKind::InvalidArgument), "{name}");
        }
        // A directory, or a file that is not TZif.
        assert!(Zone::load("Europe").is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Fake"), b"not a zone").unwrap();
        assert!(Zone::load_from(dir.path(), "Fake").is_err());
    }
}
