//! Lists that stream: `chunks` and `recordings` are produced page by page from the index
//! (keyset paging, [`PAGE`] rows per query) into a small buffer, sent with chunked transfer
//! encoding, so a year of footage costs the same memory as a minute. Each list is capped at
//! `limit` entries; when more remain, `next` says where to continue.

use super::state::AppState;
use crate::chunk::writer::MAX_FRAME_GAP_US;
use crate::error::Result;
use crate::index::{ChunkRow, ChunkState};
use crate::time::format_rfc3339;
use heapless::String as HString;
use serde::Serialize;
use std::io::{self, Read};
use std::sync::Arc;

/// Rows per index query.
pub const PAGE: usize = 200;
/// Default entries per response.
pub const DEFAULT_LIMIT: usize = 1000;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;

type Time = HString<32>;

fn time(us: i64) -> Time {
    let mut s = Time::new();
    let _ = s.push_str(&format_rfc3339(us));
    s
}

/// Appends one value as JSON (values here are small and bounded).
pub(super) fn push_json<T: Serialize>(out: &mut Vec<u8>, v: &T) {
    let mut buf = [0u8; 1024];
    match serde_json_core::to_slice(v, &mut buf) {
        Ok(n) => out.extend_from_slice(&buf[..n]),
        Err(_) => out.extend_from_slice(b"null"),
    }
}

