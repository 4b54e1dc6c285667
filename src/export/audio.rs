//! The audio of an export: which records of which audio sibling files
//! (`docs/design/audio.md`) go into the MP4's sound track, and reading them back.
//!
//! Rules (see `docs/design/export.md`, "Audio"):
//! 1. A video segment's audio is its chunk's sibling (`chunk::audio::sibling_path` of the
//!    file the video is read from, so a fetched-back archived chunk finds its fetched
//!    sibling the same way). A chunk without a sibling has no audio: the track has a gap.
//! 2. Only frames inside the export's window are taken: from the first video frame to the
//!    end of playback (`to`, or the last frame's end). Records are in time order within a
//!    sibling (the writer drops any that would go back), so the frames taken are one run of
//!    whole records: a byte range, like a video segment.
//! 3. The first sibling's stream description (its header record) is the track's. A sibling
//!    describing another stream (the camera changed its audio settings), or whose frames
//!    do not come after the previous sibling's (the clock was set back), is left out.
//! 4. A damaged or torn sibling gives the frames before the damage, never an error: audio
//!    never stops a video export.
//! 5. Counting a sibling's frames reads every record header, about 1 MB a minute of AAC.
//!    A whole sibling's count is kept in a small cache (at most [`CACHE_ENTRIES`], about
//!    160 bytes each, keyed by path, length and modification time, so a changed file is
//!    counted again), so the several `Range` requests a player makes for one export read
//!    each sibling once.
//! 6. Bounded memory: at most [`MAX_SIBLING_FRAMES`] frames are taken from one sibling, so a
//!    reader's frame list of one sibling stays under 1 MiB whatever the file holds.

use crate::chunk::audio::sibling_path;
use crate::chunk::format::HEADER_LEN;
use crate::chunk::reader::{ChunkReader, ReadError};
use crate::err;
use crate::error::{Error, Result};
use crate::media::audio::{AudioCodec, AudioParams};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The most whole-sibling counts kept: a day of one camera's minutes.
pub const CACHE_ENTRIES: usize = 1440;

/// The most frames taken from one sibling: a reader holds one sibling's frame list (16
/// bytes a frame, so at most 1 MiB). A minute of 48 kHz AAC is 2 813 frames, of G.711 in
/// 20 ms packets 3 000; a chunk spans more than a minute only when the camera's keyframes
/// are further apart. Frames past the limit (a hostile or absurd file) are left out.
pub const MAX_SIBLING_FRAMES: u64 = 65_536;

/// One sibling file's contribution to the sound track: records `start_off..end_off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSegment {
    /// The video segment (index in the plan's `segments`) whose chunk this is the sibling of:
    /// its samples follow that segment's in the `mdat`.
    pub video_segment: usize,
    /// Absolute path of the sibling.
    pub path: PathBuf,
    /// Offset of the first frame's record.
    pub start_off: u64,
    /// Offset just past the last frame's record.
    pub end_off: u64,
    /// Frames (samples) in the range.
    pub frames: u64,
    /// Timestamp of the first frame, µs.
    pub first_ts: i64,
    /// Timestamp of the last frame, µs.
    pub last_ts: i64,
}

impl AudioSegment {
    /// Bytes of the segment's frames, without their record headers.
    pub fn payload_len(&self) -> u64 {
        (self.end_off - self.start_off).saturating_sub(HEADER_LEN as u64 * self.frames)
    }
}

/// The sound track of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioPlan {
    /// The stream's description (codec, rate, channels, AAC configuration).
    pub params: AudioParams,
    /// The siblings' ranges, in time order; at least one.
    pub segments: Vec<AudioSegment>,
    /// Where playback of the sound ends, µs (the video's end of playback).
    pub play_end_us: i64,
}

impl AudioPlan {
    /// Total frames.
    pub fn frames(&self) -> u64 {
        self.segments.iter().map(|s| s.frames).sum()
    }

    /// Timestamp of the first frame.
    pub fn first_ts(&self) -> i64 {
        self.segments[0].first_ts
    }

