//! The timeline summary: per day of a client's time zone, per hour, how many seconds were
//! recorded and where the gaps are; cheap enough to draw a month.
//!
//! Cost: one index query per request, reading three integer columns of the camera's chunk
//! rows in the range (about 1,440 rows per day, streamed, never whole `ChunkRow`s), merged
//! into recorded stretches on the fly. Memory: the stretches (a handful per day unless the
//! camera flaps) and the output, at most [`MAX_DAYS`] × 25 hours with at most
//! [`MAX_GAPS_PER_HOUR`] gaps listed per hour.
//!
//! Rules:
//! 1. Chunks whose rows follow each other within [`MAX_FRAME_GAP_US`] form one recorded
//!    stretch, as in the recordings list; the chunk being written reaches the camera's last
//!    frame (its row is only completed at the seal).
//! 2. A gap is any time of the hour, up to now, that no stretch covers. Time after now is
//!    neither recorded nor a gap.
//! 3. Local days start at local midnight (or the first instant after it, when a DST change
//!    skips midnight); their hours are the hour-long steps from there, so a day has 23, 24
//!    or 25 of them, each labelled with the local hour it starts at and its UTC offset.
//! 4. `events` counts the camera's events starting in the hour (from the `event` table,
//!    one more indexed query; at most [`MAX_EVENTS`] per request are counted).

use super::{ChunkState, Index};
use crate::bail;
use crate::chunk::writer::MAX_FRAME_GAP_US;
use crate::error::{Error, Result};
use crate::time::{days_from_civil, Civil, US_PER_SEC};
use crate::tz::Zone;
use rusqlite::Connection;
use serde::Serialize;

/// Most days one request may cover (a month view, with slack).
pub const MAX_DAYS: i64 = 62;
/// Gaps listed per hour (the longest are not chosen: the first ones are; `more_gaps` counts
/// the rest, whose time is still in `gap_s`).
pub const MAX_GAPS_PER_HOUR: usize = 16;

/// The answer of `GET /api/v1/cameras/{id}/days`.
#[derive(Serialize, Debug)]
pub struct DaysDoc {
    /// Camera id.
    pub camera: String,
    /// The zone the days are in.
    pub tz: String,
    /// The days, in order.
    pub days: Vec<DaySummary>,
}

/// One local day.
#[derive(Serialize, Debug)]
pub struct DaySummary {
    /// `YYYY-MM-DD`, local.
    pub date: String,
    /// Its first instant, µs since the epoch.
    pub start_us: i64,
    /// The next day's first instant.
    pub end_us: i64,
    /// Seconds recorded in the day.
    pub recorded_s: f64,
    /// Its hours (23, 24 or 25).
    pub hours: Vec<HourSummary>,
}

/// One hour of a local day.
#[derive(Serialize, Debug)]
pub struct HourSummary {
    /// The local hour it starts at (0-23; twice the same on the day clocks go back).
    pub hour: u32,
    /// UTC offset of its start, seconds.
    pub utc_offset_s: i64,
    /// Its first instant, µs.
    pub start_us: i64,
    /// Seconds recorded.
    pub recorded_s: f64,
    /// Seconds not recorded, up to now.
    pub gap_s: f64,
    /// The gaps, `[start_us, end_us]`, clipped to the hour (and to now).
    pub gaps: Vec<[i64; 2]>,
    /// Gaps not listed.
    pub more_gaps: u32,
    /// Seconds of `recorded_s` held only in an off-box archive (the reaper removed them
    /// here; exports fetch them back): `docs/design/archive.md`.
    pub archived_s: f64,
    /// Events starting in the hour (rule 4).
    pub events: Option<u32>,
}

/// Most events counted per request (8 bytes each while the summary is built).
pub const MAX_EVENTS: usize = 100_000;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (s[..4].parse().ok()?, s[5..7].parse().ok()?, s[8..].parse().ok()?);
    let ok = (1..=12).contains(&m) && (1..=31).contains(&d) && civil_day(days_from_civil(y, m, d)) == (y, m, d);
    ok.then_some((y, m, d))
}

fn civil_day(days: i64) -> (i64, u32, u32) {
    let c = Civil::from_us(days * 86_400 * US_PER_SEC);
    (c.year, c.month, c.day)
}

const OPEN: i64 = ChunkState::Open as i64;
const DELETING: i64 = ChunkState::Deleting as i64;

