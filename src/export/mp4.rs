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

use super::plan::Plan;
use super::stream::{Layout, Part, PartReader, Table, Timing};
use super::VirtualFile;
use crate::error::Result;
use crate::media::h26x::Codec;
use crate::{bail, err};
use h264_reader::nal::sps::SpsError;

/// The media and movie timescale.
pub const TIMESCALE: u32 = 90_000;

/// An MP4 export.
pub struct Mp4File {
    layout: std::sync::Arc<Layout>,
    etag: String,
}

/// Appends a box header (32-bit size, type). Shared with the live view's fMP4 (live::fmp4).
pub(crate) fn box_header(out: &mut Vec<u8>, size: u64, kind: &[u8; 4]) {
    out.extend_from_slice(&(u32::try_from(size).expect("box fits in 32 bits")).to_be_bytes());
    out.extend_from_slice(kind);
}

/// Appends a full box header (size, type, version, flags).
pub(crate) fn full_header(out: &mut Vec<u8>, size: u64, kind: &[u8; 4], version: u8, flags: u32) {
    box_header(out, size, kind);
    out.extend_from_slice(&((version as u32) << 24 | flags).to_be_bytes());
}

pub(crate) fn u16b(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn u32b(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub(crate) fn u64b(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity matrix of `mvhd` and `tkhd`.
pub(crate) fn matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32b(out, v);
    }
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
const TKHD_LEN: u64 = 104;
const EDTS_LEN: u64 = 44;
const MDHD_LEN: u64 = 44;
const HDLR_LEN: u64 = 45;
const VMHD_LEN: u64 = 20;
const DINF_LEN: u64 = 36;

impl Lengths {
    fn new(n: u64, k: u64, f: u64, stsd_len: u64, udta_len: u64) -> Lengths {
        let (stts, stss, stsz, stsc, co64) = (16 + 8 * n, 16 + 4 * k, 20 + 4 * n, 16 + 12 * f, 16 + 8 * f);
        let ctts = 16 + 8 * n;
        let stbl = 8 + stsd_len + stts + ctts + stss + stsz + stsc + co64;
        let minf = 8 + VMHD_LEN + DINF_LEN + stbl;
        let mdia = 8 + MDHD_LEN + HDLR_LEN + minf;
        let trak = 8 + TKHD_LEN + EDTS_LEN + mdia;
        let moov = 8 + MVHD_LEN + trak + udta_len;
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

/// `ftyp`, then `moov` with `mvhd`, up to the `trak` header.
fn write_movie_header(out: &mut Vec<u8>, len: &Lengths, times: &Times) {
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
    u32b(out, 2); // next_track_ID
}

/// `trak` with `tkhd` and `edts/elst` (playback starts at `from`), up to the `mdia` header.
fn write_track_header(out: &mut Vec<u8>, len: &Lengths, times: &Times, width: u32, height: u32) {
    box_header(out, len.trak, b"trak");
    full_header(out, TKHD_LEN, b"tkhd", 1, 3); // enabled, in movie
    u64b(out, 0);
    u64b(out, 0);
    u32b(out, 1); // track_ID
    u32b(out, 0);
    u64b(out, times.duration);
    out.extend_from_slice(&[0; 8]);
    u16b(out, 0); // layer
    u16b(out, 0); // alternate_group
    u16b(out, 0); // volume
    u16b(out, 0);
    matrix(out);
    u32b(out, width << 16);
    u32b(out, height << 16);
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
    full_header(out, MDHD_LEN, b"mdhd", 1, 0);
    u64b(out, 0);
    u64b(out, 0);
    u32b(out, TIMESCALE);
    u64b(out, times.media_duration);
    u16b(out, 0x55c4); // language "und"
    u16b(out, 0);
    full_header(out, HDLR_LEN, b"hdlr", 0, 0);
    u32b(out, 0);
    out.extend_from_slice(b"vide");
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(b"VideoHandler\0");
    box_header(out, len.minf, b"minf");
    full_header(out, VMHD_LEN, b"vmhd", 0, 1);
    out.extend_from_slice(&[0; 8]);
    box_header(out, DINF_LEN, b"dinf");
    full_header(out, 28, b"dref", 0, 0);
    u32b(out, 1);
    full_header(out, 12, b"url ", 0, 1); // self-contained
    box_header(out, len.stbl, b"stbl");
}

/// `stsc` and `co64` (one entry per chunk file, whose payload starts at `payload_start`),
/// then `udta` (ending the `moov`), then the `mdat` header.
fn chunk_tables(plan: &Plan, len: &Lengths, payload_start: u64, udta: &[u8]) -> Vec<u8> {
    let f = plan.segments.len() as u32;
    let mut tail = Vec::with_capacity((len.stsc + len.co64 + 16) as usize);
    full_header(&mut tail, len.stsc, b"stsc", 0, 0);
    u32b(&mut tail, f);
    for (i, s) in plan.segments.iter().enumerate() {
        u32b(&mut tail, i as u32 + 1);
        u32b(&mut tail, s.samples as u32);
        u32b(&mut tail, 1);
    }
    full_header(&mut tail, len.co64, b"co64", 0, 0);
    u32b(&mut tail, f);
    let mut off = payload_start;
    for s in &plan.segments {
        u64b(&mut tail, off);
        off += s.payload_len();
    }
    let payload: u64 = plan.segments.iter().map(|s| s.payload_len()).sum();
    tail.extend_from_slice(udta);
    u32b(&mut tail, 1);
    tail.extend_from_slice(b"mdat");
    u64b(&mut tail, 16 + payload);
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
    /// Lays out the MP4 of `plan`.
    pub fn new(plan: Plan) -> Result<Mp4File> {
        let (entry, width, height, config) = sample_entry(plan.codec, &plan.sps, &plan.pps, plan.vps.as_deref())?;
        let stsd = stsd(entry, width, height, &config);
        let (n, k) = (plan.samples(), plan.keyframes());
        let timing =
            Timing { base_us: plan.first_ts(), last_duration: (plan.frame_duration_us() * 9 / 100).max(1) as u32 };
        // The presentation starts at `from`, or at the first frame when that is later.
        let origin = plan.from_us.max(timing.base_us);
        let title = super::chapters::title(&plan.camera, plan.from_us, plan.to_us);
        let udta = super::chapters::udta(&title, &plan.chapters, origin);
        let len = Lengths::new(n, k, plan.segments.len() as u64, stsd.len() as u64, udta.len() as u64);
        if len.moov > u32::MAX as u64 {
            bail!(InvalidArgument, "export too large for one MP4; use a shorter range");
        }
        let times = Times::new(&plan, &timing);
        let mdat_payload_start = FTYP_LEN + len.moov + 16;

        let mut head = Vec::with_capacity(1024);
        write_movie_header(&mut head, &len, &times);
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
            ])
        );
        let parts = vec![
            Part::Bytes(head),
            Part::Table(Table::Stts),
            Part::Bytes(table_header(b"ctts", len.ctts, n)),
            Part::Table(Table::Ctts),
            Part::Bytes(table_header(b"stss", len.stss, k)),
            Part::Table(Table::Stss),
            Part::Bytes(table_header(b"stsz", len.stsz, n)),
            Part::Table(Table::Stsz),
            Part::Bytes(chunk_tables(&plan, &len, mdat_payload_start, &udta)),
            Part::Payload { start_codes: false },
        ];
        let layout = std::sync::Arc::new(Layout::new(plan, parts, timing));
        debug_assert_eq!(layout.starts[9], mdat_payload_start);
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
pub(crate) mod tests {
    use super::*;
    use crate::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
    use crate::encode::yuv::I420;
    use crate::error::ErrorKind;
    use crate::export::plan::make_plan;
    use crate::index::Index;
    use crate::storage::Storage;
    use std::io::{Read, Write};
    use std::sync::Arc;

    /// 2026-11-21T14:56:50Z: the recording crosses a minute boundary after 10 s.
    pub(crate) const T0: i64 = 1_795_273_010_000_000;

    /// Records 25 s of real openh264 video at 10 fps (keyframe every 10 frames) with a 3 s
    /// pause at 12 s, through the real chunk writer.
    pub(crate) fn record(dir: &std::path::Path) -> (Index, Storage) {
        let (mut w, index, storage) = crate::testutil::writer_fixture(dir);
        let mut enc =
            SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
        let mut pic = I420::new(64, 48);
        let mut seed = 7;
        for i in 0..250i64 {
            if (120..150).contains(&i) {
                continue;
            }
            crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
            if i == 150 {
                enc.force_keyframe();
            }
            let f = enc.encode(&pic, T0 + i * 100_000).unwrap().unwrap();
            w.write_frame(&f);
        }
        w.close();
        drop(w);
        (Arc::try_unwrap(index).ok().unwrap(), Arc::try_unwrap(storage).ok().unwrap())
    }

    pub(crate) fn read_all(f: &dyn VirtualFile, start: u64, end: u64) -> Vec<u8> {
        let mut v = Vec::new();
        f.reader(start, end).read_to_end(&mut v).unwrap();
        v
    }

    /// (kind, offset, size) of every box, descending into containers.
    fn boxes(data: &[u8], base: usize, out: &mut Vec<([u8; 4], usize, usize)>) {
        let mut pos = 0;
        while pos + 8 <= data.len() {
            let mut size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
            let mut header = 8;
            if size == 1 {
                size = u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()) as usize;
                header = 16;
            }
            assert!(
                size >= header && pos + size <= data.len(),
                "box {} overruns its parent",
                String::from_utf8_lossy(&kind)
            );
            out.push((kind, base + pos, size));
            if matches!(&kind, b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" | b"dinf") {
                boxes(&data[pos + header..pos + size], base + pos + header, out);
            }
            pos += size;
        }
        assert_eq!(pos, data.len(), "boxes fill their parent exactly");
    }

    /// Events in the range become chapters ffprobe reads at their times on the export's
    /// timeline (which starts at `from`), and the title names camera and range.
    #[test]
    fn events_are_chapters_at_their_times_and_the_title_names_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let (index, storage) = record(dir.path());
        let ev = |label, start: i64, end: Option<i64>| crate::index::events::NewEvent {
            camera: "cam",
            label,
            source: "api",
            start_us: T0 + start,
            end_us: end.map(|e| T0 + e),
            pre_us: 0,
            post_us: 0,
            note: None,
        };
        index.insert_event(&ev("early", 500_000, Some(2_000_000))).unwrap();
        index.insert_event(&ev("door", 3_000_000, Some(5_000_000))).unwrap();
        index.insert_event(&ev("motion", 15_000_000, None)).unwrap();
        index.insert_event(&ev("later", 21_000_000, Some(22_000_000))).unwrap();
        let (from, to) = (T0 + 1_050_000, T0 + 20_000_000);
        let mp4 = Mp4File::new(make_plan(&index, &storage, "cam", from, to).unwrap()).unwrap();
        let path = dir.path().join("x.mp4");
        std::fs::write(&path, read_all(&mp4, 0, mp4.len())).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_chapters", "-show_format", "-of", "json"])
            .arg(&path)
            .output()
            .expect("ffprobe");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let chapters: Vec<(f64, String)> = v["chapters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["start_time"].as_str().unwrap().parse().unwrap(), c["tags"]["title"].as_str().unwrap().into()))
            .collect();
        let starts: Vec<f64> = chapters.iter().map(|c| c.0).collect();
        assert_eq!(starts, [0.0, 1.95, 13.95], "{chapters:?}");
        assert!(chapters[1].1.starts_with("door (event 2"), "{chapters:?}");
        let title = v["format"]["tags"]["title"].as_str().unwrap();
        assert_eq!(title, "cam 2026-11-21T14:56:51.050Z to 2026-11-21T14:57:10.000Z");
    }

    #[test]
    fn export_is_well_formed_and_every_range_matches_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (index, storage) = record(dir.path());
        let from = T0 + 1_050_000;
        let to = T0 + 20_000_000;
        let plan = make_plan(&index, &storage, "cam", from, to).unwrap();
        assert!(plan.segments.len() >= 3, "minute boundary and pause split the export: {:?}", plan.segments.len());
        let samples = plan.samples();
        let keys = plan.keyframes();
        let mp4 = Mp4File::new(plan).unwrap();
        let full = read_all(&mp4, 0, mp4.len());
        assert_eq!(full.len() as u64, mp4.len(), "the announced length is the produced length");

        let mut b = Vec::new();
        boxes(&full, 0, &mut b);
        let find = |k: &[u8; 4]| {
            b.iter().find(|x| &x.0 == k).copied().unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(k)))
        };
        let top: Vec<&[u8; 4]> =
            b.iter().filter(|x| [b"ftyp", b"moov", b"mdat"].contains(&&x.0)).map(|x| &x.0).collect();
        assert_eq!(top, [b"ftyp", b"moov", b"mdat"], "moov comes before mdat");
        let u32_at = |o: usize| u32::from_be_bytes(full[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_be_bytes(full[o..o + 8].try_into().unwrap());
        // Sample counts.
        let stsz = find(b"stsz");
        assert_eq!(u32_at(stsz.1 + 16) as u64, samples);
        let stss = find(b"stss");
        assert_eq!(u32_at(stss.1 + 12) as u64, keys);
        assert_eq!(u32_at(stss.1 + 16), 1, "the first sample is a keyframe");
        // Durations: the stts total is the media duration in mdhd, and every delta is
        // ~100 ms except the 3 s pause, kept as a gap.
        let stts = find(b"stts");
        let n = u32_at(stts.1 + 12) as usize;
        let deltas: Vec<u32> = (0..n).map(|i| u32_at(stts.1 + 20 + 8 * i)).collect();
        assert!(deltas.iter().filter(|&&d| d == 9000).count() >= n - 4, "{deltas:?}");
        assert!(deltas.iter().any(|&d| d > 90_000 * 3), "the pause is kept as a gap");
        let mdhd = find(b"mdhd");
        assert_eq!(u64_at(mdhd.1 + 32), deltas.iter().map(|&d| d as u64).sum::<u64>());
        // The edit list starts playback at `from` and lasts to `to`.
        let elst = find(b"elst");
        let (seg_dur, media_time) = (u64_at(elst.1 + 16), u64_at(elst.1 + 24));
        assert_eq!(seg_dur, ((to - from) * 9 / 100) as u64);
        assert_eq!(media_time, 4500, "from is 50 ms after the keyframe at or before it");
        // Chunk offsets point at sample data: a 4-byte length, then an SPS.
        let co64 = find(b"co64");
        let mdat = find(b"mdat");
        for i in 0..u32_at(co64.1 + 12) as usize {
            let off = u64_at(co64.1 + 16 + 8 * i) as usize;
            assert!(off >= mdat.1 + 16 && off < mdat.1 + mdat.2);
            assert_eq!(Codec::H264.classify(&full[off + 4..off + 6]), crate::media::h26x::NalKind::Sps, "segment {i}");
        }
        // Sample sizes add up to the mdat payload.
        let sizes: u64 = (0..samples as usize).map(|i| u32_at(stsz.1 + 20 + 4 * i) as u64).sum();
        assert_eq!(sizes, (mdat.2 - 16) as u64);

        // Any byte range equals the same slice of the whole file.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = x % mp4.len();
            let len = if i % 3 == 0 { x % 64 + 1 } else { x % 20_000 + 1 };
            let e = (a + len).min(mp4.len());
            assert_eq!(read_all(&mp4, a, e), full[a as usize..e as usize], "range {a}..{e}");
        }
    }

    /// ffmpeg decodes `data` as an MP4 without a single error; returns the frames shown.
    fn ffmpeg_frames(data: &[u8], dir: &std::path::Path) -> u64 {
        let f = dir.join("export.mp4");
        std::fs::write(&f, data).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(&f)
            .output()
            .expect("ffprobe runs");
        assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    #[test]
    fn the_chunk_being_written_is_exported_up_to_its_last_whole_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, index, storage) = crate::testutil::writer_fixture_syncing(dir.path(), std::time::Duration::ZERO);
        let mut enc =
            SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
        let mut pic = I420::new(64, 48);
        let mut seed = 7;
        let mut record = |w: &mut crate::chunk::writer::ChunkWriter, frames: std::ops::Range<i64>| {
            for i in frames {
                crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
                w.write_frame(&enc.encode(&pic, T0 + i * 100_000).unwrap().unwrap());
            }
        };
        // 15 s from :50: frames 0-99 sealed at the minute, 100-149 in the open chunk.
        record(&mut w, 0..150);
        let (open_id, _) = w.open_chunk().unwrap();
        assert_eq!(index.chunk(open_id).unwrap().unwrap().state, crate::index::ChunkState::Open);
        let (from, to) = (T0 + 5_000_000, T0 + 60_000_000);
        let plan = make_plan(&index, &storage, "cam", from, to).unwrap();
        // From the keyframe at 5 s: 50 sealed frames, then the open chunk's 50 less the last
        // (its group is not yet known to be whole).
        assert_eq!((plan.samples(), plan.segments.len()), (99, 2));
        assert_eq!(plan.last_ts(), T0 + 148 * 100_000);
        let before = Mp4File::new(plan).unwrap();
        let snapshot = read_all(&before, 0, before.len());
        assert_eq!(ffmpeg_frames(&snapshot, dir.path()), 99);

        // The file grows, and a torn record sits at its end (a write in progress): a new
        // export sees the new frames; the first one still reads exactly as it was planned.
        record(&mut w, 150..160);
        let path = dir.path().join(w.open_chunk().unwrap().1);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[0, 0, 0, 1]).unwrap();
        let after = Mp4File::new(make_plan(&index, &storage, "cam", from, to).unwrap()).unwrap();
        assert_eq!(after.plan().samples(), 109);
        assert_ne!(after.etag(), before.etag());
        assert_eq!(read_all(&before, 0, before.len()), snapshot);
        assert_eq!(ffmpeg_frames(&read_all(&after, 0, after.len()), dir.path()), 109);

        // Only the open chunk, starting mid-GOP: from the keyframe at or before `from`.
        let plan = make_plan(&index, &storage, "cam", T0 + 12_340_000, to).unwrap();
        assert_eq!(plan.segments.len(), 1);
        assert_eq!((plan.first_ts(), plan.samples()), (T0 + 12_000_000, 39));

        // The open chunk's file is gone (its disk was yanked): the sealed footage still exports.
        std::fs::rename(&path, dir.path().join("yanked")).unwrap();
        let plan = make_plan(&index, &storage, "cam", from, to).unwrap();
        assert_eq!((plan.segments.len(), plan.samples()), (1, 50));
        drop(w);
    }

    /// B-frame footage (H.264 and H.265, IBBP in decode order, stamped with presentation
    /// times) recorded across a minute boundary exports with decode times and signed `ctts`:
    /// ffmpeg decodes it without a warning, and every frame is presented at its recorded
    /// time, in order. On main the samples were timed in decode order (no `ctts`), so
    /// presentation times came out shuffled.
    #[test]
    fn b_frame_footage_is_presented_at_its_recorded_times() {
        for codec in [Codec::H264, Codec::H265] {
            let dir = tempfile::tempdir().unwrap();
            let (mut w, index, storage) = crate::testutil::writer_fixture(dir.path());
            let frames = crate::testutil::bframe_frames(dir.path(), codec, 25, 16, T0);
            assert!(frames.windows(2).any(|f| f[1].ts_us < f[0].ts_us), "the stream has B-frames");
            for f in &frames {
                w.write_frame(f);
            }
            w.close();
            let rows = index.chunks_for_camera("cam", T0, T0 + 60_000_000).unwrap();
            // Rotation at the first keyframe after the minute (10 s in); nothing dropped;
            // each row ends at its latest frame, not its last stored one.
            assert_eq!(rows.len(), 2, "{codec:?}");
            assert_eq!(rows[1].start_us, T0 + 10_000_000);
            assert_eq!(rows[0].end_us, T0 + 10_000_000 - 40_000);
            assert_eq!(rows[0].frames + rows[1].frames, 400);
            let plan = make_plan(&index, &storage, "cam", T0, T0 + 60_000_000).unwrap();
            let mp4 = Mp4File::new(plan).unwrap();
            let data = read_all(&mp4, 0, mp4.len());
            let mut b = Vec::new();
            boxes(&data, 0, &mut b);
            let ctts = b.iter().find(|x| &x.0 == b"ctts").unwrap();
            assert_eq!(data[ctts.1 + 8], 1, "ctts version 1");
            let path = dir.path().join("b.mp4");
            std::fs::write(&path, &data).unwrap();
            let pts = crate::testutil::decoded_presentation_times(&path);
            assert_eq!(pts.len(), 400, "{codec:?}: every frame decoded");
            for (i, p) in pts.iter().enumerate() {
                assert!((p - i as f64 * 0.04).abs() < 0.002, "{codec:?}: frame {i} presented at {p} s");
            }
        }
    }

    /// Issue 11: a row with more keyframes (or frames) than its file holds passed the
    /// row's own checks and panicked the export thread, which with `panic = "abort"` ends
    /// all recording. Now the read fails with data loss and nothing panics.
    #[test]
    fn counts_the_file_does_not_hold_fail_the_read_not_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let (index, storage) = record(dir.path());
        for (keys, samples) in [(3, 0), (0, 2), (0, -2)] {
            let mut plan = make_plan(&index, &storage, "cam", T0, T0 + 30_000_000).unwrap();
            let last = plan.segments.len() - 1;
            plan.segments[last].keyframes += keys;
            plan.segments[last].samples = plan.segments[last].samples.saturating_add_signed(samples);
            let mp4 = Mp4File::new(plan).unwrap();
            let mut out = Vec::new();
            let e = mp4.reader(0, mp4.len()).read_to_end(&mut out).unwrap_err();
            assert!(e.to_string().contains("indexed"), "{keys} {samples}: {e}");
        }
    }

    /// A real H.264 SPS (openh264's, as recorded).
    fn real_sps() -> Vec<u8> {
        let mut enc =
            SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
        let f = enc.encode(&I420::new(64, 48), T0).unwrap().unwrap();
        let sps = f.nals().find(|n| Codec::H264.classify(n) == crate::media::h26x::NalKind::Sps).unwrap().to_vec();
        sps
    }

    proptest::proptest! {
        #![proptest_config(crate::testutil::fuzz_config())]
        /// Fuzz target: the H.264 SPS parse behind an MP4's picture size takes any bytes (a
        /// real SPS damaged, or random) without a panic, and a size it returns is sane.
        #[test]
        fn fuzz_h264_sps(
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
            damage in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            use_real in proptest::prelude::any::<bool>(),
        ) {
            static SPS: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
            let nal = if use_real {
                let mut n = SPS.get_or_init(real_sps).clone();
                for (at, v) in damage {
                    let i = at.index(n.len() - 1) + 1;
                    n[i] = v;
                }
                n.truncate(cut.index(n.len()) + 1);
                n
            } else {
                [&[0x67u8][..], &random].concat()
            };
            if let Ok((w, h)) = dimensions(&nal) {
                proptest::prop_assert!((1..=16_384).contains(&w) && (1..=16_384).contains(&h), "{}x{}", w, h);
            }
        }
    }

    #[test]
    fn empty_or_bad_ranges_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let (index, storage) = record(dir.path());
        let e = make_plan(&index, &storage, "cam", T0 - 100_000_000, T0 - 50_000_000).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(make_plan(&index, &storage, "cam", T0, T0).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let day = crate::export::plan::MAX_RANGE_US;
        assert_eq!(
            make_plan(&index, &storage, "cam", T0, T0 + day + 1).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(make_plan(&index, &storage, "nope", T0, T0 + 1_000_000).unwrap_err().kind(), ErrorKind::NotFound);
    }
}