/// Closes a paged list: `],"next":"START_US:ID"}` where the page was cut at its limit with
/// more rows left (the cursor a client passes back as `after`), `],"next":null}` at the end.
pub(super) fn end_page(out: &mut Vec<u8>, next: Option<(i64, i64)>) {
    out.extend_from_slice(b"],\"next\":");
    match next {
        Some((start_us, id)) => push_json(out, &format!("{start_us}:{id}").as_str()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// Appends the next piece of a document; false when the document is complete.
type Generator = Box<dyn FnMut(&mut Vec<u8>) -> Result<bool> + Send>;

/// A `Read` over JSON text produced piece by piece by `next`, which appends to the buffer
/// and returns false when the document is complete.
pub struct JsonStream {
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    next: Generator,
}

impl JsonStream {
    pub(super) fn new(next: impl FnMut(&mut Vec<u8>) -> Result<bool> + Send + 'static) -> JsonStream {
        JsonStream { buf: Vec::with_capacity(64 << 10), pos: 0, done: false, next: Box::new(next) }
    }
}

impl Read for JsonStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf.clear();
            self.pos = 0;
            self.done = !(self.next)(&mut self.buf).map_err(io::Error::other)?;
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[derive(Serialize)]
struct ChunkDoc<'a> {
    id: i64,
    start: Time,
    end: Time,
    start_us: i64,
    end_us: i64,
    bytes: u64,
    frames: u64,
    codec: &'a str,
    /// Held only in an off-box archive (the reaper removed it here; exports fetch it back).
    archived: bool,
}

/// `GET /api/v1/cameras/{id}/chunks`: `{"camera", "chunks": [...], "next": "START_US:ID"|null}`.
pub fn chunks(state: Arc<AppState>, camera: String, from: i64, to: i64, after: (i64, i64), limit: usize) -> JsonStream {
    let mut cursor = after;
    let mut left = limit;
    let mut started = false;
    let mut first_item = true;
    JsonStream::new(move |out| {
        if !started {
            started = true;
            out.extend_from_slice(b"{\"camera\":");
            push_json(out, &camera.as_str());
            out.extend_from_slice(b",\"chunks\":[");
        }
        let want = PAGE.min(left + 1);
        let rows = state.readers.chunks_for_camera_page(&camera, (from, to), cursor, want, false)?;
        let more = rows.len() == want;
        for r in rows.iter().take(left.min(PAGE)) {
            if !first_item {
                out.push(b',');
            }
            first_item = false;
            push_json(
                out,
                &ChunkDoc {
                    id: r.id,
                    start: time(r.start_us),
                    end: time(r.end_us),
                    start_us: r.start_us,
                    end_us: r.end_us,
                    bytes: r.bytes,
                    frames: r.frames,
                    codec: r.codec.as_str(),
                    archived: r.state == ChunkState::Archived,
                },
            );
            cursor = (r.start_us, r.id);
            left -= 1;
        }
        if left == 0 || !more {
            end_page(out, (more && left == 0).then_some(cursor));
            return Ok(false);
        }
        Ok(true)
    })
}

#[derive(Serialize)]
struct RunDoc {
    start: Time,
    end: Time,
    start_us: i64,
    end_us: i64,
    duration_s: f64,
    frames: u64,
    bytes: u64,
    chunks: u64,
    /// The run goes on in the chunk being written: `end` is the last frame received, and
    /// `frames`/`bytes` count the finished chunks only.
    live: bool,
    /// Events overlapping the run (`GET /api/v1/events?camera=&from=&to=` lists them).
    events: u64,
}

#[derive(Serialize)]
struct GapDoc {
    start: Time,
    end: Time,
    start_us: i64,
    end_us: i64,
    duration_s: f64,
}

/// A contiguous run of chunks.
#[derive(Clone, Copy)]
struct Run {
    start: i64,
    end: i64,
    frames: u64,
    bytes: u64,
    chunks: u64,
    /// Whether the run includes the chunk being written.
    live: bool,
}

/// Yields a camera's runs in time order, reading the index a page at a time.
struct Runs {
    state: Arc<AppState>,
    camera: String,
    from: i64,
    to: i64,
    cursor: (i64, i64),
    page: std::vec::IntoIter<ChunkRow>,
    exhausted: bool,
    pending: Option<Run>,
}

impl Runs {
    fn new(state: Arc<AppState>, camera: String, from: i64, to: i64) -> Runs {
        Runs {
            state,
            camera,
            from,
            to,
            cursor: (i64::MIN, 0),
            page: Vec::new().into_iter(),
            exhausted: false,
            pending: None,
        }
    }

    fn last_frame_us(&self) -> i64 {
        self.state.camera(&self.camera).map_or(0, |c| c.stats.last_frame_us.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn next_row(&mut self) -> Result<Option<ChunkRow>> {
        if let Some(r) = self.page.next() {
            return Ok(Some(r));
        }
        if self.exhausted {
            return Ok(None);
        }
        let rows =
            self.state.readers.chunks_for_camera_page(&self.camera, (self.from, self.to), self.cursor, PAGE, true)?;
        self.exhausted = rows.len() < PAGE;
        if let Some(last) = rows.last() {
            self.cursor = (last.start_us, last.id);
        }
        self.page = rows.into_iter();
        Ok(self.page.next())
    }

    fn next_run(&mut self) -> Result<Option<Run>> {
        while let Some(r) = self.next_row()? {
            let live = r.state == ChunkState::Open;
            // The chunk being written reaches the camera's last frame; its counts are only
            // known at the seal.
            let end = if live { r.end_us.max(self.last_frame_us()) } else { r.end_us };
            let this = Run { start: r.start_us, end, frames: r.frames, bytes: r.bytes, chunks: 1, live };
            match &mut self.pending {
                Some(cur) if r.start_us - cur.end <= MAX_FRAME_GAP_US => {
                    cur.end = cur.end.max(end);
                    cur.frames += r.frames;
                    cur.bytes += r.bytes;
                    cur.chunks += 1;
                    cur.live |= live;
                }
                _ => {
                    if let Some(done) = self.pending.replace(this) {
                        return Ok(Some(done));
                    }
                }
            }
        }
        Ok(self.pending.take())
    }
}

/// Items written per call of the generator (bounds the buffer).
const ITEMS_PER_CALL: usize = 100;

/// The part of the recordings document being written.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Part {
    /// `"recordings": [...]`.
    Runs,
    /// `"gaps": [...]`.
    Gaps,
    /// `"next"` and the closing brace.
    Tail,
}

/// The recordings document, written piece by piece: the runs, then the gaps between the
/// runs written (the same runs, read again, so no list is held in memory).
struct RecordingsDoc {
    camera: String,
    limit: usize,
    part: Part,
    runs: Runs,
    emitted: usize,
    /// Where the next page starts, when `limit` cut the list.
    next_from: Option<i64>,
    gaps: Runs,
    gaps_seen: usize,
    gap_prev: Option<Run>,
    first_item: bool,
}

impl RecordingsDoc {
    /// Appends the next piece; false when the document is complete.
    fn next(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        match self.part {
            Part::Runs => self.write_runs(out),
            Part::Gaps => self.write_gaps(out),
            Part::Tail => {
                out.extend_from_slice(b"],\"next\":");
                match self.next_from {
                    Some(t) => push_json(out, &time(t).as_str()),
                    None => out.extend_from_slice(b"null"),
                }
                out.push(b'}');
                Ok(false)
            }
        }
    }

    fn comma(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.first_item) {
            out.push(b',');
        }
    }

    fn write_runs(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        for _ in 0..ITEMS_PER_CALL {
            let Some(r) = self.runs.next_run()? else { return Ok(self.start_gaps(out)) };
            if self.emitted == self.limit {
                self.next_from = Some(r.start);
                return Ok(self.start_gaps(out));
            }
            self.comma(out);
            push_json(
                out,
                &RunDoc {
                    start: time(r.start),
                    end: time(r.end),
                    start_us: r.start,
                    end_us: r.end,
                    duration_s: (r.end - r.start) as f64 / 1e6,
                    frames: r.frames,
                    bytes: r.bytes,
                    chunks: r.chunks,
                    live: r.live,
                    events: self.runs.state.readers.event_count(&self.runs.camera, r.start, r.end)?,
                },
            );
            self.emitted += 1;
        }
        Ok(true)
    }

    fn start_gaps(&mut self, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(b"],\"gaps\":[");
        self.first_item = true;
        self.part = Part::Gaps;
        true
    }

    fn write_gaps(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        for _ in 0..ITEMS_PER_CALL {
            if self.gaps_seen == self.emitted {
                self.part = Part::Tail;
                return Ok(true);
            }
            let Some(r) = self.gaps.next_run()? else {
                self.part = Part::Tail;
                return Ok(true);
            };
            self.gaps_seen += 1;
            if let Some(p) = self.gap_prev.replace(r) {
                self.comma(out);
                push_json(
                    out,
                    &GapDoc {
                        start: time(p.end),
                        end: time(r.start),
                        start_us: p.end,
                        end_us: r.start,
                        duration_s: (r.start - p.end) as f64 / 1e6,
                    },
                );
            }
        }
        Ok(true)
    }
}

/// `GET /api/v1/cameras/{id}/recordings`: contiguous runs (chunks that follow each other
/// within [`MAX_FRAME_GAP_US`]) and the gaps between them:
/// `{"camera", "recordings": [...], "gaps": [...], "next": FROM|null}`. At most `limit`
/// runs; `next` is the start of the following run, to pass as `from`.
pub fn recordings(state: Arc<AppState>, camera: String, from: i64, to: i64, limit: usize) -> JsonStream {
    let mut doc = RecordingsDoc {
        runs: Runs::new(state.clone(), camera.clone(), from, to),
        gaps: Runs::new(state, camera.clone(), from, to),
        camera,
        limit,
        part: Part::Runs,
        emitted: 0,
        next_from: None,
        gaps_seen: 0,
        gap_prev: None,
        first_item: true,
    };
    let mut started = false;
    JsonStream::new(move |out| {
        if !std::mem::replace(&mut started, true) {
            out.extend_from_slice(b"{\"camera\":");
            push_json(out, &doc.camera.as_str());
            out.extend_from_slice(b",\"recordings\":[");
        }
        doc.next(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::http::state::{CameraEntry, Parts};
    use crate::index::{Index, NewChunk, Seal};
    use crate::media::h26x::Codec;
    use crate::storage::Storage;
    use std::sync::atomic::Ordering::Relaxed;

    /// Minute 0 of the fixtures: 2026-11-21 14:56 UTC, µs.
    const T0: i64 = 1_795_272_960_000_000;
    const S: i64 = 1_000_000;

    /// A state with one camera `c` on a root at `dir`, and `(start_us, end_us)` chunks
    /// (sealed, one frame per second); the last one is open when `live_until` is set.
    fn state(dir: &std::path::Path, chunks: &[(i64, i64)], live_until: Option<i64>) -> Arc<AppState> {
        let config = Config::parse(&format!(
            "[[storage]]\npath = {:?}\n[[camera]]\nid = \"c\"\nsource = \"testsrc\"\n",
            dir.to_str().unwrap()
        ))
        .unwrap();
        let index = Arc::new(Index::open_in_memory().unwrap());
        let storage = Arc::new(Storage::open(&config.storage, &index).unwrap());
        let root_id = storage.roots()[0].id;
        for (i, &(start_us, end_us)) in chunks.iter().enumerate() {
            let rel = crate::chunk::path::rel_path("c", start_us, i as u32);
            let n = NewChunk { camera: "c", root_id, rel_path: &rel, start_us, codec: Codec::H264 };
            if live_until.is_some() && i == chunks.len() - 1 {
                index.rotate(None, Some(&n)).unwrap();
                continue;
            }
            let frames = ((end_us - start_us) / S) as u64 + 1;
            // Counts a real file could hold (17 bytes of record header per frame at least: the
            // index refuses impossible rows).
            let seal = Seal { start_us, end_us, bytes: frames * 17, frames, records: frames, ..Default::default() };
            index.insert_sealed(&n, &seal).unwrap();
        }
        let cameras: Vec<_> = config.cameras.iter().map(|c| CameraEntry::new(c, &Default::default(), None)).collect();
        cameras[0].stats.last_frame_us.store(live_until.unwrap_or(0), Relaxed);
        let events = Arc::new(crate::events::Events::new(index.clone(), &config, crate::time::now_us));
        let parts = Parts {
            index,
            storage,
            cameras: Arc::new(crate::http::state::CameraList::new(cameras)),
            reaper: Default::default(),
            control: None,
            events,
            mqtt: None,
        };
        Arc::new(AppState::new(&config, parts).unwrap())
    }

    fn read(mut s: JsonStream) -> String {
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// The exact bytes of a recordings document: two runs (the second live) around a gap,
    /// then the same with `limit=1`, whose `next` names the second run's start.
    #[test]
    fn recordings_document_is_pinned() {
        let d = tempfile::tempdir().unwrap();
        // Run 1: two chunks 1 s apart (within MAX_FRAME_GAP_US); a 10 s gap; run 2: live.
        let chunks = [(T0, T0 + 59 * S), (T0 + 60 * S, T0 + 119 * S), (T0 + 129 * S, T0 + 129 * S)];
        let st = state(d.path(), &chunks, Some(T0 + 150 * S));
        // An event in the first run (the list counts it there, not in the second).
        let e = crate::events::StartEvent {
            camera: "c".into(),
            label: "door".into(),
            source: crate::events::Source::Api,
            start_us: Some(T0 + 30 * S),
            end_us: Some(T0 + 31 * S),
            note: None,
        };
        st.events.start(&e).unwrap();
        let all = read(recordings(st.clone(), "c".into(), i64::MIN, i64::MAX, 10));
        assert_eq!(
            all,
            concat!(
                r#"{"camera":"c","recordings":["#,
                r#"{"start":"2026-11-21T14:56:00.000Z","end":"2026-11-21T14:57:59.000Z","start_us":1795272960000000,"#,
                r#""end_us":1795273079000000,"duration_s":119.0,"frames":120,"bytes":2040,"chunks":2,"live":false,"#,
                r#""events":1},"#,
                r#"{"start":"2026-11-21T14:58:09.000Z","end":"2026-11-21T14:58:30.000Z","start_us":1795273089000000,"#,
                r#""end_us":1795273110000000,"duration_s":21.0,"frames":0,"bytes":0,"chunks":1,"live":true,"#,
                r#""events":0}],"#,
                r#""gaps":[{"start":"2026-11-21T14:57:59.000Z","end":"2026-11-21T14:58:09.000Z","#,
                r#""start_us":1795273079000000,"end_us":1795273089000000,"duration_s":10.0}],"next":null}"#
            )
        );
        let first = read(recordings(st.clone(), "c".into(), i64::MIN, i64::MAX, 1));
        assert!(
            first.ends_with(r#""chunks":2,"live":false,"events":1}],"gaps":[],"next":"2026-11-21T14:58:09.000Z"}"#),
            "{first}"
        );
        let none = read(recordings(st, "nobody".into(), i64::MIN, i64::MAX, 10));
        assert_eq!(none, r#"{"camera":"nobody","recordings":[],"gaps":[],"next":null}"#);
    }

    /// Many runs cross the generator's per-call bound ([`ITEMS_PER_CALL`]) and the index
    /// page ([`PAGE`]): every run and every gap between the runs sent, in order, once.
    #[test]
    fn recordings_over_many_calls_and_pages_lose_nothing() {
        let d = tempfile::tempdir().unwrap();
        let chunks: Vec<(i64, i64)> = (0..250).map(|i| (T0 + i * 60 * S, T0 + i * 60 * S + 50 * S)).collect();
        let st = state(d.path(), &chunks, None);
        for (limit, runs, next) in [(240, 240, Some(chunks[240].0)), (1000, 250, None)] {
            let doc: serde_json::Value =
                serde_json::from_str(&read(recordings(st.clone(), "c".into(), i64::MIN, i64::MAX, limit))).unwrap();
            let recs = doc["recordings"].as_array().unwrap();
            let gaps = doc["gaps"].as_array().unwrap();
            assert_eq!((recs.len(), gaps.len()), (runs, runs - 1));
            for (i, r) in recs.iter().enumerate() {
                assert_eq!(r["start_us"], chunks[i].0);
            }
            for (i, g) in gaps.iter().enumerate() {
                assert_eq!((g["start_us"].as_i64(), g["end_us"].as_i64()), (Some(chunks[i].1), Some(chunks[i + 1].0)));
            }
            assert_eq!(doc["next"].as_str(), next.map(format_rfc3339).as_deref());
        }
    }
}
