//! The machinery shared by virtual files: a file is a list of [`Part`]s laid end to end, and
//! [`PartReader`] produces any byte range of it by generating only the units (table entries,
//! records) that overlap the range. Memory: one segment's sample list and one record.

use super::audio::{self, AudioSample};
use super::plan::Plan;
use super::samples::{segment_samples, Prefix, RecordStream, Sample};
use std::io::{self, Read};
use std::sync::Arc;

/// A sample table generated from the footage, one fixed-size entry per sample (or key).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Table {
    /// `stts`: (count = 1, delta) per sample, 8 bytes.
    Stts,
    /// `ctts` version 1: (count = 1, signed composition offset) per sample, 8 bytes.
    Ctts,
    /// `stss`: 1-based number of each key sample, 4 bytes.
    Stss,
    /// `stsz`: size per sample, 4 bytes.
    Stsz,
}

impl Table {
    fn entry_len(self) -> u64 {
        match self {
            Table::Stts | Table::Ctts => 8,
            Table::Stss | Table::Stsz => 4,
        }
    }
}

/// A sound track's sample table (`super::audio`), generated while reading.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AudioTable {
    /// `stts`: (count = 1, delta) per frame, 8 bytes.
    Stts,
    /// `stsz`: size per frame, 4 bytes.
    Stsz,
}

impl AudioTable {
    fn entry_len(self) -> u64 {
        match self {
            AudioTable::Stts => 8,
            AudioTable::Stsz => 4,
        }
    }
}

/// One stretch of a virtual file.
#[derive(Clone, Debug)]
pub enum Part {
    /// Bytes known in advance (box headers, small tables).
    Bytes(Vec<u8>),
    /// A sample table, generated while reading.
    Table(Table),
    /// The footage of video segments `segments`: every record as a 4-byte length (MP4) or
    /// start code (Annex B) + NAL.
    Payload {
        /// Annex B start codes instead of lengths.
        start_codes: bool,
        /// The segments (indexes in the plan), in order.
        segments: std::ops::Range<usize>,
    },
    /// A sound track's sample table.
    AudioTable(AudioTable),
    /// The frames of one audio segment (index in the plan's audio), as they are stored.
    AudioPayload(usize),
}

/// Sample timing in the 90 kHz media timescale.
#[derive(Copy, Clone, Debug)]
pub struct Timing {
    /// Timestamp of the first sample, µs.
    pub base_us: i64,
    /// Duration given to the very last sample, in 90 kHz ticks.
    pub last_duration: u32,
}

impl Timing {
    /// A timestamp in ticks since the first sample.
    pub fn ticks(&self, ts_us: i64) -> u64 {
        ((ts_us - self.base_us).max(0) as i128 * 9 / 100) as u64
    }
}

/// The parts of a file and where each starts.
pub struct Layout {
    /// The plan the parts read from.
    pub plan: Plan,
    /// Parts in order.
    pub parts: Vec<Part>,
    /// Start offset of each part; one extra entry holds the total length.
    pub starts: Vec<u64>,
    /// Sample timing (MP4 tables).
    pub timing: Timing,
}

impl Layout {
    /// Lays `parts` end to end.
    pub fn new(plan: Plan, parts: Vec<Part>, timing: Timing) -> Layout {
        let mut starts = Vec::with_capacity(parts.len() + 1);
        let mut pos = 0;
        for p in &parts {
            starts.push(pos);
            pos += part_len(&plan, p);
        }
        starts.push(pos);
        Layout { plan, parts, starts, timing }
    }

    /// Total length.
    pub fn len(&self) -> u64 {
        *self.starts.last().expect("starts has a final entry")
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The length of a part.
pub fn part_len(plan: &Plan, p: &Part) -> u64 {
    match p {
        Part::Bytes(b) => b.len() as u64,
        Part::Table(t @ (Table::Stts | Table::Ctts | Table::Stsz)) => t.entry_len() * plan.samples(),
        Part::Table(t @ Table::Stss) => t.entry_len() * plan.keyframes(),
        Part::Payload { segments, .. } => plan.segments[segments.clone()].iter().map(|s| s.payload_len()).sum(),
        Part::AudioTable(t) => t.entry_len() * plan.audio.as_ref().map_or(0, |a| a.frames()),
        Part::AudioPayload(i) => plan.audio.as_ref().map_or(0, |a| a.segments[*i].payload_len()),
    }
}

enum Cursor {
    Bytes,
    Table { table: Table, seg: usize, samples: Vec<Sample>, i: usize, number: u64, remaining: u64 },
    Payload { seg: usize, end: usize, stream: Option<RecordStream>, start_codes: bool },
    AudioTable { table: AudioTable, seg: usize, samples: Vec<AudioSample>, i: usize, remaining: u64 },
    AudioPayload { stream: RecordStream },
}

/// Reads `start..end` of a [`Layout`].
pub struct PartReader {
    layout: Arc<Layout>,
    pos: u64,
    end: u64,
    /// The part `pos` is in, once entered.
    part: Option<usize>,
    cursor: Cursor,
    /// The unit being copied out (a table entry, a record, or a part's bytes).
    unit: Vec<u8>,
    unit_pos: usize,
}

fn to_io(e: crate::error::Error) -> io::Error {
    io::Error::other(e)
}

/// The error of footage shorter than the plan's counts (the file changed since planning).
fn short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "footage ended before its indexed length")
}