    /// Timestamp of the last frame.
    pub fn last_ts(&self) -> i64 {
        self.segments.last().expect("an audio plan has segments").last_ts
    }

    /// The audio bytes that follow video segment `i` in the `mdat`, and that segment's
    /// audio index, if it has audio.
    pub fn after_video(&self, i: usize) -> Option<(usize, &AudioSegment)> {
        self.segments.iter().enumerate().find(|(_, a)| a.video_segment == i)
    }

    /// The duration given to the very last frame, in samples (its successor is unknown): an
    /// AAC frame is 1024 samples; for G.711, the last sibling's mean frame spacing.
    pub fn last_duration(&self) -> u32 {
        let s = self.segments.last().expect("an audio plan has segments");
        match self.params.codec {
            AudioCodec::Aac => 1024,
            AudioCodec::Pcmu | AudioCodec::Pcma if s.frames > 1 => {
                let spacing = (s.last_ts - s.first_ts) / (s.frames as i64 - 1);
                ((spacing as i128 * self.params.sample_rate as i128 / 1_000_000) as u32).clamp(1, 8_000)
            }
            AudioCodec::Pcmu | AudioCodec::Pcma => 160,
        }
    }

    /// The track's length in its timescale: to the end of the last frame.
    pub fn media_duration(&self) -> u64 {
        self.ticks(self.last_ts()) + self.last_duration() as u64
    }

    /// A timestamp in the track's timescale (the sample rate) since the first frame,
    /// rounded to the nearest sample.
    pub fn ticks(&self, ts_us: i64) -> u64 {
        let d = (ts_us - self.first_ts()).max(0) as i128;
        ((d * self.params.sample_rate as i128 + 500_000) / 1_000_000) as u64
    }

    /// The (path, byte range) of every segment, as bytes, for ETags.
    pub fn segment_key(&self) -> Vec<u8> {
        let mut k = self.params.to_header();
        for s in &self.segments {
            k.extend_from_slice(s.path.as_os_str().as_encoded_bytes());
            k.extend_from_slice(&s.start_off.to_be_bytes());
            k.extend_from_slice(&s.end_off.to_be_bytes());
        }
        k
    }
}

/// What a scan of a sibling found: its description and the frames in the window.
#[derive(Clone, Debug)]
struct SiblingScan {
    params: AudioParams,
    start_off: u64,
    end_off: u64,
    frames: u64,
    first_ts: i64,
    last_ts: i64,
}

/// Whole-sibling scans, by (path, length, modification time).
type Cache = HashMap<(PathBuf, u64, i128), SiblingScan>;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The sound track of an export whose video segments are read from `videos` (in order),
/// taking the frames inside `window` (µs: the first video frame to the end of playback),
/// if any of the chunks has audio.
pub fn plan_audio<'a>(videos: impl Iterator<Item = &'a Path>, window: (i64, i64)) -> Option<AudioPlan> {
    let play_end_us = window.1;
    let mut track: Option<AudioPlan> = None;
    for (i, video) in videos.enumerate() {
        let Some(path) = sibling_path(video) else { continue };
        let scan = match scan_cached(&path, window) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                log::warn!("{e}; the export has no audio for that chunk");
                continue;
            }
        };
        let seg = AudioSegment {
            video_segment: i,
            path,
            start_off: scan.start_off,
            end_off: scan.end_off,
            frames: scan.frames,
            first_ts: scan.first_ts,
            last_ts: scan.last_ts,
        };
        match &mut track {
            None => track = Some(AudioPlan { params: scan.params, segments: vec![seg], play_end_us }),
            Some(t) if t.params == scan.params && seg.first_ts > t.last_ts() => t.segments.push(seg),
            Some(_) => {
                log::info!("{}: another audio stream or time going back; left out of the export", seg.path.display())
            }
        }
    }
    track
}

