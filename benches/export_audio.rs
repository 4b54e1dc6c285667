//! What the sound track costs an MP4 export: an hour of footage (15 fps, a keyframe a
//! second, ~0.6 Mbit/s, in 60 one-minute chunks) with 128 kbit/s AAC-sized audio (48 kHz,
//! 1024-sample frames) beside it, exported with and without its audio, run alternately.
//! Reported: planning time (the first request, which counts every sibling's frames, and a
//! later one, which finds the counts cached), time to the first `mdat` byte (the `moov`,
//! whose tables are generated from the files), time to read the whole file, and sizes; each
//! as the ratio audio / video only. The files are fresh in the page cache (a Pi reading
//! from an SD card is slower in both columns).
//!
//!     cargo bench --bench export_audio
//!
//! In test mode (`cargo test --benches`) it runs on 2 minutes.

use edgenvr::chunk::writer::{ChunkWriter, WriterContext};
use edgenvr::config::{FreeSpace, StorageConfig};
use edgenvr::export::mp4::Mp4File;
use edgenvr::export::plan::make_plan;
use edgenvr::export::VirtualFile;
use edgenvr::index::Index;
use edgenvr::media::audio::{AudioCodec, AudioFrame, AudioParams};
use edgenvr::media::frame::EncodedFrame;
use edgenvr::media::h26x::Codec;
use edgenvr::storage::Storage;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

/// 2026-11-21T14:00:00Z.
const T0: i64 = 1_795_269_600_000_000;

fn minutes() -> i64 {
    if std::env::args().any(|a| a == "--bench") {
        60
    } else {
        2
    }
}

/// Writes `minutes` of video and audio to a fresh root in `dir`.
fn record(dir: &std::path::Path, minutes: i64) -> (Arc<Index>, Arc<Storage>) {
    let index = Arc::new(Index::open_in_memory().unwrap());
    let cfg = StorageConfig {
        path: dir.to_owned(),
        min_free: FreeSpace::Bytes(0),
        max_bytes: None,
        events_reserve: None,
        require_mount: false,
    };
    let storage = Arc::new(Storage::open(&[cfg], &index).unwrap());
    let ctx = WriterContext {
        storage: storage.clone(),
        index: index.clone(),
        on_space_pressure: Arc::new(|| {}),
        sync_interval: Duration::from_secs(3600),
    };
    let mut w = ChunkWriter::new("cam", Codec::H264, ctx, Arc::default());
    let params = common::openh264_parameter_sets();
    let audio =
        Arc::new(AudioParams { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 1, config: vec![0x11, 0x88] });
    let (frame_us, audio_us) = (66_667i64, 21_333i64);
    let end = T0 + minutes * 60_000_000;
    let (mut v, mut a) = (0i64, 0i64);
    while T0 + v * frame_us < end {
        let ts = T0 + v * frame_us;
        let mut f = EncodedFrame::new(ts, Codec::H264);
        let key = v % 15 == 0;
        if key {
            params.iter().for_each(|p| f.push_nal(p));
        }
        let mut slice = vec![if key { 0x65 } else { 0x41 }; if key { 30_000 } else { 3_000 }];
        slice[1..].iter_mut().enumerate().for_each(|(j, b)| *b = (j * 7 + v as usize) as u8);
        f.push_nal(&slice);
        w.write_frame(&f);
        while T0 + a * audio_us < ts + frame_us {
            let data = vec![(a % 251) as u8; 340];
            w.write_audio(&AudioFrame { ts_us: T0 + a * audio_us + 1, params: audio.clone(), data });
            a += 1;
        }
        v += 1;
    }
    w.close();
    (index, storage)
}

/// Seconds taken by `f`, and its result.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

fn read(mp4: &Mp4File, start: u64, end: u64) -> u64 {
    let mut r = mp4.reader(start, end);
    let mut buf = vec![0; 1 << 16];
    let mut n = 0;
    loop {
        match r.read(&mut buf).unwrap() {
            0 => return n,
            k => n += k as u64,
        }
    }
}

/// The `mdat` payload's first byte (the end of `moov` plus its 16-byte header).
fn payload_start(mp4: &Mp4File) -> u64 {
    let mut head = vec![0; 40];
    mp4.reader(0, 40).read_exact(&mut head).unwrap();
    32 + u32::from_be_bytes(head[32..36].try_into().unwrap()) as u64 + 16
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let m = minutes();
    let (index, storage) = record(dir.path(), m);
    let (from, to) = (T0, T0 + m * 60_000_000);
    // (plan first, plan again, moov, whole file, length), per variant; best of 3 rounds.
    let mut best = [[f64::MAX; 4]; 2];
    let mut len = [0u64; 2];
    for round in 0..3 {
        for (i, audio) in [false, true].into_iter().enumerate() {
            let plan = || {
                let p = make_plan(index.as_ref(), &storage, "cam", from, to).unwrap();
                if audio {
                    p.with_audio()
                } else {
                    p
                }
            };
            // The first request of round 0 is the one that counts the siblings.
            let (first, p) = timed(plan);
            assert_eq!(p.audio.is_some(), audio);
            let (again, p) = timed(plan);
            let mp4 = Mp4File::new(p).unwrap();
            let (moov, _) = timed(|| read(&mp4, 0, payload_start(&mp4)));
            let (whole, n) = timed(|| read(&mp4, 0, mp4.len()));
            assert_eq!(n, mp4.len());
            len[i] = n;
            let first = if round == 0 { first } else { best[i][0] };
            best[i] = [first, best[i][1].min(again), best[i][2].min(moov), best[i][3].min(whole)];
        }
    }
    println!("{m} minutes of footage, 60 chunks an hour; seconds (best of 3), ratio audio / video only");
    println!("| | video only | with audio | ratio |");
    println!("|---|---|---|---|");
    let names = ["plan, first request", "plan, later requests", "time to first mdat byte", "whole file read"];
    for (k, name) in names.iter().enumerate() {
        let (a, b) = (best[0][k], best[1][k]);
        println!("| {name} | {a:.4} | {b:.4} | {:.2} |", b / a);
    }
    println!(
        "| file size (MB) | {:.1} | {:.1} | {:.3} |",
        len[0] as f64 / 1e6,
        len[1] as f64 / 1e6,
        len[1] as f64 / len[0] as f64
    );
}
