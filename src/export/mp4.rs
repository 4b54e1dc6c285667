//! An ISO BMFF (`.mp4`) file of a [`Plan`], `moov` first, made on the fly.
//!
//! ```text
//! ftyp
//! moov ─ mvhd
//!      └ trak ─ tkhd, edts/elst (playback starts at `from`)
//!             └ mdia ─ mdhd, hdlr
//!                    └ minf ─ vmhd, dinf/dref
//!                           └ stbl ─ stsd/avc1/avcC
//!                                  ├ stts  one entry per sample   ┐
//!                                  ├ ctts  one entry per sample   │ generated while
//!                                  ├ stss  one entry per keyframe │ reading, from the
//!                                  ├ stsz  one entry per sample   ┘ chunk files
//!                                  ├ stsc  one entry per chunk file
//!                                  └ co64  one entry per chunk file
//!      └ udta ─ ©nam (title: camera and range), chpl (a chapter per event; export::chapters)
//! mdat (64-bit size) ─ each chunk file's records, 17-byte headers → 4-byte lengths
//! ```
//!
//! Every size follows from the plan's counts (samples, keyframes, records, files), so the
//! total length is known before a byte is produced. Timescale 90 kHz; each sample lasts
//! until the next one's real timestamp, so gaps stay gaps (the frame before a gap is held)
//! and the timeline matches the wall clock. Samples are in decode order; `stts` holds
//! decode times (each segment's presentation times sorted, see `super::samples`) and
//! `ctts` (version 1, signed) each sample's presentation time less its decode time, so
//! B-frame footage is presented at its recorded times (zero offsets without B-frames; the
//! edit list and durations are in presentation time). Version-1 (64-bit) time fields, since a day
//! at 90 kHz overflows 32 bits. Parameter sets stay in-band as well as in `avcC`, so a
//! mid-export change of resolution still decodes. See `docs/design/export.md`.

pub use super::boxes::TIMESCALE;
use super::boxes::{
    box_header, dinf, full_header, hdlr, matrix, mdhd, tkhd, u16b, u32b, u64b, TrackHeader, DINF_LEN, HDLR_LEN,
    MDHD_LEN, TKHD_LEN,
};
use super::plan::Plan;
use super::sound::SoundTrack;
use super::stream::{Layout, Part, PartReader, Table, Timing};
use super::VirtualFile;
use crate::error::Result;
use crate::media::h26x::Codec;
use crate::{bail, err};
use h264_reader::nal::sps::SpsError;

/// An MP4 export.
pub struct Mp4File {
    layout: std::sync::Arc<Layout>,
    etag: String,
}

/// Picture size from the SPS (h264-reader parses it; retina uses the same crate).
fn dimensions(sps: &[u8]) -> Result<(u32, u32)> {
    use h264_reader::nal::Nal;
    let nal = h264_reader::nal::RefNal::new(sps, &[], true);
    let parsed = h264_reader::nal::sps::SeqParameterSet::from_bits(nal.rbsp_bits())
        .map_err(|e| err!(DataLoss, "cannot parse the SPS: {}", sps_problem(&e)))?;
    let (w, h) = parsed.pixel_dimensions().map_err(|e| err!(DataLoss, "bad SPS dimensions: {}", sps_problem(&e)))?;
    // A damaged SPS can say 0 (found by the fuzz target): no player shows that.
    if !(1..=16_384).contains(&w) || !(1..=16_384).contains(&h) {
        bail!(DataLoss, "the SPS says the picture is {w}x{h}");
    }
    Ok((w, h))
}