/// Segment `i`, or [`short`] past the last one.
fn segment(plan: &Plan, i: usize) -> io::Result<&super::plan::Segment> {
    plan.segments.get(i).ok_or_else(short)
}

impl PartReader {
    /// A reader of `start..end`.
    pub fn new(layout: Arc<Layout>, start: u64, end: u64) -> PartReader {
        let end = end.min(layout.len());
        PartReader {
            layout,
            pos: start.min(end),
            end,
            part: None,
            cursor: Cursor::Bytes,
            unit: Vec::new(),
            unit_pos: 0,
        }
    }

    /// Enters the (non-empty) part holding `pos`: sets up its cursor and the unit holding
    /// `pos`, with the bytes before `pos` already consumed.
    fn enter_part(&mut self) -> io::Result<()> {
        let part = self.layout.starts.partition_point(|&s| s <= self.pos) - 1;
        self.part = Some(part);
        let offset = self.pos - self.layout.starts[part];
        let layout = self.layout.clone();
        let plan = &layout.plan;
        match &layout.parts[part] {
            Part::Bytes(b) => {
                self.cursor = Cursor::Bytes;
                self.unit.clear();
                self.unit.extend_from_slice(b);
                self.unit_pos = offset as usize;
            }
            Part::Table(t) => {
                let entry = offset / t.entry_len();
                let (seg, samples, i, number) = seek_table(plan, *t, entry).map_err(to_io)?;
                let total = if *t == Table::Stss { plan.keyframes() } else { plan.samples() };
                self.cursor = Cursor::Table { table: *t, seg, samples, i, number, remaining: total - entry };
                self.next_unit()?;
                self.unit_pos = (offset % t.entry_len()) as usize;
            }
            Part::Payload { start_codes, segments } => {
                let mut seg = segments.start;
                let mut left = offset;
                while left >= segment(plan, seg)?.payload_len() {
                    left -= segment(plan, seg)?.payload_len();
                    seg += 1;
                }
                let mut stream = RecordStream::open(segment(plan, seg)?, *start_codes).map_err(to_io)?;
                left -= stream.skip_to(left).map_err(to_io)?;
                self.cursor =
                    Cursor::Payload { seg, end: segments.end, stream: Some(stream), start_codes: *start_codes };
                self.next_unit()?;
                self.unit_pos = left as usize;
            }
            Part::AudioTable(t) => {
                let track = plan.audio.as_ref().ok_or_else(short)?;
                let entry = offset / t.entry_len();
                let (mut seg, mut i) = (0, entry);
                while i >= track.segments.get(seg).ok_or_else(short)?.frames {
                    i -= track.segments[seg].frames;
                    seg += 1;
                }
                let samples = audio::segment_samples(&track.segments[seg]).map_err(to_io)?;
                let remaining = track.frames() - entry;
                self.cursor = Cursor::AudioTable { table: *t, seg, samples, i: i as usize, remaining };
                self.next_unit()?;
                self.unit_pos = (offset % t.entry_len()) as usize;
            }
            Part::AudioPayload(i) => {
                let a = &plan.audio.as_ref().ok_or_else(short)?.segments[*i];
                let mut stream =
                    RecordStream::open_range(&a.path, a.start_off, a.end_off, Prefix::None).map_err(to_io)?;
                let left = offset - stream.skip_to(offset).map_err(to_io)?;
                self.cursor = Cursor::AudioPayload { stream };
                self.next_unit()?;
                self.unit_pos = left as usize;
            }
        }
        Ok(())
    }