/// [`scan`], through the cache of whole-sibling scans (module doc, rule 5).
fn scan_cached(path: &Path, window: (i64, i64)) -> Result<Option<SiblingScan>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => m,
        Ok(_) => return Err(err!(DataLoss, "{} is not a regular file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    let key = (path.to_owned(), meta.len(), mtime);
    let within = |s: &SiblingScan| s.first_ts >= window.0 && s.last_ts < window.1;
    if let Some(s) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|c| c.get(&key)) {
        if within(s) {
            return Ok(Some(s.clone()));
        }
    }
    let (scan, whole) = scan(path, meta.len(), window)?;
    if let (Some(s), true) = (&scan, whole) {
        let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        let c = c.get_or_insert_with(HashMap::new);
        if c.len() >= CACHE_ENTRIES {
            c.clear(); // simple and bounded; a day of minutes is counted again
        }
        c.insert(key, s.clone());
    }
    Ok(scan)
}

/// Scans a sibling of `len` bytes for the frames inside `window` (µs, from inclusive, to
/// exclusive: a frame starting at the end of playback is never heard). Also says
/// whether the scan covered the whole file cleanly (every frame inside the window, no
/// damage), which is when it may be cached.
fn scan(path: &Path, len: u64, window: (i64, i64)) -> Result<(Option<SiblingScan>, bool)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let mut r = ChunkReader::with_len(file, Some(len));
    let mut header = Vec::new();
    let params = match r.next_into(&mut header) {
        Ok(Some(_)) => AudioParams::from_header(&header),
        Ok(None) | Err(ReadError::Truncated { .. }) => return Ok((None, false)),
        Err(e) => return Err(err!(DataLoss, "{}", path.display()).with_source(e)),
    };
    let Some(params) = params else {
        return Err(err!(DataLoss, "{}: no audio stream description at its start", path.display()));
    };
    let mut s =
        SiblingScan { params, start_off: r.good_len(), end_off: r.good_len(), frames: 0, first_ts: 0, last_ts: 0 };
    let mut whole = true;
    let mut skip = Vec::new();
    loop {
        let h = match r.peek_header() {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) => {
                if !matches!(e, ReadError::Truncated { .. }) {
                    log::warn!("{}: {e}; its audio is exported up to byte {}", path.display(), r.good_len());
                }
                whole = false;
                break;
            }
        };
        if h.ts_us >= window.1 {
            whole = false;
            break;
        }
        if s.frames == MAX_SIBLING_FRAMES {
            log::warn!("{}: more than {MAX_SIBLING_FRAMES} audio frames; the rest are left out", path.display());
            whole = false;
            break;
        }
        if h.len > u32::MAX as u64 / 2 {
            whole = false;
            log::warn!(
                "{}: an audio frame of {} bytes; its audio is exported up to byte {}",
                path.display(),
                h.len,
                r.good_len()
            );
            break;
        }
        let at = r.good_len();
        if let Err(e) = r.next_prefix(&mut skip, 0) {
            log::warn!("{}: {e}; its audio is exported up to byte {}", path.display(), at);
            whole = false;
            break;
        }
        if s.frames == 0 && h.ts_us < window.0 {
            (s.start_off, whole) = (r.good_len(), false);
            continue;
        }
        if s.frames > 0 && h.ts_us <= s.last_ts {
            // The writer never goes back (rule 2): a damaged file. The run ends here.
            log::warn!("{}: audio time goes back at byte {at}; its audio is exported up to there", path.display());
            whole = false;
            break;
        }
        if s.frames == 0 {
            (s.start_off, s.first_ts) = (at, h.ts_us);
        }
        s.frames += 1;
        s.last_ts = h.ts_us;
        s.end_off = r.good_len();
    }
    Ok(((s.frames > 0).then_some(s), whole))
}

/// One frame of the sound track: its timestamp and size.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AudioSample {
    /// µs since the epoch.
    pub ts_us: i64,
    /// Bytes.
    pub size: u32,
}

/// Most samples reserved up front (a minute of 48 kHz AAC is about 2 800).
const RESERVE: u64 = 4096;

