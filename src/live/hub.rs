//! One camera's live broadcast: frames from the source, as fMP4 fragments, to any number of
//! viewers (up to `[server] max_viewers`) and to the HLS ring.
//!
//! ```text
//!  source thread ── FrameSender::send ──▶ LiveHub::publish ──▶ viewer queues ──▶ sockets
//!                   (before GOP batching)      │ one fragment per frame, shared (Bytes)
//!                                              ├▶ current GOP (a new viewer starts at once)
//!                                              └▶ HLS ring (while HLS clients are active)
//! ```
//!
//! Rules:
//! 1. Idle costs one atomic load per frame: while nobody watches (and [`LINGER`] has passed
//!    since the last viewer left), `publish` copies nothing and allocates nothing.
//! 2. While anyone watches, each frame becomes one fragment (one copy of its bytes), shared
//!    by every viewer and the HLS ring; the current GOP's fragments are kept (at most
//!    [`GOP_CACHE_BYTES`]) so a new viewer starts at the newest keyframe without waiting.
//!    A viewer that arrives while the hub is idle waits for the next keyframe.
//! 3. The source never waits for a viewer: `publish` takes the hub's lock (which viewers
//!    hold only to pop one fragment) and never blocks otherwise. Each viewer's queue holds
//!    at most [`VIEWER_QUEUE_BYTES`]; a fragment that does not fit empties the queue and the
//!    viewer skips to the next keyframe (counted in `skips`). A viewer that takes nothing for
//!    [`STALL_TIMEOUT`] while pieces wait in its queue is dropped at the next frame (counted
//!    in `dropped`), whether or not its queue is full: at a low bitrate a full queue is
//!    minutes away, and its slot and buffers would be held all that time.
//! 4. A stream is one set of parameter sets with increasing timestamps (measured at the
//!    frontier: a B-frame presented up to [`MAX_REORDER_US`] before it is not a step back;
//!    its fragment gets a decode time from [`super::decode`]). A change of
//!    parameter sets or codec, a source reconnect, a timestamp going backwards or a pause
//!    longer than [`MAX_FRAME_GAP_US`] ends it: each viewer gets the rest of its queue and
//!    then the end of its stream (the page reconnects and gets a new init segment); the HLS
//!    ring marks a discontinuity.
//!
//! Memory per viewer: at most [`VIEWER_QUEUE_BYTES`] of fragments it alone keeps alive
//! (while it keeps up, it shares the fragments every other viewer holds too) plus about
//! 2 KiB of bookkeeping (its slot and queue ring); the hub adds at most [`GOP_CACHE_BYTES`]
//! for the current GOP and, while HLS clients are active, the ring of [`super::hls`].

use super::decode::DecodeClock;
pub use super::fmp4::Fragment;
use super::fmp4::{fragment, init_segment, StreamParams};
use super::hls::{HlsRing, Segment, HLS_IDLE};
use crate::chunk::writer::MAX_FRAME_GAP_US;
use crate::media::frame::{EncodedFrame, MAX_REORDER_US};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most fragment bytes one viewer's queue holds (about 2 s of a 4 Mbit/s camera).
pub const VIEWER_QUEUE_BYTES: usize = 1 << 20;
/// Most bytes of the current GOP kept for viewers that join.
pub const GOP_CACHE_BYTES: usize = 1 << 20;
/// A viewer that takes nothing for this long is dropped.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The hub keeps producing fragments (and the current GOP) this long after the last viewer
/// left, so a reload or the next tile refresh starts at once.
pub const LINGER: Duration = Duration::from_secs(30);

/// Counters of a hub, for status and tests.
#[derive(Default, Debug)]
pub struct LiveStats {
    /// Viewers connected now.
    pub viewers: AtomicU64,
    /// Viewers ever accepted.
    pub viewers_total: AtomicU64,
    /// Viewers refused because `max_viewers` were connected.
    pub refused: AtomicU64,
    /// Times a viewer fell behind and skipped to the next keyframe.
    pub skips: AtomicU64,
    /// Viewers dropped for taking nothing for [`STALL_TIMEOUT`].
    pub dropped: AtomicU64,
    /// Fragments made (frames published while someone watched).
    pub fragments: AtomicU64,
    /// Streams ended by a change (parameter sets, reconnect, pause).
    pub stream_breaks: AtomicU64,
}

