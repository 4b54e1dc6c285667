//! `[[archive]]`: durations and sizes are converted here with the config's own parsers; the
//! rest is checked by [`crate::archive::settings`] (`docs/design/archive.md`).

use super::check::invalid;
use super::{parse_duration, parse_size};
use crate::error::Result;

/// `[[archive]]`: durations and sizes converted here, the rest checked by the archive.
pub(super) fn from_raw(
    raw: Vec<crate::archive::settings::RawArchive>,
) -> Result<Vec<crate::archive::settings::ArchiveConfig>> {
    use crate::archive::settings::{ArchiveConfig, Units, MAX_TARGETS};
    if raw.len() > MAX_TARGETS {
        return Err(invalid("archive", format!("at most {MAX_TARGETS} targets are supported")));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let key = |k: &str| format!("archive[{i}].{k}");
            let dur = |k: &str, v: &Option<String>, default: &str| {
                parse_duration(v.as_deref().unwrap_or(default)).map_err(|why| invalid(&key(k), why))
            };
            let max_rate = match &a.max_rate {
                None => None,
                Some(v) => Some(parse_size(v).map_err(|why| invalid(&key("max_rate"), why))?),
            };
            let units = Units {
                delay: dur("delay", &a.delay, "1m")?,
                max_rate,
                max_backlog_age: dur("max_backlog_age", &a.max_backlog_age, "1h")?,
                manifest_interval: dur("manifest_interval", &a.manifest_interval, "10m")?,
            };
            ArchiveConfig::from_raw(i, a, units)
        })
        .collect()
}
