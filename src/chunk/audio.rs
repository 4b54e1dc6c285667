//! The audio sibling of a chunk: `{camera}.YYYYMMDD.HHMM[.n].audio` beside the `.chunk`
//! (`docs/design/audio.md`). Same record layout as the chunk (`u8 0 | u64 BE µs | u64 BE
//! length | payload`), one record per audio frame, after a header record that describes the
//! stream ([`AudioParams::to_header`]), so the file describes itself and the video chunk
//! stays byte for byte what PyNVR reads (its tools list `*.chunk` only).
//!
//! The sibling follows its chunk: created at the chunk's first audio frame, written when the
//! chunk's GOP is written, fdatasync'd with it and fsync'd when it is sealed. Audio never
//! fails a storage root or stops video: an audio write error ends audio for that chunk
//! (logged once, counted), and the next chunk tries again.

use super::format::append_record;
pub use super::path::{chunk_of_sibling, sibling_path, AUDIO_EXTENSION};
use crate::media::audio::{AudioFrame, AudioParams};
use crate::storage::confined::{self, Access};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Most audio bytes buffered before a write: about 16 s of 128 kbit/s AAC. Normally the
/// buffer is written with each GOP, long before this.
pub const PENDING_LIMIT: usize = 256 << 10;

/// The open sibling of the open chunk.
struct OpenSibling {
    chunk_id: i64,
    abs: PathBuf,
    file: File,
    params: Arc<AudioParams>,
    /// Bytes on disk, all whole records.
    written: u64,
    last_ts: i64,
    dirty: bool,
}

/// A camera writer's audio: at most one sibling open, for the chunk being written.
#[derive(Default)]
pub struct AudioTrack {
    open: Option<OpenSibling>,
    pending: Vec<u8>,
    /// Audio gave up for this chunk id (a create or write error): frames are dropped until
    /// the next chunk.
    off_for: Option<i64>,
    /// Frames dropped since the last log line.
    dropped: u64,
    /// The last sibling closed (or given up on): its chunk's id and its length on disk,
    /// for the chunk's seal (`index::Seal::audio_bytes`).
    closed: Option<(i64, u64)>,
}

/// Where the frame goes: the open chunk's id, root and relative path.
pub struct ChunkAt<'a> {
    /// The chunk's index id.
    pub id: i64,
    /// Its storage root's directory.
    pub root: &'a Path,
    /// Its path relative to the root.
    pub rel: &'a Path,
}

impl AudioTrack {
    /// Adds a frame to the sibling of `chunk` (opening it at the chunk's first frame).
    /// Returns the bytes taken, 0 when dropped: a frame before the sibling's last (audio
    /// never goes back), of other parameters than the sibling's (the camera changed its
    /// audio: the next chunk gets the new ones), or after an error on this chunk.
    pub fn write(&mut self, chunk: ChunkAt<'_>, a: &AudioFrame, camera: &str) -> usize {
        if self.open.as_ref().is_some_and(|o| o.chunk_id != chunk.id) {
            self.close(camera);
        }
        if self.off_for == Some(chunk.id) {
            return self.drop_frame();
        }
        if self.open.is_none() {
            match create(chunk.root, chunk.rel, a) {
                Ok((abs, file)) => {
                    let o = OpenSibling {
                        chunk_id: chunk.id,
                        abs,
                        file,
                        params: a.params.clone(),
                        written: 0,
                        last_ts: i64::MIN,
                        dirty: false,
                    };
                    append_record(&mut self.pending, a.ts_us, &a.params.to_header());
                    self.open = Some(o);
                }
                Err(e) => {
                    log::warn!("camera {camera}: no audio for this chunk: {e}");
                    self.off_for = Some(chunk.id);
                    return self.drop_frame();
                }
            }
        }
        let o = self.open.as_mut().expect("opened above");
        if a.ts_us <= o.last_ts || *o.params != *a.params {
            return self.drop_frame();
        }
        o.last_ts = a.ts_us;
        append_record(&mut self.pending, a.ts_us, &a.data);
        if self.pending.len() >= PENDING_LIMIT {
            self.flush(camera);
        }
        a.data.len()
    }