/// Why a viewer was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Full {
    /// The configured cap.
    pub max_viewers: usize,
}

/// The current stream: its parameter sets and init segment.
struct Stream {
    generation: u64,
    params: StreamParams,
    init: Bytes,
}

/// One viewer's side of the hub.
struct Slot {
    id: u64,
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// The generation whose init segment this viewer got; `None` until it starts.
    generation: Option<u64>,
    /// Skipping until the next keyframe.
    waiting_key: bool,
    /// The stream ended: return what is queued, then end.
    closed: bool,
    notify: Arc<Notify>,
    /// When it last took a piece, or last had taken everything (rule 3's stall clock).
    last_take: Instant,
    /// Pieces taken so far (0: the init segment is still queued).
    taken: u64,
}

impl Slot {
    fn push(&mut self, b: Bytes) {
        self.queued_bytes += b.len();
        self.queue.push_back(b);
    }
}

#[derive(Default)]
struct HubState {
    stream: Option<Stream>,
    generation: u64,
    sequence: u32,
    /// Parameter sets seen last (a keyframe may come without them).
    params: Option<StreamParams>,
    /// The stream's frontier: its latest timestamp so far (B-frames come after it).
    last_ts: Option<i64>,
    /// Decode times of the stream's fragments.
    decode: DecodeClock,
    gop: Vec<Fragment>,
    gop_bytes: usize,
    viewers: Vec<Slot>,
    next_id: u64,
    /// When the hub may go idle (after the last viewer left).
    linger_until: Option<Instant>,
    hls: Option<HlsRing>,
    hls_until: Option<Instant>,
    /// Inits of generations the HLS ring still refers to.
    hls_inits: VecDeque<(u64, Bytes)>,
}

/// One camera's live broadcast.
pub struct LiveHub {
    camera: String,
    max_viewers: usize,
    /// False while idle: `publish` returns at once (rule 1).
    active: AtomicBool,
    state: Mutex<HubState>,
    /// Woken when an HLS segment is finished.
    hls_ready: Notify,
    /// Counters.
    pub stats: LiveStats,
}