/// Reads the frames of `seg` (a minute of audio: bounded), checking their count against
/// the plan's: the file must not have changed since planning.
pub fn segment_samples(seg: &AudioSegment) -> Result<Vec<AudioSample>> {
    let mut r = ChunkReader::open_at(&seg.path, seg.start_off)
        .map_err(|e| Error::io(format!("opening {}", seg.path.display()), e))?;
    let mut out = Vec::with_capacity(seg.frames.min(RESERVE) as usize);
    let mut skip = Vec::new();
    while r.good_len() < seg.end_off {
        let h = r
            .next_prefix(&mut skip, 0)
            .map_err(|e| err!(DataLoss, "{}", seg.path.display()).with_source(e))?
            .ok_or_else(|| err!(DataLoss, "{}: shorter than planned", seg.path.display()))?;
        out.push(AudioSample { ts_us: h.ts_us, size: h.len as u32 });
    }
    if out.len() as u64 != seg.frames || r.good_len() != seg.end_off {
        return Err(err!(
            DataLoss,
            "{}: {} audio frames on disk, {} planned",
            seg.path.display(),
            out.len(),
            seg.frames
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::format::append_record;

    /// Rule 6: a sibling of absurdly many tiny frames (hostile, or a camera sending a packet
    /// per sample) gives at most MAX_SIBLING_FRAMES of them, which read back whole.
    #[test]
    fn a_sibling_gives_at_most_max_sibling_frames() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("cam.20261121.1456.chunk");
        let params = AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] };
        let mut data = Vec::new();
        append_record(&mut data, 1_000, &params.to_header());
        for i in 0..MAX_SIBLING_FRAMES as i64 + 10 {
            append_record(&mut data, 1_000 + i, &[0xff]);
        }
        std::fs::write(dir.path().join("cam.20261121.1456.audio"), data).unwrap();
        let a = plan_audio([video.as_path()].into_iter(), (0, i64::MAX)).unwrap();
        assert_eq!(a.frames(), MAX_SIBLING_FRAMES);
        assert_eq!(segment_samples(&a.segments[0]).unwrap().len() as u64, MAX_SIBLING_FRAMES);
        assert_eq!(a.segments[0].payload_len(), MAX_SIBLING_FRAMES);
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: any bytes in a sibling (a real header and frames, damaged: bytes
        /// overwritten, the end cut) plan and read without a panic, within the window, and
        /// the sound track lays out; a frame list read back matches the plan or fails cleanly.
        #[test]
        fn fuzz_sibling(
            codec in 0u8..4,
            rate in proptest::prelude::any::<u32>(),
            channels in proptest::prelude::any::<u16>(),
            config in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..70),
            frames in proptest::collection::vec((0i64..40_000, 0usize..400), 0..60),
            damage in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            window in (0i64..1_000_000, 0i64..2_000_000),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let video = dir.path().join("cam.20261121.1456.chunk");
            let mut header = b"EAU1".to_vec();
            header.push(codec);
            header.extend_from_slice(&rate.to_be_bytes());
            header.extend_from_slice(&channels.to_be_bytes());
            header.extend_from_slice(&config);
            let mut data = Vec::new();
            append_record(&mut data, 0, &header);
            let mut ts = 0;
            for (step, len) in frames {
                ts += step - 5_000;
                append_record(&mut data, ts.max(0), &vec![0x55; len]);
            }
            for (at, v) in damage {
                let i = at.index(data.len());
                data[i] = v;
            }
            data.truncate(cut.index(data.len() + 1));
            std::fs::write(dir.path().join("cam.20261121.1456.audio"), &data).unwrap();
            let (from, to) = (window.0, window.0 + window.1);
            if let Some(a) = plan_audio([video.as_path()].into_iter(), (from, to)) {
                proptest::prop_assert!(a.first_ts() >= from && a.last_ts() < to);
                proptest::prop_assert!(a.params.sample_rate > 0 && a.params.channels > 0);
                let got = segment_samples(&a.segments[0]).unwrap();
                proptest::prop_assert_eq!(got.len() as u64, a.frames());
                proptest::prop_assert!(a.last_duration() >= 1);
                if let Some(t) = crate::export::sound::SoundTrack::new(&a, from) {
                    let parts = t.parts(&a, &[0]);
                    proptest::prop_assert_eq!(parts.len(), 5);
                }
            }
        }
    }
}