    /// Replaces `unit` with the next unit of the current part (empty when it has no more).
    fn next_unit(&mut self) -> io::Result<()> {
        self.unit.clear();
        self.unit_pos = 0;
        let layout = self.layout.clone();
        let plan = &layout.plan;
        let timing = layout.timing;
        match &mut self.cursor {
            Cursor::Bytes => {}
            Cursor::Table { table, seg, samples, i, number, remaining } => {
                while *remaining > 0 {
                    if *i >= samples.len() {
                        *seg += 1;
                        *samples = segment_samples(segment(plan, *seg)?, plan.codec).map_err(to_io)?;
                        *i = 0;
                    }
                    let Some(&s) = samples.get(*i) else { return Err(short()) };
                    let n = *number;
                    // The next decode time: a segment's first sample (a keyframe) is
                    // decoded at its presentation time.
                    let next_dts = samples
                        .get(*i + 1)
                        .map(|x| x.dts_us)
                        .or_else(|| plan.segments.get(*seg + 1).map(|x| x.first_ts));
                    *i += 1;
                    *number += 1;
                    match table {
                        Table::Stts => {
                            let delta = match next_dts {
                                Some(t) => (timing.ticks(t).saturating_sub(timing.ticks(s.dts_us))).max(1) as u32,
                                None => timing.last_duration,
                            };
                            self.unit.extend_from_slice(&1u32.to_be_bytes());
                            self.unit.extend_from_slice(&delta.to_be_bytes());
                        }
                        Table::Ctts => {
                            let offset = timing.ticks(s.ts_us) as i64 - timing.ticks(s.dts_us) as i64;
                            let offset = offset.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
                            self.unit.extend_from_slice(&1u32.to_be_bytes());
                            self.unit.extend_from_slice(&offset.to_be_bytes());
                        }
                        Table::Stsz => self.unit.extend_from_slice(&s.size.to_be_bytes()),
                        Table::Stss => {
                            if !s.key {
                                continue;
                            }
                            self.unit.extend_from_slice(&(n as u32).to_be_bytes());
                        }
                    }
                    *remaining -= 1;
                    break;
                }
            }
            Cursor::Payload { seg, end, stream, start_codes } => {
                while let Some(s) = stream.as_mut() {
                    if s.next_into(&mut self.unit).map_err(to_io)? {
                        break;
                    }
                    *seg += 1;
                    *stream = match plan.segments.get(*seg).filter(|_| *seg < *end) {
                        Some(x) => Some(RecordStream::open(x, *start_codes).map_err(to_io)?),
                        None => None,
                    };
                }
            }
            Cursor::AudioTable { table, seg, samples, i, remaining } => {
                if *remaining > 0 {
                    let track = plan.audio.as_ref().ok_or_else(short)?;
                    audio_entry(track, *table, seg, samples, i, &mut self.unit)?;
                    *remaining -= 1;
                }
            }
            Cursor::AudioPayload { stream } => {
                stream.next_into(&mut self.unit).map_err(to_io)?;
            }
        }
        Ok(())
    }
}

/// Appends the next entry of a sound track's table to `unit`: the frame after `i` of audio
/// segment `seg`, whose frames are `samples` (moving on to the next segment at the end).
fn audio_entry(
    track: &audio::AudioPlan,
    table: AudioTable,
    seg: &mut usize,
    samples: &mut Vec<AudioSample>,
    i: &mut usize,
    unit: &mut Vec<u8>,
) -> io::Result<()> {
    if *i >= samples.len() {
        *seg += 1;
        *samples = audio::segment_samples(track.segments.get(*seg).ok_or_else(short)?).map_err(to_io)?;
        *i = 0;
    }
    let Some(&s) = samples.get(*i) else { return Err(short()) };
    let next_ts = samples.get(*i + 1).map(|x| x.ts_us).or_else(|| track.segments.get(*seg + 1).map(|x| x.first_ts));
    *i += 1;
    match table {
        AudioTable::Stts => {
            let delta = match next_ts {
                Some(t) => track.ticks(t).saturating_sub(track.ticks(s.ts_us)).clamp(1, u32::MAX as u64) as u32,
                None => track.last_duration(),
            };
            unit.extend_from_slice(&1u32.to_be_bytes());
            unit.extend_from_slice(&delta.to_be_bytes());
        }
        AudioTable::Stsz => unit.extend_from_slice(&s.size.to_be_bytes()),
    }
    Ok(())
}

/// Finds where table entry `entry` lies: (segment, its samples, index in it, 1-based number
/// of that sample).
fn seek_table(plan: &Plan, t: Table, entry: u64) -> crate::error::Result<(usize, Vec<Sample>, usize, u64)> {
    let mut seg = 0;
    let mut left = entry;
    let mut number = 1u64;
    loop {
        let s = &plan.segments[seg];
        let count = if t == Table::Stss { s.keyframes } else { s.samples };
        if left < count || seg + 1 == plan.segments.len() {
            break;
        }
        left -= count;
        number += s.samples;
        seg += 1;
    }
    let samples = segment_samples(&plan.segments[seg], plan.codec)?;
    let i = if t == Table::Stss {
        samples.iter().enumerate().filter(|(_, s)| s.key).nth(left as usize).map_or(samples.len(), |(j, _)| j)
    } else {
        left as usize
    };
    Ok((seg, samples, i, number + i as u64))
}

impl Read for PartReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.pos < self.end {
            let Some(part) = self.part else {
                self.enter_part()?;
                continue;
            };
            if self.unit_pos >= self.unit.len() {
                if self.pos >= self.layout.starts[part + 1] {
                    self.part = None;
                    continue;
                }
                self.next_unit()?;
                if self.unit.is_empty() {
                    return Err(short());
                }
                continue;
            }
            let take = (self.unit.len() - self.unit_pos).min(buf.len() - n).min((self.end - self.pos) as usize);
            buf[n..n + take].copy_from_slice(&self.unit[self.unit_pos..self.unit_pos + take]);
            self.unit_pos += take;
            self.pos += take as u64;
            n += take;
        }
        Ok(n)
    }
}
