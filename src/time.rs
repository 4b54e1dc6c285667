//! Wall-clock time as the recorder stores it: signed microseconds since the Unix epoch, UTC.
//!
//! Calendar conversion is done here, without a date crate, because the recorder needs only
//! three things: the UTC minute a timestamp falls in (chunk rotation), the `YYYYMMDD` and
//! `HHMM` strings of a chunk's path, and parsing those strings back (import and PyNVR
//! routes). The civil-date arithmetic follows the proleptic Gregorian calendar. The rules
//! for where timestamps come from are in `docs/design/time.md`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds in one second.
pub const US_PER_SEC: i64 = 1_000_000;
/// Microseconds in one minute: the length of a chunk file's slot.
pub const US_PER_MIN: i64 = 60 * US_PER_SEC;
/// Microseconds in one day.
pub const US_PER_DAY: i64 = 86_400 * US_PER_SEC;

/// A wall clock: µs since the epoch now. The real one is [`now_us`]; code that decides by
/// the time of day takes one, so its tests can fix the time.
pub type WallClock = fn() -> i64;

/// The system's wall clock now, in µs since the epoch (negative before 1970).
pub fn now_us() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// The index of the UTC minute containing `ts_us` (floor division, correct before 1970).
pub fn minute_of(ts_us: i64) -> i64 {
    ts_us.div_euclid(US_PER_MIN)
}

/// A broken-down UTC time, as used in chunk paths.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
}

/// Days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Civil {
    /// Breaks a timestamp down into UTC calendar fields.
    pub fn from_us(ts_us: i64) -> Civil {
        let secs = ts_us.div_euclid(US_PER_SEC);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil { year, month, day, hour: sod / 3600, minute: sod / 60 % 60, second: sod % 60 }
    }

    /// Back to µs since the epoch (the second's start).
    pub fn to_us(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        (days * 86_400 + self.hour as i64 * 3600 + self.minute as i64 * 60 + self.second as i64) * US_PER_SEC
    }

    /// `YYYYMMDD`, the day directory of a chunk.
    pub fn yyyymmdd(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// `HHMM`, the minute part of a chunk's file name.
    pub fn hhmm(&self) -> String {
        format!("{:02}{:02}", self.hour, self.minute)
    }
}