    fn drop_frame(&mut self) -> usize {
        self.dropped += 1;
        0
    }

    /// Writes the buffered records (with the chunk's GOP). A failed write is cut back to the
    /// last whole record and ends audio for this chunk.
    pub fn flush(&mut self, camera: &str) {
        if self.pending.is_empty() {
            return;
        }
        let Some(o) = self.open.as_mut() else {
            self.pending.clear();
            return;
        };
        match o.file.write_all(&self.pending) {
            Ok(()) => {
                o.written += self.pending.len() as u64;
                o.dirty = true;
            }
            Err(e) => {
                let _ = o.file.set_len(o.written);
                log::warn!("camera {camera}: writing {} failed ({e}); no more audio for this chunk", o.abs.display());
                self.off_for = Some(o.chunk_id);
                self.closed = Some((o.chunk_id, o.written));
                self.open = None;
            }
        }
        self.pending.clear();
    }

    /// fdatasync, when the chunk is synced. An error ends audio for this chunk.
    pub fn sync(&mut self, camera: &str) {
        self.flush(camera);
        let Some(o) = self.open.as_mut() else { return };
        if o.dirty {
            if let Err(e) = o.file.sync_data() {
                log::warn!("camera {camera}: fdatasync {} failed ({e}); no more audio for this chunk", o.abs.display());
                self.off_for = Some(o.chunk_id);
                self.closed = Some((o.chunk_id, o.written));
                self.open = None;
                return;
            }
            o.dirty = false;
        }
    }

    /// Writes, fsyncs and closes the sibling (its chunk is being sealed).
    pub fn close(&mut self, camera: &str) {
        self.flush(camera);
        if let Some(o) = self.open.take() {
            if let Err(e) = o.file.sync_all() {
                log::warn!("camera {camera}: fsync {} failed: {e}", o.abs.display());
            }
            self.closed = Some((o.chunk_id, o.written));
        }
        if self.dropped > 0 {
            log::debug!("camera {camera}: {} audio frames dropped", self.dropped);
            self.dropped = 0;
        }
    }

    /// The length of chunk `chunk_id`'s sibling once closed (0 when it has none): what its
    /// seal counts.
    pub fn closed_bytes(&self, chunk_id: i64) -> u64 {
        match self.closed {
            Some((id, bytes)) if id == chunk_id => bytes,
            _ => 0,
        }
    }

    /// Audio frames dropped since the last close.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// How much of a sibling is whole records: `(good_len, file_len, why it stops)`, `why`
/// `None` when the file is clean. A torn tail is cut to `good_len` like a chunk's. Reads
/// from the file's current offset (borrowed, so a caller can rewind it and use it).
pub fn whole_records(file: &File) -> std::io::Result<(u64, u64, Option<String>)> {
    use super::reader::{ChunkReader, ReadError};
    let len = file.metadata()?.len();
    let mut rd = ChunkReader::with_len(file, Some(len));
    let mut payload = Vec::new();
    loop {
        match rd.next_into(&mut payload) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok((rd.good_len(), len, None)),
            Err(ReadError::Io(e)) => return Err(e),
            Err(e) => return Ok((rd.good_len(), len, Some(e.to_string()))),
        }
    }
}

