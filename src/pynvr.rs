//! PyNVR's API, as PyNVR documents it (its README's "REST API Docs"), so its pages and
//! scripts work against edgenvr. This module knows the paths and the documents; the HTTP
//! layer routes to it.
//!
//! | route | answer |
//! |---|---|
//! | `/api/1/camera/{id}.preview.{date}.{HHMM}.jpg` | the first frame of that minute, full size |
//! | `/api/1/camera/{id}.thumbnail.{date}.{HHMM}.jpg` | the same, 320 pixels wide (PyNVR's `scale=320:-1`) |
//! | `/api/1/camera/{id}.preview.{date}.{HHMM}.mp4` | that minute as MP4 |
//! | `/api/1/cameras/{YYYYMMDD}?camera_ids=a,b` | the minutes recorded per camera that day |
//!
//! `{date}` is `YYMMDD` as PyNVR's README writes it, or `YYYYMMDD` as its own web page sends
//! it (the page builds these URLs from the day document's keys); both are accepted. PyNVR's
//! page also asks for `/api/1/camera/{id}.{YYYYMMDD}.{HHMM}.mp4` (without `.preview`),
//! which is the same minute. Times are UTC: the box keeps UTC (PyNVR used its own local
//! time).
//!
//! The day document is PyNVR's envelope `{"date", "system", "payload"}` with `payload`
//! `{"dates": {"YYYYMMDD.HHMM": [camera ids]}, "min", "max", "camera_ids"}`: every minute
//! from `min` to `max` is a key (PyNVR's page walks them one by one), listing the cameras
//! that recorded in it; with no footage `dates` is `[]` and `min`/`max` are now, as in PyNVR.

use crate::error::{Error, ErrorKind, Result};
use crate::index::timeline::ReadTimeline;
use crate::time::{days_from_civil, Civil, US_PER_DAY, US_PER_MIN};
use serde_json::{json, Value};

/// PyNVR's thumbnail width.
pub const THUMBNAIL_WIDTH: usize = 320;
/// Most cameras one day document may list.
pub const MAX_CAMERAS: usize = crate::config::MAX_CAMERAS;

/// What a `/api/1/camera/...` path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CameraAsset {
    /// `.preview.….jpg` (full size) or `.thumbnail.….jpg` (`width` = 320).
    Jpeg {
        /// Camera id.
        camera: String,
        /// The minute, µs (UTC).
        minute_us: i64,
        /// `None`: the picture's own size.
        width: Option<usize>,
    },
    /// `.preview.….mp4`: the minute as MP4.
    Mp4 {
        /// Camera id.
        camera: String,
        /// The minute, µs (UTC).
        minute_us: i64,
    },
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
}

/// Parses the `{date}.{HHMM}` of a PyNVR path (`YYMMDD` or `YYYYMMDD`) to the minute's
/// start, µs.
pub fn parse_minute(date: &str, hhmm: &str) -> Option<i64> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(date) || !digits(hhmm) || hhmm.len() != 4 {
        return None;
    }
    let (y, md) = match date.len() {
        6 => (2000 + date[..2].parse::<i64>().ok()?, &date[2..]),
        8 => (date[..4].parse::<i64>().ok()?, &date[4..]),
        _ => return None,
    };
    let (m, d): (u32, u32) = (md[..2].parse().ok()?, md[2..].parse().ok()?);
    let (h, min): (i64, i64) = (hhmm[..2].parse().ok()?, hhmm[2..].parse().ok()?);
    let days = days_from_civil(y, m, d);
    let c = Civil::from_us(days * US_PER_DAY);
    if (c.year, c.month, c.day) != (y, m, d) || h > 23 || min > 59 {
        return None;
    }
    Some(days * US_PER_DAY + (h * 60 + min) * US_PER_MIN)
}

