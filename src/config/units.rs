//! The units config values are written in: durations (`"2s"`, `"30d"`), sizes (`"2GiB"`)
//! and free space (a size or `"10%"`).

use std::time::Duration;

/// How much free space the reaper keeps on a root.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum FreeSpace {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A percentage (0..100) of the filesystem's size.
    Percent(f64),
}

impl FreeSpace {
    /// The watermark in bytes for a filesystem of `total_bytes`.
    pub fn bytes_for(&self, total_bytes: u64) -> u64 {
        match *self {
            FreeSpace::Bytes(b) => b,
            FreeSpace::Percent(p) => (total_bytes as f64 * p / 100.0) as u64,
        }
    }
}

/// Parses `"500ms"`, `"2s"`, `"5m"`, `"12h"`, `"30d"`, `"1w"` (one number, one unit).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration (use e.g. \"500ms\", \"2s\", \"30d\")"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        "w" => n * 7.0 * 86_400.0,
        _ => return Err(format!("{s:?} has no known unit (ms, s, m, h, d, w)")),
    };
    // At least a microsecond: a tinier positive number would round to a zero duration
    // (found by `fuzz_values_and_config`).
    if !secs.is_finite() || !(1e-6..=100.0 * 365.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a byte size: `"1048576"`, `"500MB"` (10^6), `"2GiB"` (2^30), `"1.5T"` (binary).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a size (use e.g. \"2GiB\", \"500MB\")"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TiB" => 1024.0f64.powi(4),
        _ => return Err(format!("{s:?} has no known unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 / 2.0 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(v as u64)
}

/// Parses a free-space watermark: a size, or a percentage like `"10%"`.
pub fn parse_free_space(s: &str) -> std::result::Result<FreeSpace, String> {
    match s.trim().strip_suffix('%') {
        Some(p) => {
            let v: f64 = p.trim().parse().map_err(|_| format!("{s:?} is not a percentage"))?;
            if !(0.0..100.0).contains(&v) {
                return Err(format!("{s:?} must be from 0% to below 100%"));
            }
            Ok(FreeSpace::Percent(v))
        }
        None => parse_size(s).map(FreeSpace::Bytes),
    }
}