/// The timeline's queries (the day summary, PyNVR's day document): implemented by the
/// writers' [`Index`] and by the API's read-only readers (`readers.rs`), which the routes use so
/// a slow read never holds the connection index writes wait for.
pub trait ReadTimeline {
    /// See [`Index::recorded_spans`].
    fn recorded_spans(&self, camera: &str, from_us: i64, to_us: i64, live_end_us: i64) -> Result<Vec<(i64, i64)>>;
    /// See [`Index::event_starts`].
    fn event_starts(&self, camera: &str, from_us: i64, to_us: i64, limit: usize) -> Result<Vec<i64>>;
    /// See [`Index::archived_only_spans`].
    fn archived_only_spans(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<(i64, i64)>>;
}

impl ReadTimeline for Index {
    fn recorded_spans(&self, camera: &str, from_us: i64, to_us: i64, live_end_us: i64) -> Result<Vec<(i64, i64)>> {
        Index::recorded_spans(self, camera, from_us, to_us, live_end_us)
    }

    fn event_starts(&self, camera: &str, from_us: i64, to_us: i64, limit: usize) -> Result<Vec<i64>> {
        Index::event_starts(self, camera, from_us, to_us, limit)
    }

    fn archived_only_spans(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<(i64, i64)>> {
        Index::archived_only_spans(self, camera, from_us, to_us)
    }
}

impl Index {
    /// The recorded stretches of `camera` overlapping `[from_us, to_us)` (rule 1), in time
    /// order; the chunk being written ends at `live_end_us`.
    pub fn recorded_spans(&self, camera: &str, from_us: i64, to_us: i64, live_end_us: i64) -> Result<Vec<(i64, i64)>> {
        recorded_spans_in(&self.lock(), camera, from_us, to_us, live_end_us)
    }
}

/// [`Index::recorded_spans`] on connection `c` (the writers' or one of the API's readers).
pub(super) fn recorded_spans_in(
    c: &Connection,
    camera: &str,
    from_us: i64,
    to_us: i64,
    live_end_us: i64,
) -> Result<Vec<(i64, i64)>> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT start_us, end_us, state FROM chunk WHERE camera = ?1 AND state != {DELETING} AND start_us < ?3
             AND (end_us >= ?2 OR state = {OPEN}) ORDER BY start_us"
        ))
        .map_err(|e| Error::db("preparing the timeline query", e))?;
    let mut rows = st
        .query(rusqlite::params![camera, from_us - MAX_FRAME_GAP_US, to_us + MAX_FRAME_GAP_US])
        .map_err(|e| Error::db("querying the timeline", e))?;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    while let Some(r) = rows.next().map_err(|e| Error::db("reading the timeline", e))? {
        let (start, mut end, state): (i64, i64, i64) = (
            r.get(0).map_err(|e| Error::db("reading the timeline", e))?,
            r.get(1).map_err(|e| Error::db("reading the timeline", e))?,
            r.get(2).map_err(|e| Error::db("reading the timeline", e))?,
        );
        if state == OPEN {
            end = end.max(live_end_us);
        }
        match spans.last_mut() {
            Some(last) if start - last.1 <= MAX_FRAME_GAP_US => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    Ok(spans)
}

/// The summary of local days `first..=last` in `zone` (rules 2-3). `now_us` bounds the
/// gaps; `live_end_us` is the camera's last frame (rule 1).
pub fn days(
    index: &impl ReadTimeline,
    camera: &str,
    zone: &Zone,
    first: (i64, u32, u32),
    last: (i64, u32, u32),
    now_us: i64,
    live_end_us: i64,
) -> Result<DaysDoc> {
    let (d0, d1) = (days_from_civil(first.0, first.1, first.2), days_from_civil(last.0, last.1, last.2));
    if d1 < d0 || d1 - d0 >= MAX_DAYS {
        bail!(InvalidArgument, "from..to must be 1 to {MAX_DAYS} days, from before to");
    }
    let day_start = |d: i64| zone.local_to_utc(d * 86_400) * US_PER_SEC;
    let spans = index.recorded_spans(camera, day_start(d0), day_start(d1 + 1), live_end_us)?;
    let starts = index.event_starts(camera, day_start(d0), day_start(d1 + 1), MAX_EVENTS)?;
    let archived = index.archived_only_spans(camera, day_start(d0), day_start(d1 + 1))?;
    let mut next_span = 0;
    let mut out = Vec::with_capacity((d1 - d0 + 1) as usize);
    for d in d0..=d1 {
        let (start, end) = (day_start(d), day_start(d + 1));
        let mut hours = Vec::with_capacity(25);
        let mut hs = start;
        while hs < end {
            let he = (hs + 3600 * US_PER_SEC).min(end);
            while next_span < spans.len() && spans[next_span].1 <= hs {
                next_span += 1;
            }
            let mut h = hour(zone, hs, he, &spans[next_span..], now_us);
            let n = starts.partition_point(|&t| t < he) - starts.partition_point(|&t| t < hs);
            h.events = Some(n as u32);
            h.archived_s = archived.iter().map(|&(s, e)| (e.min(he) - s.max(hs)).max(0) as f64 / 1e6).sum();
            hours.push(h);
            hs = he;
        }
        let (y, m, dd) = civil_day(d);
        out.push(DaySummary {
            date: format!("{y:04}-{m:02}-{dd:02}"),
            start_us: start,
            end_us: end,
            recorded_s: hours.iter().map(|h| h.recorded_s).sum(),
            hours,
        });
    }
    Ok(DaysDoc { camera: camera.to_owned(), tz: zone.name().to_owned(), days: out })
}

/// One hour `[hs, he)` against the stretches from the first one ending after `hs`.
fn hour(zone: &Zone, hs: i64, he: i64, spans: &[(i64, i64)], now_us: i64) -> HourSummary {
    let offset = zone.offset_s(hs.div_euclid(US_PER_SEC));
    let local = (hs.div_euclid(US_PER_SEC) + offset).rem_euclid(86_400);
    let mut h = HourSummary {
        hour: (local / 3600) as u32,
        utc_offset_s: offset,
        start_us: hs,
        recorded_s: 0.0,
        gap_s: 0.0,
        gaps: Vec::new(),
        more_gaps: 0,
        archived_s: 0.0,
        events: None,
    };
    let horizon = he.min(now_us);
    let mut cursor = hs;
    let gap = |h: &mut HourSummary, a: i64, b: i64| {
        if b > a {
            h.gap_s += (b - a) as f64 / 1e6;
            if h.gaps.len() < MAX_GAPS_PER_HOUR {
                h.gaps.push([a, b]);
            } else {
                h.more_gaps += 1;
            }
        }
    };
    for &(s, e) in spans.iter().take_while(|(s, _)| *s < he) {
        let (s, e) = (s.max(hs), e.min(he));
        if e <= s {
            continue;
        }
        gap(&mut h, cursor.min(horizon), s.min(horizon));
        h.recorded_s += (e - s) as f64 / 1e6;
        cursor = e;
    }
    gap(&mut h, cursor.min(horizon), horizon);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::index::{NewChunk, Seal};
    use crate::media::h26x::Codec;
    use std::path::PathBuf;

    const H: i64 = 3600 * US_PER_SEC;

    /// Rows of one-minute chunks covering `[from, to)`.
    fn record(ix: &Index, from: i64, to: i64) {
        let root = ix.root_id(std::path::Path::new("/r")).unwrap();
        let mut t = from;
        while t < to {
            let p = PathBuf::from(format!("cam/{t}.chunk"));
            let n = NewChunk { camera: "cam", root_id: root, rel_path: &p, start_us: t, codec: Codec::H264 };
            let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
            let end = (t + 60 * US_PER_SEC).min(to) - 66_667;
            let seal = Seal {
                id,
                start_us: t,
                end_us: end,
                bytes: 1,
                frames: 1,
                keyframes: vec![],
                records: 1,
                audio_bytes: 0,
            };
            ix.seal(&seal).unwrap();
            t += 60 * US_PER_SEC;
        }
    }

    #[test]
    fn a_gap_lands_in_the_right_local_hour() {
        let ix = Index::open_in_memory().unwrap();
        // 2026-11-21, UTC: recorded 00:00-10:20 and 10:50-24:00 (a 30-minute outage).
        let day = days_from_civil(2026, 11, 21) * 86_400 * US_PER_SEC;
        record(&ix, day - 6 * H, day + 10 * H + 20 * 60 * US_PER_SEC);
        record(&ix, day + 10 * H + 50 * 60 * US_PER_SEC, day + 26 * H);
        // Kolkata is UTC+5:30: the outage is 15:50-16:20 local, across hours 15 and 16.
        let z = Zone::load("Asia/Kolkata").unwrap();
        let doc = days(&ix, "cam", &z, (2026, 11, 21), (2026, 11, 21), day + 30 * H, 0).unwrap();
        let d = &doc.days[0];
        assert_eq!(d.date, "2026-11-21");
        assert_eq!(d.start_us, day - 5 * H - 30 * 60 * US_PER_SEC);
        assert_eq!(d.hours.len(), 24);
        let h15 = &d.hours[15];
        assert_eq!((h15.hour, h15.utc_offset_s), (15, 19_800));
        assert_eq!(h15.gaps.len(), 1, "{h15:?}");
        assert!((h15.gap_s - 600.066_667).abs() < 0.01, "{h15:?}");
        assert_eq!(h15.gaps[0][0], day + 10 * H + 20 * 60 * US_PER_SEC - 66_667);
        let h16 = &d.hours[16];
        assert_eq!(h16.gaps, vec![[h16.start_us, day + 10 * H + 50 * 60 * US_PER_SEC]]);
        assert!((h16.recorded_s - 2400.0).abs() < 0.01);
        // Every other hour is whole: the seams between minute chunks are not gaps.
        for h in d.hours.iter().filter(|h| h.hour != 15 && h.hour != 16) {
            assert!(h.gaps.is_empty() && (h.recorded_s - 3600.0).abs() < 0.01, "{h:?}");
        }
        assert_eq!(h15.events, Some(0));
        // Events count in the hour they start in (local 15:00 is 09:30 UTC).
        for (m, label) in [(5, "a"), (40, "b"), (95, "c")] {
            let e = crate::index::events::NewEvent {
                camera: "cam",
                label,
                source: "api",
                start_us: day + 9 * H + m * 60 * US_PER_SEC,
                end_us: None,
                pre_us: 0,
                post_us: 0,
                note: None,
            };
            ix.insert_event(&e).unwrap();
        }
        let doc = days(&ix, "cam", &z, (2026, 11, 21), (2026, 11, 21), day + 30 * H, 0).unwrap();
        let counts: Vec<Option<u32>> = doc.days[0].hours[14..17].iter().map(|h| h.events).collect();
        assert_eq!(counts, [Some(1), Some(1), Some(1)]);
    }

    #[test]
    fn dst_days_have_23_and_25_hours_and_the_future_is_no_gap() {
        let ix = Index::open_in_memory().unwrap();
        let z = Zone::load("Europe/Berlin").unwrap();
        let spring = days_from_civil(2026, 3, 29) * 86_400 * US_PER_SEC;
        let doc = days(&ix, "cam", &z, (2026, 3, 29), (2026, 3, 29), spring + 4 * H, 0).unwrap();
        let hours: Vec<u32> = doc.days[0].hours.iter().map(|h| h.hour).collect();
        assert_eq!(hours.len(), 23);
        assert_eq!(&hours[..4], &[0, 1, 3, 4]);
        // Nothing recorded: gaps up to now (04:00 UTC = 06:00 CEST), none after.
        let gap: f64 = doc.days[0].hours.iter().map(|h| h.gap_s).sum();
        assert!((gap - 5.0 * 3600.0).abs() < 0.01, "{gap}");
        let doc = days(&ix, "cam", &z, (2026, 10, 24), (2026, 10, 26), spring, 0).unwrap();
        let n: Vec<usize> = doc.days.iter().map(|d| d.hours.len()).collect();
        assert_eq!(n, [24, 25, 24]);
        assert_eq!(doc.days[1].hours[2].hour, 2);
        assert_eq!(doc.days[1].hours[3].hour, 2);
    }

    #[test]
    fn the_chunk_being_written_reaches_the_last_frame_and_ranges_are_bounded() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(std::path::Path::new("/r")).unwrap();
        let day = days_from_civil(2026, 11, 21) * 86_400 * US_PER_SEC;
        let p = PathBuf::from("cam/open.chunk");
        let n = NewChunk { camera: "cam", root_id: root, rel_path: &p, start_us: day, codec: Codec::H264 };
        ix.rotate(None, Some(&n)).unwrap();
        assert_eq!(
            ix.recorded_spans("cam", day, day + H, day + 40 * US_PER_SEC).unwrap(),
            [(day, day + 40 * US_PER_SEC)]
        );
        let e = days(&ix, "cam", &Zone::utc(), (2026, 1, 1), (2026, 3, 5), day, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(parse_date("2026-02-29"), None);
        assert_eq!(parse_date("2028-02-29"), Some((2028, 2, 29)));
        assert_eq!(parse_date("2026-1-01"), None);
    }
}