/// Parses the part of `/api/1/camera/{spec}` after `camera/`.
pub fn parse_camera_asset(spec: &str) -> Result<CameraAsset> {
    let parts: Vec<&str> = spec.split('.').collect();
    let (camera, kind, date, hhmm, ext) = match parts.as_slice() {
        [c, k @ ("preview" | "thumbnail"), d, t, e @ ("jpg" | "mp4")] => (*c, *k, *d, *t, *e),
        // PyNVR's own page: {id}.{YYYYMMDD}.{HHMM}.mp4
        [c, d, t, "mp4"] => (*c, "preview", *d, *t, "mp4"),
        _ => return Err(bad("expected CAMERA.preview|thumbnail.YYMMDD.HHMM.jpg or CAMERA.preview.YYMMDD.HHMM.mp4")),
    };
    let minute_us =
        parse_minute(date, hhmm).ok_or_else(|| bad(format!("{date}.{hhmm} is not YYMMDD.HHMM or YYYYMMDD.HHMM")))?;
    let camera = camera.to_owned();
    Ok(match (kind, ext) {
        ("thumbnail", "mp4") => return Err(bad("thumbnails are JPEGs")),
        (_, "mp4") => CameraAsset::Mp4 { camera, minute_us },
        ("thumbnail", _) => CameraAsset::Jpeg { camera, minute_us, width: Some(THUMBNAIL_WIDTH) },
        _ => CameraAsset::Jpeg { camera, minute_us, width: None },
    })
}

/// PyNVR's envelope around a payload.
pub fn envelope(payload: Value, now_us: i64) -> Value {
    let c = Civil::from_us(now_us);
    json!({
        "date": format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute, c.second),
        "system": { "name": "PyNVR", "version": "0.1" },
        "payload": payload,
    })
}

fn minute_key(us: i64) -> String {
    let c = Civil::from_us(us);
    format!("{}.{}", c.yyyymmdd(), c.hhmm())
}