/// Parses `YYYYMMDD.HHMM` (as in chunk names and PyNVR's range route) to the minute's start.
pub fn parse_yyyymmdd_hhmm(s: &str) -> Option<i64> {
    let (d, t) = s.split_once('.')?;
    if d.len() != 8 || t.len() != 4 || !d.bytes().chain(t.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let c = Civil {
        year: d[0..4].parse().ok()?,
        month: d[4..6].parse().ok()?,
        day: d[6..8].parse().ok()?,
        hour: t[0..2].parse().ok()?,
        minute: t[2..4].parse().ok()?,
        second: 0,
    };
    if !(1..=12).contains(&c.month)
        || c.day == 0
        || c.day > days_in_month(c.year, c.month)
        || c.hour > 23
        || c.minute > 59
    {
        return None;
    }
    Some(c.to_us())
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a time as the API and CLI accept it: Unix seconds (`1795272963`, fractions
/// allowed) or RFC 3339 (`2026-11-21T14:56:03Z`, `2026-11-21T15:56:03.5+01:00`).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let v: f64 = s.parse().ok()?;
        return (v < 1e11).then_some((v * 1e6).round() as i64);
    }
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let c = Civil {
        year: num(0..4)? as i64,
        month: num(5..7)?,
        day: num(8..10)?,
        hour: num(11..13)?,
        minute: num(14..16)?,
        second: num(17..19)?,
    };
    if !(1..=12).contains(&c.month)
        || c.day == 0
        || c.day > days_in_month(c.year, c.month)
        || c.hour > 23
        || c.minute > 59
        || c.second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_us = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let d = &f[..digits.min(6)];
        frac_us = d.parse::<i64>().ok()? * 10i64.pow(6 - d.len() as u32);
        rest = &f[digits..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let (sign, hm) = match rest.as_bytes().first()? {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let (h, m) = hm.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    Some(c.to_us() + frac_us - offset_s * US_PER_SEC)
}

/// Formats a timestamp as RFC 3339 UTC with milliseconds, for logs and the burned-in clock.
pub fn format_rfc3339(ts_us: i64) -> String {
    let c = Civil::from_us(ts_us);
    let ms = ts_us.rem_euclid(US_PER_SEC) / 1000;
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", c.year, c.month, c.day, c.hour, c.minute, c.second, ms)
}

/// Formats a timestamp as RFC 3339 UTC with microseconds, the recorder's own precision: a
/// time a client sends back (`X-Frame-Time` as `?at=`) names exactly the same frame, where
/// [`format_rfc3339`]'s milliseconds would name a moment before it.
pub fn format_rfc3339_us(ts_us: i64) -> String {
    let c = Civil::from_us(ts_us);
    let us = ts_us.rem_euclid(US_PER_SEC);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", c.year, c.month, c.day, c.hour, c.minute, c.second, us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsecond_times_round_trip_exactly() {
        // 2026-11-21T14:56:03.123456Z, and times either side of a second and before 1970.
        let ts = 1_795_272_963 * US_PER_SEC + 123_456;
        assert_eq!(format_rfc3339_us(ts), "2026-11-21T14:56:03.123456Z");
        for t in [ts, ts + 543, 1_795_272_963 * US_PER_SEC, 1_795_272_963 * US_PER_SEC - 1, 1, -1, -1_000_001] {
            assert_eq!(parse_time(&format_rfc3339_us(t)), Some(t), "{}", format_rfc3339_us(t));
        }
    }

    #[test]
    fn civil_round_trip_known_dates() {
        // 2026-11-21T14:56:03Z, checked with `date -u -d @1795272963`.
        let ts = 1_795_272_963 * US_PER_SEC;
        let c = Civil::from_us(ts);
        assert_eq!((c.year, c.month, c.day, c.hour, c.minute, c.second), (2026, 11, 21, 14, 56, 3));
        assert_eq!(c.yyyymmdd(), "20261121");
        assert_eq!(c.hhmm(), "1456");
        assert_eq!(c.to_us(), ts);
        assert_eq!(Civil::from_us(0).yyyymmdd(), "19700101");
        // Leap day and a negative timestamp.
        assert_eq!(Civil::from_us(951_782_400 * US_PER_SEC).yyyymmdd(), "20000229");
        assert_eq!(Civil::from_us(-1).yyyymmdd(), "19691231");
    }

    #[test]
    fn every_day_for_800_years_round_trips() {
        for days in (-200 * 366)..(600 * 366) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn parses_path_times_and_rejects_nonsense() {
        assert_eq!(parse_yyyymmdd_hhmm("20261121.1456"), Some(1_795_272_960 * US_PER_SEC));
        for bad in ["20261321.1456", "20260230.0000", "2026112.1456", "20261121.2460", "2026x121.1456", "", "20261121"]
        {
            assert_eq!(parse_yyyymmdd_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn minute_floor_is_euclidean() {
        assert_eq!(minute_of(59_999_999), 0);
        assert_eq!(minute_of(60_000_000), 1);
        assert_eq!(minute_of(-1), -1);
    }

    #[test]
    fn parses_api_times() {
        let t = 1_795_272_963 * US_PER_SEC;
        assert_eq!(parse_time("1795272963"), Some(t));
        assert_eq!(parse_time("1795272963.5"), Some(t + 500_000));
        assert_eq!(parse_time("2026-11-21T14:56:03Z"), Some(t));
        assert_eq!(parse_time("2026-11-21T15:56:03.25+01:00"), Some(t + 250_000));
        assert_eq!(parse_time("2026-11-21T13:56:03-01:00"), Some(t));
        for bad in [
            "",
            "yesterday",
            "2026-11-21",
            "2026-13-21T14:56:03Z",
            "2026-11-21T14:56:03",
            "2026-11-21T14:56:03.Z",
            "1e9",
            "99999999999999",
            "../etc/passwd",
            "2026-11-21T14:56:03+0100",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(1_795_272_963_123_456), "2026-11-21T14:56:03.123Z");
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]

        /// Arbitrary-bytes target of the time parsers the API and the CLI use: never a
        /// panic, and what `format_rfc3339` writes reads back to the millisecond.
        #[test]
        fn fuzz_time_parsers(s in "\\PC{0,40}", ts in -2_000_000_000_000_000i64..200_000_000_000_000_000) {
            let _ = parse_time(&s);
            let _ = parse_yyyymmdd_hhmm(&s);
            let ms = ts.div_euclid(1000) * 1000;
            proptest::prop_assert_eq!(parse_time(&format_rfc3339(ts)), Some(ms));
            let c = Civil::from_us(ts);
            let name = format!("{}.{}", c.yyyymmdd(), c.hhmm());
            proptest::prop_assert_eq!(parse_yyyymmdd_hhmm(&name), Some(ts.div_euclid(US_PER_MIN) * US_PER_MIN));
        }
    }
}