/// What is wrong with an H.264 SPS, in words (h264-reader's errors have only `Debug`).
fn sps_problem(e: &SpsError) -> String {
    use h264_reader::nal::sps::{PicOrderCntError, ScalingMatrixError};
    match e {
        SpsError::RbspReaderError(e)
        | SpsError::PicOrderCnt(PicOrderCntError::ReaderError(e))
        | SpsError::ScalingMatrix(ScalingMatrixError::ReaderError(e)) => super::hvcc::bit_reader_problem(e),
        SpsError::BitDepthOutOfRange(v) => format!("bit_depth_luma_minus8 = {v} is out of range"),
        SpsError::PicOrderCnt(_) => "its picture order count fields are out of range".to_owned(),
        SpsError::ScalingMatrix(_) => "its scaling matrix is out of range".to_owned(),
        SpsError::Log2MaxFrameNumMinus4OutOfRange(v) => format!("log2_max_frame_num_minus4 = {v} is out of range"),
        SpsError::BadSeqParamSetId(_) | SpsError::UnknownSeqParamSetId(_) => {
            "its seq_parameter_set_id is out of range".to_owned()
        }
        SpsError::FieldValueTooLarge { name, value } => format!("{name} = {value} is too large"),
        SpsError::FieldValueTooSmall { name, value } => format!("{name} = {value} is too small"),
        SpsError::CroppingError(_) => "its cropping window is larger than the picture".to_owned(),
        SpsError::CpbCountOutOfRange(v) => format!("cpb_cnt_minus1 = {v} is out of range"),
    }
}

/// The `avcC` box of an H.264 stream.
fn avcc_box(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut avcc = Vec::new();
    u32b(&mut avcc, 8 + 6 + 2 + sps.len() as u32 + 1 + 2 + pps.len() as u32);
    avcc.extend_from_slice(b"avcC");
    avcc.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
    u16b(&mut avcc, sps.len() as u16);
    avcc.extend_from_slice(sps);
    avcc.push(1);
    u16b(&mut avcc, pps.len() as u16);
    avcc.extend_from_slice(pps);
    avcc
}

/// The sample entry's type, picture size and decoder configuration box (`avcC`/`hvcC`) of a
/// stream with these parameter sets (NAL units without start codes; `vps` for H.265). Shared
/// by the export and the live view's fMP4 (live::fmp4).
pub(crate) fn sample_entry(
    codec: Codec,
    sps: &[u8],
    pps: &[u8],
    vps: Option<&[u8]>,
) -> Result<(&'static [u8; 4], u32, u32, Vec<u8>)> {
    match codec {
        Codec::H264 => {
            // avcC stores each length in 16 bits and copies three SPS bytes.
            let fits = |n: &[u8], min| (min..=u16::MAX as usize).contains(&n.len());
            if !fits(sps, 4) || !fits(pps, 1) {
                bail!(DataLoss, "SPS of {} bytes or PPS of {} bytes cannot go in an MP4", sps.len(), pps.len());
            }
            let (width, height) = dimensions(sps)?;
            Ok((b"avc1", width, height, avcc_box(sps, pps)))
        }
        Codec::H265 => {
            let vps = vps.ok_or_else(|| err!(DataLoss, "no H.265 VPS"))?;
            let parsed = super::hvcc::HevcSps::parse(sps)?;
            let hvcc = super::hvcc::hvcc_box(&parsed, vps, sps, pps)?;
            Ok((b"hvc1", parsed.width, parsed.height, hvcc))
        }
    }
}

/// `stsd` with one visual sample entry of type `kind` holding `config` (`avcC`/`hvcC`).
pub(crate) fn stsd(kind: &[u8; 4], width: u32, height: u32, config: &[u8]) -> Vec<u8> {
    let entry_len = 8 + 78 + config.len() as u64;
    let stsd_len = 16 + entry_len;
    let mut out = Vec::with_capacity(stsd_len as usize);
    full_header(&mut out, stsd_len, b"stsd", 0, 0);
    u32b(&mut out, 1);
    box_header(&mut out, entry_len, kind);
    out.extend_from_slice(&[0; 6]);
    u16b(&mut out, 1); // data_reference_index
    out.extend_from_slice(&[0; 16]);
    u16b(&mut out, width as u16);
    u16b(&mut out, height as u16);
    u32b(&mut out, 0x0048_0000); // 72 dpi
    u32b(&mut out, 0x0048_0000);
    u32b(&mut out, 0);
    u16b(&mut out, 1); // frame_count
    out.extend_from_slice(&[0; 32]); // compressorname
    u16b(&mut out, 0x0018); // depth
    u16b(&mut out, 0xffff); // pre_defined = -1
    out.extend_from_slice(config);
    out
}