/// `/api/1/cameras/{YYYYMMDD}?camera_ids=…`: the minutes of that UTC day each camera
/// recorded in (a minute counts when a recorded stretch overlaps it). Unknown ids are the
/// caller's to refuse.
pub fn day_document(
    index: &impl ReadTimeline,
    yyyymmdd: &str,
    cameras: &[&str],
    now_us: i64,
    live_end: impl Fn(&str) -> i64,
) -> Result<Value> {
    let day = parse_minute(yyyymmdd, "0000").filter(|_| yyyymmdd.len() == 8).ok_or_else(|| bad("expected YYYYMMDD"))?;
    if cameras.is_empty() || cameras.len() > MAX_CAMERAS {
        return Err(bad(format!("camera_ids must name 1 to {MAX_CAMERAS} cameras")));
    }
    let minutes = (US_PER_DAY / US_PER_MIN) as usize;
    // For each minute of the day, which cameras (bit i = cameras[i]) recorded in it.
    let mut seen = vec![0u64; minutes];
    for (i, cam) in cameras.iter().enumerate() {
        for (s, e) in index.recorded_spans(cam, day, day + US_PER_DAY, live_end(cam))? {
            let first = ((s.max(day) - day) / US_PER_MIN) as usize;
            let last = (((e.min(day + US_PER_DAY - 1)) - day) / US_PER_MIN) as usize;
            for m in seen.iter_mut().take(last + 1).skip(first) {
                *m |= 1 << i;
            }
        }
    }
    let ids: Vec<&str> = cameras.to_vec();
    let (Some(lo), Some(hi)) = (seen.iter().position(|&m| m != 0), seen.iter().rposition(|&m| m != 0)) else {
        let now = minute_key(now_us);
        return Ok(envelope(json!({ "dates": [], "min": now, "max": now, "camera_ids": ids }), now_us));
    };
    let mut dates = serde_json::Map::new();
    for (m, bits) in seen.iter().enumerate().take(hi + 1).skip(lo) {
        let list: Vec<&str> = ids.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, c)| *c).collect();
        dates.insert(minute_key(day + m as i64 * US_PER_MIN), json!(list));
    }
    let payload = json!({
        "dates": dates,
        "min": minute_key(day + lo as i64 * US_PER_MIN),
        "max": minute_key(day + hi as i64 * US_PER_MIN),
        "camera_ids": ids,
    });
    Ok(envelope(payload, now_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, NewChunk, Seal};
    use crate::media::h26x::Codec;

    #[test]
    fn paths_parse_as_pynvr_documents_and_sends_them() {
        let m = parse_minute("261121", "1456").unwrap();
        assert_eq!(crate::time::format_rfc3339(m), "2026-11-21T14:56:00.000Z");
        assert_eq!(parse_minute("20261121", "1456"), Some(m));
        for (d, t) in [("261131", "1456"), ("2611210", "1456"), ("261121", "2460"), ("26112a", "1456")] {
            assert_eq!(parse_minute(d, t), None, "{d}.{t}");
        }
        assert_eq!(
            parse_camera_asset("door.thumbnail.261121.1456.jpg").unwrap(),
            CameraAsset::Jpeg { camera: "door".into(), minute_us: m, width: Some(320) }
        );
        assert_eq!(
            parse_camera_asset("door.preview.20261121.1456.jpg").unwrap(),
            CameraAsset::Jpeg { camera: "door".into(), minute_us: m, width: None }
        );
        let mp4 = CameraAsset::Mp4 { camera: "door".into(), minute_us: m };
        assert_eq!(parse_camera_asset("door.preview.261121.1456.mp4").unwrap(), mp4);
        assert_eq!(parse_camera_asset("door.20261121.1456.mp4").unwrap(), mp4);
        for bad in ["door.jpg", "door.thumbnail.261121.1456.mp4", "door.preview.261121.1456.png", "a.b.preview.1.2.jpg"]
        {
            assert_eq!(parse_camera_asset(bad).unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn the_day_document_lists_each_recorded_minute_with_its_cameras() {
        let ix = Index::open_in_memory().unwrap();
        let root = ix.root_id(std::path::Path::new("/r")).unwrap();
        let day = parse_minute("20261121", "0000").unwrap();
        let add = |cam: &str, from_min: i64, to_min: i64| {
            let p = std::path::PathBuf::from(format!("{cam}/{from_min}.chunk"));
            let start = day + from_min * US_PER_MIN;
            let n = NewChunk { camera: cam, root_id: root, rel_path: &p, start_us: start, codec: Codec::H264 };
            let id = ix.rotate(None, Some(&n)).unwrap().unwrap();
            let end = day + to_min * US_PER_MIN - 100_000;
            ix.seal(&Seal {
                id,
                start_us: start,
                end_us: end,
                bytes: 1,
                frames: 1,
                keyframes: vec![],
                records: 1,
                audio_bytes: 0,
            })
            .unwrap();
        };
        add("a", 600, 602); // 10:00-10:02
        add("b", 601, 603); // 10:01-10:03
        add("b", 605, 606); // 10:05
        let now = day + 2 * US_PER_DAY;
        let doc = day_document(&ix, "20261121", &["a", "b"], now, |_| 0).unwrap();
        assert_eq!(doc["system"]["name"], "PyNVR");
        let p = &doc["payload"];
        assert_eq!((p["min"].as_str(), p["max"].as_str()), (Some("20261121.1000"), Some("20261121.1005")));
        assert_eq!(p["camera_ids"], json!(["a", "b"]));
        let dates = p["dates"].as_object().unwrap();
        assert_eq!(dates.len(), 6, "every minute from min to max is a key: {dates:?}");
        assert_eq!(dates["20261121.1000"], json!(["a"]));
        assert_eq!(dates["20261121.1001"], json!(["a", "b"]));
        assert_eq!(dates["20261121.1003"], json!([]));
        assert_eq!(dates["20261121.1005"], json!(["b"]));
        // A day without footage.
        let empty = day_document(&ix, "20261122", &["a"], now, |_| 0).unwrap();
        assert_eq!(empty["payload"]["dates"], json!([]));
        assert_eq!(empty["payload"]["min"], "20261123.0000");
        assert!(day_document(&ix, "261121", &["a"], now, |_| 0).is_err());
    }
}
