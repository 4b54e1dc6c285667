//! The sound `trak` of an MP4 export (`docs/design/export.md`, "Audio"):
//!
//! ```text
//! trak ─ tkhd (track 2), edts/elst (the sound's place on the movie timeline)
//!      └ mdia ─ mdhd (timescale = sample rate), hdlr (soun)
//!             └ minf ─ smhd, dinf/dref
//!                    └ stbl ─ stsd/mp4a/esds (AAC) or stsd/ulaw, stsd/alaw (G.711)
//!                           ├ stts  one entry per frame   ┐ generated while reading,
//!                           ├ stsz  one entry per frame   ┘ from the audio siblings
//!                           ├ stsc  one entry per sibling
//!                           └ co64  one entry per sibling (after its video segment's bytes)
//! ```
//!
//! Every frame is a sync sample (no `stss`) presented when decoded (no `ctts`). Frames are
//! timed by their recorded wall-clock times, in samples since the first: a gap in the
//! camera's audio stays a gap. The edit list puts the track's first frame at its wall-clock
//! place relative to the movie's start (`from`, or the first video frame): an empty edit
//! when the sound starts later, a media time into the track when it starts earlier.
//!
//! G.711 has no ISO sample entry: the QuickTime `ulaw`/`alaw` sound description (version
//! 0), which ffmpeg's MP4/MOV demuxer and Chromium read, is used; see the README's player
//! table.

use super::audio::AudioPlan;
use super::boxes::{
    box_header, dinf, full_header, hdlr, mdhd, tkhd, u16b, u32b, u64b, TrackHeader, DINF_LEN, HDLR_LEN, MDHD_LEN,
    TIMESCALE, TKHD_LEN,
};
use super::stream::{AudioTable, Part};
use crate::media::audio::AudioCodec;

const SMHD_LEN: u64 = 16;
/// An audio sample entry without its child boxes.
const ENTRY_LEN: u64 = 36;

/// One edit of the sound track, in the movie timescale: `media_time` -1 is an empty edit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Edit {
    duration: u64,
    media_time: i64,
}

/// The sound track's edits, for a movie starting at `origin_us` (µs); `None` when the
/// sound does not reach into the movie.
fn edits(a: &AudioPlan, origin_us: i64) -> Option<Vec<Edit>> {
    let movie = |us: i64| (us.max(0) as i128 * TIMESCALE as i128 / 1_000_000) as u64;
    let media_end_us = a.first_ts() + (a.media_duration() as i128 * 1_000_000 / a.params.sample_rate as i128) as i64;
    let end_us = media_end_us.min(a.play_end_us);
    let first = a.first_ts();
    if end_us <= origin_us.max(first) {
        return None;
    }
    Some(if first >= origin_us {
        let mut e = Vec::with_capacity(2);
        if first > origin_us {
            e.push(Edit { duration: movie(first - origin_us), media_time: -1 });
        }
        e.push(Edit { duration: movie(end_us - first), media_time: 0 });
        e
    } else {
        vec![Edit { duration: movie(end_us - origin_us), media_time: a.ticks(origin_us) as i64 }]
    })
}

/// The `stsd` of the track: one sound sample entry.
fn stsd(a: &AudioPlan) -> Vec<u8> {
    let p = &a.params;
    let (kind, esds) = match p.codec {
        AudioCodec::Aac => (b"mp4a", esds(&p.config)),
        AudioCodec::Pcmu => (b"ulaw", chan(p.channels)),
        AudioCodec::Pcma => (b"alaw", chan(p.channels)),
    };
    let entry_len = ENTRY_LEN + esds.len() as u64;
    let mut out = Vec::with_capacity(16 + entry_len as usize);
    full_header(&mut out, 16 + entry_len, b"stsd", 0, 0);
    u32b(&mut out, 1);
    box_header(&mut out, entry_len, kind);
    out.extend_from_slice(&[0; 6]);
    u16b(&mut out, 1); // data_reference_index
    out.extend_from_slice(&[0; 8]); // version, revision, vendor
    u16b(&mut out, p.channels);
    u16b(&mut out, 16); // sample size
    u32b(&mut out, 0); // compression id, packet size
                       // 16.16 fixed point; a rate above 65535 Hz does not fit (AAC's esds carries it).
    u32b(&mut out, if p.sample_rate <= 0xffff { p.sample_rate << 16 } else { 0 });
    out.extend_from_slice(&esds);
    out
}

/// QuickTime's `chan` (channel layout) box for mono or stereo G.711, which has no other
/// place to say it (without one, ffmpeg guesses and warns); nothing for other counts.
fn chan(channels: u16) -> Vec<u8> {
    let tag: u32 = match channels {
        1 => 100 << 16 | 1, // kAudioChannelLayoutTag_Mono
        2 => 101 << 16 | 2, // kAudioChannelLayoutTag_Stereo
        _ => return Vec::new(),
    };
    let mut out = Vec::with_capacity(24);
    full_header(&mut out, 24, b"chan", 0, 0);
    u32b(&mut out, tag);
    u32b(&mut out, 0); // channel bitmap
    u32b(&mut out, 0); // channel descriptions
    out
}