impl LiveHub {
    /// A hub for `camera` accepting at most `max_viewers` viewers.
    pub fn new(camera: &str, max_viewers: usize) -> Arc<LiveHub> {
        Arc::new(LiveHub {
            camera: camera.to_owned(),
            max_viewers,
            active: AtomicBool::new(false),
            state: Mutex::new(HubState::default()),
            hls_ready: Notify::new(),
            stats: LiveStats::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Nothing here leaves the state inconsistent across a panic; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offers a frame (called by the source for every frame, before batching). Never
    /// blocks on a viewer; does nothing while idle.
    pub fn publish(&self, f: &EncodedFrame) {
        if !self.active.load(Relaxed) {
            return;
        }
        let now = Instant::now();
        let mut s = self.lock();
        let hls_on = s.hls_until.is_some_and(|t| now < t);
        if !hls_on && s.hls.is_some() {
            s.hls = None;
            s.hls_inits.clear();
        }
        if s.viewers.is_empty() && !hls_on && s.linger_until.is_none_or(|t| now >= t) {
            // Nobody watches: drop what is kept and go idle.
            *s = HubState { generation: s.generation, sequence: s.sequence, ..HubState::default() };
            self.active.store(false, Relaxed);
            return;
        }
        self.continue_or_break(&mut s, f);
        if s.stream.is_none() && !self.start_stream(&mut s, f) {
            return;
        }
        let (dts_us, duration_us) = s.decode.next(f.ts_us);
        s.last_ts = Some(s.last_ts.map_or(f.ts_us, |t| t.max(f.ts_us)));
        let frag =
            Fragment { bytes: fragment(s.sequence, f, dts_us, duration_us), ts_us: f.ts_us, keyframe: f.keyframe };
        s.sequence = s.sequence.wrapping_add(1);
        self.stats.fragments.fetch_add(1, Relaxed);
        keep_gop(&mut s, &frag);
        self.deliver(&mut s, &frag, now);
        let generation = s.generation;
        if let Some(ring) = s.hls.as_mut() {
            if ring.push(generation, &frag, duration_us) {
                self.hls_ready.notify_waiters();
            }
        }
    }

    /// Ends the stream when `f` cannot continue it (rule 4).
    fn continue_or_break(&self, s: &mut HubState, f: &EncodedFrame) {
        let Some(stream) = &s.stream else { return };
        // Measured against the frontier: a B-frame is presented before it (time.md rule 7).
        let jump = s.last_ts.is_some_and(|t| {
            f.ts_us < t - MAX_REORDER_US || (f.keyframe && f.ts_us < t) || f.ts_us - t > MAX_FRAME_GAP_US
        });
        if f.discontinuity || jump || !stream.params.matches(f) {
            self.stats.stream_breaks.fetch_add(1, Relaxed);
            let generation = stream.generation;
            s.stream = None;
            s.gop.clear();
            s.gop_bytes = 0;
            s.last_ts = None;
            s.decode = DecodeClock::default();
            for v in s.viewers.iter_mut().filter(|v| v.generation == Some(generation)) {
                v.closed = true;
                v.notify.notify_one();
            }
            if let Some(ring) = s.hls.as_mut() {
                ring.break_stream();
            }
        }
    }

    /// Starts a stream at keyframe `f`; false if `f` cannot start one.
    fn start_stream(&self, s: &mut HubState, f: &EncodedFrame) -> bool {
        if !f.keyframe {
            return false;
        }
        if let Some(p) = StreamParams::from_keyframe(f) {
            s.params = Some(p);
        }
        let Some(params) = s.params.clone().filter(|p| p.matches(f)) else { return false };
        let init = match init_segment(&params) {
            Ok(i) => i,
            Err(e) => {
                log::warn!("camera {}: live view cannot start: {e}", self.camera);
                s.params = None;
                return false;
            }
        };
        s.generation += 1;
        let generation = s.generation;
        if s.hls.is_some() {
            s.hls_inits.push_back((generation, init.clone()));
            while s.hls_inits.len() > super::hls::RING_SEGMENTS + 1 {
                s.hls_inits.pop_front();
            }
        }
        s.stream = Some(Stream { generation, params, init });
        true
    }

    /// Queues `frag` for every viewer (rule 3).
    fn deliver(&self, s: &mut HubState, frag: &Fragment, now: Instant) {
        let Some(stream) = &s.stream else { return };
        let (generation, init) = (stream.generation, stream.init.clone());
        let mut stalled = Vec::new();
        for v in s.viewers.iter_mut().filter(|v| !v.closed) {
            // The stall clock runs only while pieces wait: a viewer that took everything
            // is waiting for us, not stalled.
            if v.queue.is_empty() {
                v.last_take = now;
            } else if now.duration_since(v.last_take) >= STALL_TIMEOUT {
                stalled.push(v.id);
                continue;
            }
            if v.generation.is_none() {
                if !frag.keyframe {
                    continue;
                }
                v.generation = Some(generation);
                v.push(init.clone());
            }
            if v.waiting_key && !frag.keyframe {
                continue;
            }
            if v.queued_bytes + frag.bytes.len() > VIEWER_QUEUE_BYTES {
                // Behind: drop what it has not taken (but an init segment it has not taken
                // yet) and skip ahead.
                let init = if v.taken == 0 { v.queue.pop_front() } else { None };
                v.queue.clear();
                v.queued_bytes = 0;
                if let Some(i) = init {
                    v.push(i);
                }
                v.waiting_key = true;
                self.stats.skips.fetch_add(1, Relaxed);
                if !frag.keyframe {
                    continue;
                }
            }
            v.waiting_key = false;
            v.push(frag.bytes.clone());
            v.notify.notify_one();
        }
        for id in stalled {
            log::info!("camera {}: dropping live viewer {id}: it took nothing for {STALL_TIMEOUT:?}", self.camera);
            self.stats.dropped.fetch_add(1, Relaxed);
            if let Some(i) = s.viewers.iter().position(|v| v.id == id) {
                let v = s.viewers.swap_remove(i);
                v.notify.notify_one();
            }
        }
        self.stats.viewers.store(s.viewers.len() as u64, Relaxed);
    }

    /// A new viewer, starting at the newest keyframe (at once if the current GOP is kept,
    /// else at the next one); refused when `max_viewers` are connected.
    pub fn subscribe(self: &Arc<Self>) -> Result<Viewer, Full> {
        let mut s = self.lock();
        if s.viewers.len() >= self.max_viewers {
            self.stats.refused.fetch_add(1, Relaxed);
            return Err(Full { max_viewers: self.max_viewers });
        }
        self.active.store(true, Relaxed);
        let id = s.next_id;
        s.next_id += 1;
        let notify = Arc::new(Notify::new());
        let mut slot = Slot {
            id,
            queue: VecDeque::new(),
            queued_bytes: 0,
            generation: None,
            waiting_key: false,
            closed: false,
            notify: notify.clone(),
            last_take: Instant::now(),
            taken: 0,
        };
        if let (Some(stream), Some(first)) = (&s.stream, s.gop.first()) {
            if first.keyframe {
                slot.generation = Some(stream.generation);
                slot.push(stream.init.clone());
                for f in &s.gop {
                    slot.push(f.bytes.clone());
                }
            }
        }
        s.viewers.push(slot);
        self.stats.viewers.store(s.viewers.len() as u64, Relaxed);
        self.stats.viewers_total.fetch_add(1, Relaxed);
        Ok(Viewer { hub: self.clone(), id, notify })
    }

    fn unsubscribe(&self, id: u64) {
        let mut s = self.lock();
        if let Some(i) = s.viewers.iter().position(|v| v.id == id) {
            s.viewers.swap_remove(i);
        }
        if s.viewers.is_empty() {
            s.linger_until = Some(Instant::now() + LINGER);
        }
        self.stats.viewers.store(s.viewers.len() as u64, Relaxed);
    }

    /// The parameter sets of the current stream (for a MIME type's `codecs`).
    pub fn params(&self) -> Option<StreamParams> {
        self.lock().stream.as_ref().map(|s| s.params.clone())
    }

    /// Fragment bytes the hub holds now (current GOP, viewer queues and HLS ring; a
    /// fragment held in several places counts each time): an upper bound of its memory.
    pub fn held_bytes(&self) -> usize {
        let s = self.lock();
        s.gop_bytes + s.viewers.iter().map(|v| v.queued_bytes).sum::<usize>() + s.hls.as_ref().map_or(0, |r| r.bytes())
    }

    /// Notes an HLS request: creates the ring if needed and keeps it for [`HLS_IDLE`].
    pub fn hls_touch(&self) {
        let mut s = self.lock();
        s.hls_until = Some(Instant::now() + HLS_IDLE);
        if s.hls.is_none() {
            s.hls = Some(HlsRing::default());
            if let Some(st) = &s.stream {
                let entry = (st.generation, st.init.clone());
                s.hls_inits.push_back(entry);
            }
        }
        self.active.store(true, Relaxed);
    }

    /// The HLS playlist (URIs under `prefix`), waiting up to `wait` for a first segment.
    pub async fn hls_playlist(&self, prefix: &str, wait: Duration) -> Option<String> {
        self.hls_touch();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ready = self.hls_ready.notified();
            if let Some(p) = self.lock().hls.as_ref().and_then(|r| r.playlist(prefix)) {
                return Some(p);
            }
            if tokio::time::timeout_at(deadline, ready).await.is_err() {
                return None;
            }
        }
    }

    /// An HLS segment by sequence number (its fragments, in order).
    pub fn hls_segment(&self, seq: u64) -> Option<Segment> {
        self.hls_touch();
        self.lock().hls.as_ref().and_then(|r| r.segment(seq).cloned())
    }

    /// The init segment of stream generation `generation`, while the ring refers to it.
    pub fn hls_init(&self, generation: u64) -> Option<Bytes> {
        self.hls_touch();
        self.lock().hls_inits.iter().find(|(g, _)| *g == generation).map(|(_, b)| b.clone())
    }
}

/// Keeps the current GOP's fragments for viewers that join (rule 2).
fn keep_gop(s: &mut HubState, frag: &Fragment) {
    if frag.keyframe {
        s.gop.clear();
        s.gop_bytes = 0;
    } else if s.gop.is_empty() {
        return; // the GOP grew too large: wait for the next keyframe
    }
    if s.gop_bytes + frag.bytes.len() > GOP_CACHE_BYTES {
        s.gop.clear();
        s.gop_bytes = 0;
        return;
    }
    s.gop_bytes += frag.bytes.len();
    s.gop.push(frag.clone());
}

/// A live viewer: its init segment, then fragments, until the stream ends. Dropping it
/// leaves the hub.
pub struct Viewer {
    hub: Arc<LiveHub>,
    id: u64,
    notify: Arc<Notify>,
}

impl Viewer {
    /// The next piece of the stream (init segment or fragment), waiting for it; `None`
    /// when the stream ended (a change of stream, or this viewer was dropped).
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.try_next() {
                Ok(Some(b)) => return Some(b),
                Ok(None) => self.notify.notified().await,
                Err(Ended) => return None,
            }
        }
    }