/// Box lengths of the `moov`, from the plan's counts: samples `n`, keyframes `k`, chunk
/// files `f`, and the length of the `stsd`.
struct Lengths {
    stts: u64,
    ctts: u64,
    stss: u64,
    stsz: u64,
    stsc: u64,
    co64: u64,
    stbl: u64,
    minf: u64,
    mdia: u64,
    trak: u64,
    moov: u64,
}

// Lengths of the boxes whose size never changes.
const FTYP_LEN: u64 = 32;
const MVHD_LEN: u64 = 120;
const EDTS_LEN: u64 = 44;
const VMHD_LEN: u64 = 20;

impl Lengths {
    /// `rest`: what else the `moov` holds (the sound track, `udta`).
    fn new(n: u64, k: u64, f: u64, stsd_len: u64, rest: u64) -> Lengths {
        let (stts, stss, stsz, stsc, co64) = (16 + 8 * n, 16 + 4 * k, 20 + 4 * n, 16 + 12 * f, 16 + 8 * f);
        let ctts = 16 + 8 * n;
        let stbl = 8 + stsd_len + stts + ctts + stss + stsz + stsc + co64;
        let minf = 8 + VMHD_LEN + DINF_LEN + stbl;
        let mdia = 8 + MDHD_LEN + HDLR_LEN + minf;
        let trak = 8 + TKHD_LEN + EDTS_LEN + mdia;
        let moov = 8 + MVHD_LEN + trak + rest;
        Lengths { stts, ctts, stss, stsz, stsc, co64, stbl, minf, mdia, trak, moov }
    }
}

/// The movie's times in [`TIMESCALE`] ticks.
struct Times {
    /// The whole media, to the end of the last sample.
    media_duration: u64,
    /// Where playback starts in the media (the edit list's `media_time`: `from`).
    media_time: u64,
    /// How long playback lasts (to `to`).
    duration: u64,
}

impl Times {
    fn new(plan: &Plan, timing: &Timing) -> Times {
        let media_duration = timing.ticks(plan.last_ts()) + timing.last_duration as u64;
        let media_time =
            if plan.from_us > timing.base_us { timing.ticks(plan.from_us).min(media_duration - 1) } else { 0 };
        let play_end = timing.ticks(plan.to_us).min(media_duration).max(media_time + 1);
        Times { media_duration, media_time, duration: play_end - media_time }
    }
}

/// `ftyp`, then `moov` with `mvhd` (`tracks`: how many follow), up to the `trak` header.
fn write_movie_header(out: &mut Vec<u8>, len: &Lengths, times: &Times, tracks: u32) {
    box_header(out, FTYP_LEN, b"ftyp");
    out.extend_from_slice(b"isom");
    u32b(out, 0x200);
    out.extend_from_slice(b"isomiso2avc1mp41");
    box_header(out, len.moov, b"moov");
    full_header(out, MVHD_LEN, b"mvhd", 1, 0);
    u64b(out, 0); // creation
    u64b(out, 0); // modification
    u32b(out, TIMESCALE);
    u64b(out, times.duration);
    u32b(out, 0x0001_0000); // rate 1.0
    u16b(out, 0x0100); // volume 1.0
    out.extend_from_slice(&[0; 10]);
    matrix(out);
    out.extend_from_slice(&[0; 24]);
    u32b(out, tracks + 1); // next_track_ID
}

/// `trak` with `tkhd` and `edts/elst` (playback starts at `from`), up to the `mdia` header.
fn write_track_header(out: &mut Vec<u8>, len: &Lengths, times: &Times, width: u32, height: u32) {
    box_header(out, len.trak, b"trak");
    tkhd(out, &TrackHeader { id: 1, duration: times.duration, alternate_group: 0, volume: 0, width, height });
    box_header(out, EDTS_LEN, b"edts");
    full_header(out, 36, b"elst", 1, 0);
    u32b(out, 1);
    u64b(out, times.duration);
    u64b(out, times.media_time);
    u16b(out, 1); // media_rate 1.0
    u16b(out, 0);
}