/// Creates the sibling of `rel` in `root` (`O_EXCL`, no symlinks followed).
fn create(root: &Path, rel: &Path, a: &AudioFrame) -> std::io::Result<(PathBuf, File)> {
    let sib = sibling_path(rel).ok_or_else(|| std::io::Error::other(format!("{} is no chunk path", rel.display())))?;
    let file = confined::open_chunk(root, &sib, Access::CreateNew)?;
    log::debug!("new {} audio file {}", a.params.codec.as_str(), sib.display());
    Ok((root.join(sib), file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_names_replace_the_chunk_suffix() {
        let p = |s: &str| sibling_path(Path::new(s)).map(|p| p.to_str().unwrap().to_owned());
        assert_eq!(p("cam/20261121/cam.20261121.1456.chunk").as_deref(), Some("cam/20261121/cam.20261121.1456.audio"));
        assert_eq!(p("/r/c/d/c.20261121.1456.2.chunk").as_deref(), Some("/r/c/d/c.20261121.1456.2.audio"));
        assert_eq!(p("cam/20261121/notes.txt"), None);
        assert_eq!(p("cam/20261121/chunk"), None);
        let c = chunk_of_sibling(Path::new("cam/20261121/cam.20261121.1456.2.audio")).unwrap();
        assert_eq!(c, Path::new("cam/20261121/cam.20261121.1456.2.chunk"));
        assert_eq!(chunk_of_sibling(Path::new("cam/20261121/cam.20261121.1456.chunk")), None);
    }

    /// Reads a sibling: its header's parameters and its frames' timestamps.
    pub(crate) fn read_sibling(path: &Path) -> (AudioParams, Vec<i64>) {
        let mut rd = crate::chunk::reader::ChunkReader::open(path).unwrap();
        let mut payload = Vec::new();
        rd.next_into(&mut payload).unwrap().unwrap();
        let params = AudioParams::from_header(&payload).expect("a header record first");
        let ts = std::iter::from_fn(|| rd.next_into(&mut payload).unwrap().map(|h| h.ts_us)).collect();
        (params, ts)
    }

    /// Audio goes to the sibling of the chunk being written, rotates with it at the first
    /// keyframe after the minute, and never goes back; video is the same with or without it.
    #[test]
    fn audio_files_follow_their_chunks() {
        use crate::media::audio::AudioCodec;
        use crate::media::frame::EncodedFrame;
        use crate::media::h26x::Codec;
        const T0: i64 = 1_795_272_960_000_000; // 2026-11-21T14:56:00Z
        let d = tempfile::tempdir().unwrap();
        let (mut w, index, _) = crate::testutil::writer_fixture(d.path());
        let params = Arc::new(AudioParams { codec: AudioCodec::Pcmu, sample_rate: 8000, channels: 1, config: vec![] });
        let audio = |ts| AudioFrame { ts_us: ts, params: params.clone(), data: vec![0xff; 160] };
        w.write_audio(&audio(T0 - 500_000)); // before any chunk: dropped
        let mut ts = T0 + 50_000_000;
        for i in 0..20 {
            // 1 fps, a keyframe every 4 s; 2 audio frames per video frame.
            let mut f = EncodedFrame::new(ts, Codec::H264);
            f.push_nal(if i % 4 == 0 { &[0x65, 1] } else { &[0x41, 1] });
            if i == 0 {
                f.push_nal(&[0x67, 1]);
                f.push_nal(&[0x68, 1]);
            }
            w.write_frame(&f);
            w.write_audio(&audio(ts + 100_000));
            w.write_audio(&audio(ts + 600_000));
            w.write_audio(&audio(ts + 600_000)); // not after its predecessor: dropped
            ts += 1_000_000;
        }
        w.close();
        let rows = index.chunks_for_camera("cam", 0, i64::MAX).unwrap();
        assert_eq!(rows.len(), 2, "rotated at the keyframe at T0 + 62 s");
        let mut all = Vec::new();
        for r in &rows {
            let sib = sibling_path(&d.path().join(&r.rel_path)).unwrap();
            let (p, ts) = read_sibling(&sib);
            assert_eq!(p, *params);
            assert!(ts.windows(2).all(|w| w[0] < w[1]));
            assert!(ts[0] >= r.start_us && *ts.last().unwrap() < r.end_us + 1_000_000, "{r:?} {ts:?}");
            all.extend(ts);
        }
        assert_eq!(all.len(), 40);
        assert!(d.path().join("cam/20261121/cam.20261121.1457.audio").exists());
    }
}