    /// The next piece if one is queued (`Ok(None)`: not yet).
    pub fn try_next(&mut self) -> Result<Option<Bytes>, Ended> {
        let mut s = self.hub.lock();
        let Some(v) = s.viewers.iter_mut().find(|v| v.id == self.id) else { return Err(Ended) };
        v.last_take = Instant::now();
        match v.queue.pop_front() {
            Some(b) => {
                v.queued_bytes -= b.len();
                v.taken += 1;
                Ok(Some(b))
            }
            None if v.closed => Err(Ended),
            None => Ok(None),
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

/// The viewer's stream has ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h26x::Codec;

    const T0: i64 = 1_795_273_010_000_000;

    fn frame(ts_us: i64, key: bool, len: usize) -> EncodedFrame {
        let mut f = EncodedFrame::new(ts_us, Codec::H264);
        if key {
            // Real parameter sets (openh264, 64x48), so the init segment can be made.
            let real = crate::testutil::encoded_frames(64, 48, 0, 1).remove(0);
            for n in real.nals().filter(|n| Codec::H264.classify(n).is_parameter_set()) {
                f.push_nal(n);
            }
            let mut idr = vec![0x65];
            idr.resize(len, 0x11);
            f.push_nal(&idr);
        } else {
            let mut p = vec![0x41];
            p.resize(len, 0x22);
            f.push_nal(&p);
        }
        f
    }

    fn drain(v: &mut Viewer) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Ok(Some(b)) = v.try_next() {
            out.push(b);
        }
        out
    }

    fn is_init(b: &Bytes) -> bool {
        &b[4..8] == b"ftyp"
    }

    fn is_key(b: &Bytes) -> bool {
        let trun = b.windows(4).position(|w| w == b"trun").unwrap() - 4;
        u32::from_be_bytes(b[trun + 28..trun + 32].try_into().unwrap()) == SYNC
    }
    const SYNC: u32 = 0x0200_0000;

    #[test]
    fn an_idle_hub_makes_nothing() {
        let hub = LiveHub::new("cam", 4);
        for i in 0..30 {
            hub.publish(&frame(T0 + i * 100_000, i % 10 == 0, 1000));
        }
        assert_eq!(hub.stats.fragments.load(Relaxed), 0);
        assert_eq!(hub.held_bytes(), 0);
        assert!(!hub.active.load(Relaxed));
    }

    #[test]
    fn viewers_start_at_a_keyframe_and_joiners_get_the_current_gop_at_once() {
        let hub = LiveHub::new("cam", 4);
        let mut first = hub.subscribe().unwrap();
        // Idle until now: the first viewer waits for the next keyframe.
        hub.publish(&frame(T0, false, 100));
        assert!(drain(&mut first).is_empty());
        for i in 1..5 {
            hub.publish(&frame(T0 + i * 100_000, i == 1, 100));
        }
        let got = drain(&mut first);
        assert_eq!(got.len(), 5);
        assert!(is_init(&got[0]) && is_key(&got[1]) && !is_key(&got[2]));
        // A second viewer joins mid-GOP: init + the GOP so far, before any new frame.
        let mut second = hub.subscribe().unwrap();
        let got2 = drain(&mut second);
        assert_eq!(got2.len(), 5);
        assert_eq!(got2[1..], got[1..], "the same shared fragments");
        assert_eq!(hub.stats.viewers.load(Relaxed), 2);
        drop(first);
        assert_eq!(hub.stats.viewers.load(Relaxed), 1);
    }

    #[test]
    fn the_viewer_cap_refuses_the_next_one() {
        let hub = LiveHub::new("cam", 2);
        let (_a, _b) = (hub.subscribe().unwrap(), hub.subscribe().unwrap());
        assert_eq!(hub.subscribe().err(), Some(Full { max_viewers: 2 }));
        assert_eq!(hub.stats.refused.load(Relaxed), 1);
    }

    /// A viewer that does not read never holds more than its cap, skips to keyframes
    /// (counted), resumes at a keyframe, and is dropped once it stalls too long; the
    /// publisher is never held up. Twenty such viewers stay within the stated memory.
    #[test]
    fn slow_viewers_are_bounded_skip_to_keyframes_and_stalled_ones_are_dropped() {
        let hub = LiveHub::new("cam", 20);
        let mut viewers: Vec<Viewer> = (0..20).map(|_| hub.subscribe().unwrap()).collect();
        // 10 GOPs of ~30 KB frames: ~3 MB, three times what a queue may hold.
        for i in 0..100 {
            hub.publish(&frame(T0 + i * 100_000, i % 10 == 0, 30_000));
            assert!(hub.held_bytes() <= 20 * VIEWER_QUEUE_BYTES + GOP_CACHE_BYTES);
        }
        assert!(hub.stats.skips.load(Relaxed) >= 20);
        let got = drain(&mut viewers[0]);
        assert!(is_init(&got[0]), "the untaken init segment survives a skip");
        assert!(is_key(&got[1]), "after a skip the stream resumes at a keyframe");
        assert!(got.iter().map(|b| b.len()).sum::<usize>() <= VIEWER_QUEUE_BYTES);
        // Everyone but viewer 0 stalls for longer than the timeout.
        {
            let mut s = hub.lock();
            for v in s.viewers.iter_mut().filter(|v| v.id != 0) {
                v.last_take -= STALL_TIMEOUT;
            }
        }
        for i in 100..140 {
            hub.publish(&frame(T0 + i * 100_000, i % 10 == 0, 30_000));
            drain(&mut viewers[0]);
        }
        assert_eq!(hub.stats.dropped.load(Relaxed), 19);
        assert_eq!(viewers[1].try_next(), Err(Ended));
        assert_eq!(hub.stats.viewers.load(Relaxed), 1);
    }

    /// A viewer whose pieces wait untaken for the stall timeout is dropped at the next
    /// frame even though its queue is far from full (a low-bitrate camera would take
    /// minutes to fill it); a viewer that took everything and waits is not stalled.
    #[test]
    fn a_stalled_viewer_is_dropped_before_its_queue_fills() {
        let hub = LiveHub::new("cam", 4);
        let (mut stalled, mut waiting) = (hub.subscribe().unwrap(), hub.subscribe().unwrap());
        for i in 0..5 {
            hub.publish(&frame(T0 + i * 100_000, i == 0, 500));
        }
        assert_eq!(drain(&mut stalled).len(), 6, "init and five fragments");
        assert_eq!(drain(&mut waiting).len(), 6);
        let age = |hub: &LiveHub, id: Option<u64>| {
            for v in hub.lock().viewers.iter_mut().filter(|v| id.is_none_or(|id| v.id == id)) {
                v.last_take -= STALL_TIMEOUT;
            }
        };
        // Both took everything and then waited longer than the timeout: not stalled.
        age(&hub, None);
        hub.publish(&frame(T0 + 500_000, false, 500));
        assert_eq!(hub.stats.dropped.load(Relaxed), 0);
        // `stalled` leaves that fragment untaken for the timeout; `waiting` takes it.
        age(&hub, Some(stalled.id));
        assert_eq!(drain(&mut waiting).len(), 1);
        hub.publish(&frame(T0 + 600_000, false, 500));
        assert!(hub.held_bytes() < VIEWER_QUEUE_BYTES / 100, "the queues are far from full");
        assert_eq!(hub.stats.dropped.load(Relaxed), 1);
        assert_eq!(stalled.try_next(), Err(Ended));
        assert_eq!(drain(&mut waiting).len(), 1, "the viewer that keeps up keeps its stream");
        assert_eq!(hub.stats.skips.load(Relaxed), 0);
    }

    #[test]
    fn new_parameter_sets_end_the_stream_and_the_next_viewer_gets_a_new_init() {
        let hub = LiveHub::new("cam", 4);
        let mut v = hub.subscribe().unwrap();
        for i in 0..5 {
            hub.publish(&frame(T0 + i * 100_000, i == 0, 100));
        }
        // The camera changes resolution: a keyframe with another SPS.
        let k = crate::testutil::encoded_frames(96, 64, T0 + 500_000, 1).remove(0);
        hub.publish(&k);
        assert_eq!(drain(&mut v).len(), 6, "init + 5 fragments, then the end");
        assert_eq!(v.try_next(), Err(Ended));
        let mut w = hub.subscribe().unwrap();
        let got = drain(&mut w);
        assert_eq!(got.len(), 2);
        assert!(is_init(&got[0]) && is_key(&got[1]));
        assert_eq!(hub.stats.stream_breaks.load(Relaxed), 1);
        // A reconnect (discontinuity) ends it too.
        let mut d = frame(T0 + 600_000, true, 100);
        d.discontinuity = true;
        hub.publish(&d);
        assert_eq!(drain(&mut w).len(), 0);
        assert_eq!(w.try_next(), Err(Ended));
    }

    /// What a viewer receives is a valid fragmented MP4 that ffmpeg decodes without an
    /// error, whose timestamps are the frames' wall-clock times.
    #[test]
    fn a_viewer_stream_is_an_fmp4_that_ffmpeg_decodes_at_wall_clock_times() {
        let hub = LiveHub::new("cam", 4);
        let mut v = hub.subscribe().unwrap();
        for f in crate::testutil::encoded_frames(64, 48, T0, 35) {
            hub.publish(&f);
        }
        let bytes: Vec<u8> = drain(&mut v).iter().flat_map(|b| b.iter().copied()).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.mp4");
        std::fs::write(&path, &bytes).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames,codec_name,width"])
            .args(["-show_entries", "format=start_time", "-of", "json"])
            .arg(&path)
            .output()
            .expect("ffprobe runs");
        assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["streams"][0]["nb_read_frames"], "35", "{j}");
        assert_eq!(j["streams"][0]["codec_name"], "h264");
        let start: f64 = j["format"]["start_time"].as_str().unwrap().parse().unwrap();
        assert!((start - T0 as f64 / 1e6).abs() < 0.001, "{start}");
        let dec = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-xerror", "-i"])
            .arg(&path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(dec.status.success() && dec.stderr.is_empty(), "{}", String::from_utf8_lossy(&dec.stderr));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hls_lists_finished_gops_while_clients_ask() {
        let hub = LiveHub::new("cam", 4);
        let frames = crate::testutil::encoded_frames(64, 48, T0, 45);
        let publisher = {
            let hub = hub.clone();
            tokio::spawn(async move {
                for f in frames {
                    hub.publish(&f);
                    tokio::task::yield_now().await;
                }
            })
        };
        let p = hub.hls_playlist("live/", Duration::from_secs(5)).await.expect("a playlist");
        publisher.await.unwrap();
        assert!(p.contains("#EXT-X-MAP:URI=\"live/init-1.mp4\""), "{p}");
        let p = hub.hls_playlist("live/", Duration::ZERO).await.unwrap();
        // GOPs at frames 0, 10, 20, 30 (40 is still open): the first from 0 if the ring
        // started before it.
        assert!(p.matches("#EXTINF:1.000,").count() >= 2, "{p}");
        let seq: u64 = p.lines().find(|l| l.ends_with(".m4s")).unwrap()[5..].trim_end_matches(".m4s").parse().unwrap();
        let seg = hub.hls_segment(seq).unwrap();
        assert_eq!(seg.parts.len(), 10);
        assert!(hub.hls_init(1).is_some_and(|i| is_init(&i)));
        assert!(hub.hls_segment(999).is_none());
    }
}