/// The `esds` of an AAC stream with this AudioSpecificConfig (ISO/IEC 14496-1 descriptors,
/// one-byte lengths: the config is at most 64 bytes, `media::audio::MAX_HEADER_LEN`).
fn esds(config: &[u8]) -> Vec<u8> {
    let dsi = 2 + config.len();
    let dcd = 2 + 13 + dsi;
    let es = 2 + 3 + dcd + 3;
    let mut out = Vec::with_capacity(12 + es);
    full_header(&mut out, 12 + es as u64, b"esds", 0, 0);
    out.extend_from_slice(&[0x03, (es - 2) as u8, 0, 1, 0]); // ES_Descriptor, ES_ID 1
    out.extend_from_slice(&[0x04, (dcd - 2) as u8, 0x40, 0x15]); // MPEG-4 audio, audio stream
    out.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
    u32b(&mut out, 0); // maxBitrate
    u32b(&mut out, 0); // avgBitrate
    out.extend_from_slice(&[0x05, config.len() as u8]);
    out.extend_from_slice(config);
    out.extend_from_slice(&[0x06, 1, 0x02]); // SLConfigDescriptor: predefined MP4
    out
}

/// The sound track of an export, laid out.
pub struct SoundTrack {
    edits: Vec<Edit>,
    stsd: Vec<u8>,
    frames: u64,
    siblings: u64,
}

impl SoundTrack {
    /// The track of `a` in a movie starting at `origin_us`; `None` when its sound does not
    /// reach into the movie.
    pub fn new(a: &AudioPlan, origin_us: i64) -> Option<SoundTrack> {
        let edits = edits(a, origin_us)?;
        Some(SoundTrack { edits, stsd: stsd(a), frames: a.frames(), siblings: a.segments.len() as u64 })
    }

    fn stbl_len(&self) -> u64 {
        let (n, f) = (self.frames, self.siblings);
        8 + self.stsd.len() as u64 + (16 + 8 * n) + (20 + 4 * n) + (16 + 12 * f) + (16 + 8 * f)
    }

    fn minf_len(&self) -> u64 {
        8 + SMHD_LEN + DINF_LEN + self.stbl_len()
    }

    fn mdia_len(&self) -> u64 {
        8 + MDHD_LEN + HDLR_LEN + self.minf_len()
    }

    fn edts_len(&self) -> u64 {
        8 + 16 + 20 * self.edits.len() as u64
    }

    /// The whole `trak`'s length.
    pub fn len(&self) -> u64 {
        8 + TKHD_LEN + self.edts_len() + self.mdia_len()
    }

    /// Whether the track is empty (never: it has a frame).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The track's parts: its boxes, with the tables generated while reading; `offsets` is
    /// each sibling's place in the file (`co64`).
    pub fn parts(&self, a: &AudioPlan, offsets: &[u64]) -> Vec<Part> {
        let n = self.frames;
        let mut head = Vec::with_capacity(512);
        box_header(&mut head, self.len(), b"trak");
        let duration = self.edits.iter().map(|e| e.duration).sum();
        // Alternate group 1: the only sound; volume 1.0.
        tkhd(&mut head, &TrackHeader { id: 2, duration, alternate_group: 1, volume: 0x0100, width: 0, height: 0 });
        box_header(&mut head, self.edts_len(), b"edts");
        full_header(&mut head, 16 + 20 * self.edits.len() as u64, b"elst", 1, 0);
        u32b(&mut head, self.edits.len() as u32);
        for e in &self.edits {
            u64b(&mut head, e.duration);
            u64b(&mut head, e.media_time as u64);
            u16b(&mut head, 1); // media_rate 1.0
            u16b(&mut head, 0);
        }
        box_header(&mut head, self.mdia_len(), b"mdia");
        mdhd(&mut head, a.params.sample_rate, a.media_duration());
        hdlr(&mut head, b"soun", b"SoundHandler\0");
        box_header(&mut head, self.minf_len(), b"minf");
        full_header(&mut head, SMHD_LEN, b"smhd", 0, 0);
        u32b(&mut head, 0); // balance, reserved
        dinf(&mut head);
        box_header(&mut head, self.stbl_len(), b"stbl");
        head.extend_from_slice(&self.stsd);
        full_header(&mut head, 16 + 8 * n, b"stts", 0, 0);
        u32b(&mut head, n as u32);
        let mut stsz = Vec::with_capacity(20);
        full_header(&mut stsz, 20 + 4 * n, b"stsz", 0, 0);
        u32b(&mut stsz, 0); // every frame has its own size
        u32b(&mut stsz, n as u32);
        let f = self.siblings;
        let mut tail = Vec::with_capacity((32 + 20 * f) as usize);
        full_header(&mut tail, 16 + 12 * f, b"stsc", 0, 0);
        u32b(&mut tail, f as u32);
        for (i, s) in a.segments.iter().enumerate() {
            u32b(&mut tail, i as u32 + 1);
            u32b(&mut tail, s.frames as u32);
            u32b(&mut tail, 1);
        }
        full_header(&mut tail, 16 + 8 * f, b"co64", 0, 0);
        u32b(&mut tail, f as u32);
        for o in offsets {
            u64b(&mut tail, *o);
        }
        vec![
            Part::Bytes(head),
            Part::AudioTable(AudioTable::Stts),
            Part::Bytes(stsz),
            Part::AudioTable(AudioTable::Stsz),
            Part::Bytes(tail),
        ]
    }
}

#[cfg(test)]
mod tests;