/// `mdia` with `mdhd`, `hdlr`, `minf` with `vmhd` and `dinf`, up to the `stbl` header.
fn write_media_header(out: &mut Vec<u8>, len: &Lengths, times: &Times) {
    box_header(out, len.mdia, b"mdia");
    mdhd(out, TIMESCALE, times.media_duration);
    hdlr(out, b"vide", b"VideoHandler\0");
    box_header(out, len.minf, b"minf");
    full_header(out, VMHD_LEN, b"vmhd", 0, 1);
    out.extend_from_slice(&[0; 8]);
    dinf(out);
    box_header(out, len.stbl, b"stbl");
}

/// Where each video segment's bytes, and each audio segment's, start in the file: in the
/// `mdat` from `payload_start`, each chunk's audio right after its video.
fn payload_offsets(plan: &Plan, payload_start: u64) -> (Vec<u64>, Vec<u64>) {
    let (mut video, mut audio) = (Vec::with_capacity(plan.segments.len()), Vec::new());
    let mut off = payload_start;
    for (i, s) in plan.segments.iter().enumerate() {
        video.push(off);
        off += s.payload_len();
        if let Some((_, a)) = plan.audio.as_ref().and_then(|a| a.after_video(i)) {
            audio.push(off);
            off += a.payload_len();
        }
    }
    (video, audio)
}

/// The `mdat`'s payload parts: one for all the video without audio; with audio, each
/// chunk's video then its audio (interleaved a minute at a time, so a player streaming the
/// file reads forward).
fn payload_parts(plan: &Plan) -> Vec<Part> {
    let Some(a) = &plan.audio else {
        return vec![Part::Payload { start_codes: false, segments: 0..plan.segments.len() }];
    };
    let mut parts = Vec::with_capacity(plan.segments.len() + a.segments.len());
    for i in 0..plan.segments.len() {
        parts.push(Part::Payload { start_codes: false, segments: i..i + 1 });
        if let Some((j, _)) = a.after_video(i) {
            parts.push(Part::AudioPayload(j));
        }
    }
    parts
}

/// `stsc` and `co64` of the video (one entry per chunk file, at `offsets`).
fn chunk_tables(plan: &Plan, len: &Lengths, offsets: &[u64]) -> Vec<u8> {
    let f = plan.segments.len() as u32;
    let mut tail = Vec::with_capacity((len.stsc + len.co64) as usize);
    full_header(&mut tail, len.stsc, b"stsc", 0, 0);
    u32b(&mut tail, f);
    for (i, s) in plan.segments.iter().enumerate() {
        u32b(&mut tail, i as u32 + 1);
        u32b(&mut tail, s.samples as u32);
        u32b(&mut tail, 1);
    }
    full_header(&mut tail, len.co64, b"co64", 0, 0);
    u32b(&mut tail, f);
    for off in offsets {
        u64b(&mut tail, *off);
    }
    tail
}

/// `udta` (ending the `moov`), then the `mdat` header.
fn movie_tail(plan: &Plan, udta: &[u8]) -> Vec<u8> {
    let video: u64 = plan.segments.iter().map(|s| s.payload_len()).sum();
    let audio: u64 = plan.audio.as_ref().map_or(0, |a| a.segments.iter().map(|s| s.payload_len()).sum());
    let mut tail = Vec::with_capacity(udta.len() + 16);
    tail.extend_from_slice(udta);
    u32b(&mut tail, 1);
    tail.extend_from_slice(b"mdat");
    u64b(&mut tail, 16 + video + audio);
    tail
}

/// A table's header: a full box of `len` bytes holding `entries` entries (`stsz` has a
/// zero sample size first: every sample has its own; `ctts` is version 1, signed offsets).
fn table_header(kind: &[u8; 4], len: u64, entries: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    full_header(&mut out, len, kind, (kind == b"ctts") as u8, 0);
    if kind == b"stsz" {
        u32b(&mut out, 0);
    }
    u32b(&mut out, entries as u32);
    out
}

impl Mp4File {
    /// Lays out the MP4 of `plan` (with its sound track when [`Plan::with_audio`] found one).
    pub fn new(mut plan: Plan) -> Result<Mp4File> {
        let (entry, width, height, config) = sample_entry(plan.codec, &plan.sps, &plan.pps, plan.vps.as_deref())?;
        let stsd = stsd(entry, width, height, &config);
        let (n, k) = (plan.samples(), plan.keyframes());
        let timing =
            Timing { base_us: plan.first_ts(), last_duration: (plan.frame_duration_us() * 9 / 100).max(1) as u32 };
        // The presentation starts at `from`, or at the first frame when that is later.
        let origin = plan.from_us.max(timing.base_us);
        let sound = plan.audio.as_ref().and_then(|a| SoundTrack::new(a, origin));
        if sound.is_none() {
            plan.audio = None;
        }
        let title = super::chapters::title(&plan.camera, plan.from_us, plan.to_us);
        let udta = super::chapters::udta(&title, &plan.chapters, origin);
        let rest = udta.len() as u64 + sound.as_ref().map_or(0, |s| s.len());
        let len = Lengths::new(n, k, plan.segments.len() as u64, stsd.len() as u64, rest);
        if len.moov > u32::MAX as u64 {
            bail!(InvalidArgument, "export too large for one MP4; use a shorter range");
        }
        let times = Times::new(&plan, &timing);
        let mdat_payload_start = FTYP_LEN + len.moov + 16;
        let (video_offsets, audio_offsets) = payload_offsets(&plan, mdat_payload_start);

        let mut head = Vec::with_capacity(1024);
        write_movie_header(&mut head, &len, &times, 1 + sound.is_some() as u32);
        write_track_header(&mut head, &len, &times, width, height);
        write_media_header(&mut head, &len, &times);
        head.extend_from_slice(&stsd);
        head.extend_from_slice(&table_header(b"stts", len.stts, n));
        let etag = format!(
            "\"mp4-{:016x}\"",
            super::fnv1a(&[
                plan.camera.as_bytes(),
                &plan.from_us.to_be_bytes(),
                &plan.to_us.to_be_bytes(),
                &plan.segment_key(),
                &udta,
                &plan.audio.as_ref().map_or(Vec::new(), |a| a.segment_key()),
            ])
        );
        let mut parts = vec![
            Part::Bytes(head),
            Part::Table(Table::Stts),
            Part::Bytes(table_header(b"ctts", len.ctts, n)),
            Part::Table(Table::Ctts),
            Part::Bytes(table_header(b"stss", len.stss, k)),
            Part::Table(Table::Stss),
            Part::Bytes(table_header(b"stsz", len.stsz, n)),
            Part::Table(Table::Stsz),
            Part::Bytes(chunk_tables(&plan, &len, &video_offsets)),
        ];
        if let (Some(sound), Some(a)) = (&sound, &plan.audio) {
            parts.extend(sound.parts(a, &audio_offsets));
        }
        parts.push(Part::Bytes(movie_tail(&plan, &udta)));
        let payload_part = parts.len();
        parts.extend(payload_parts(&plan));
        let layout = std::sync::Arc::new(Layout::new(plan, parts, timing));
        debug_assert_eq!(layout.starts[payload_part], mdat_payload_start);
        Ok(Mp4File { layout, etag })
    }

    /// The plan behind the file.
    pub fn plan(&self) -> &Plan {
        &self.layout.plan
    }
}

impl VirtualFile for Mp4File {
    fn len(&self) -> u64 {
        self.layout.len()
    }
    fn etag(&self) -> String {
        self.etag.clone()
    }
    fn content_type(&self) -> &'static str {
        "video/mp4"
    }
    fn reader(&self, start: u64, end: u64) -> Box<dyn std::io::Read + Send> {
        Box::new(PartReader::new(self.layout.clone(), start, end))
    }
}

#[cfg(test)]
pub(crate) mod tests;
