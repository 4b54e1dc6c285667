//! Fixtures shared by unit tests.

use crate::chunk::writer::{ChunkWriter, WriterContext};
use crate::config::{FreeSpace, StorageConfig};
use crate::index::Index;
use crate::media::h26x::Codec;
use crate::storage::Storage;
use std::sync::Arc;

/// A chunk writer for camera "cam" on one storage root at `dir`, with an in-memory index.
pub fn writer_fixture(dir: &std::path::Path) -> (ChunkWriter, Arc<Index>, Arc<Storage>) {
    writer_fixture_syncing(dir, std::time::Duration::from_secs(2))
}

/// [`writer_fixture`] with a given sync interval (zero: every frame reaches the file as it
/// is written, for tests that read the chunk being written).
pub fn writer_fixture_syncing(
    dir: &std::path::Path,
    sync_interval: std::time::Duration,
) -> (ChunkWriter, Arc<Index>, Arc<Storage>) {
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
        sync_interval,
    };
    (ChunkWriter::new("cam", Codec::H264, ctx, Arc::default()), index, storage)
}

/// `n` frames of real openh264 video (`width`x`height`, 10 fps from `t0_us`, a keyframe
/// every 10 frames), as a source would deliver them.
pub fn encoded_frames(width: usize, height: usize, t0_us: i64, n: i64) -> Vec<crate::media::frame::EncodedFrame> {
    use crate::encode::software::{SoftwareEncoder, SoftwareEncoderConfig};
    let mut enc =
        SoftwareEncoder::new(SoftwareEncoderConfig { bitrate: 200_000, fps: 10, keyframe_interval: 10 }).unwrap();
    let mut pic = crate::encode::yuv::I420::new(width, height);
    let mut seed = 7;
    (0..n)
        .map(|i| {
            crate::source::testsrc::draw(&mut pic, i as u64, "0", &mut seed);
            enc.encode(&pic, t0_us + i * 100_000).unwrap().unwrap()
        })
        .collect()
}

/// The configuration of the arbitrary-bytes property targets ("fuzzing on stable"): a
/// bounded number of cases in the normal test run; `EDGENVR_FUZZ_CASES=100000 cargo test
/// --lib fuzz` hunts longer. Failures are not persisted (no files in the source tree).
pub fn fuzz_config() -> proptest::test_runner::Config {
    let cases = std::env::var("EDGENVR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    proptest::test_runner::Config { cases, failure_persistence: None, ..Default::default() }
}

/// Bytes that look like a chunk file, for the fuzz targets: whole records of every NAL kind
/// (H.264 and H.265), timestamps that mostly rise, then random damage (bytes overwritten,
/// the end cut) so the parsers' deep paths are reached, not just the first header check.
pub fn chunk_like_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let nal = prop_oneof![
        Just(vec![0x67u8, 0x42]),
        Just(vec![0x68u8, 0xce]),
        Just(vec![0x65u8, 0x88, 0x84]),
        Just(vec![0x41u8, 0x9a]),
        Just(vec![0x06u8, 0x05]),
        Just(vec![0x40u8, 0x01]),
        Just(vec![0x42u8, 0x01]),
        Just(vec![0x26u8, 0x01]),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    let records = proptest::collection::vec((0i64..3, nal), 0..40);
    let damage = proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
    (any::<u32>(), records, damage, any::<prop::sample::Index>(), any::<bool>()).prop_map(
        |(t0, records, damage, cut, do_cut)| {
            let mut b = Vec::new();
            let mut ts = t0 as i64;
            for (step, nal) in records {
                ts += step * 33_000 - if step == 0 && nal.len() > 30 { 1 } else { 0 };
                crate::chunk::format::append_record(&mut b, ts, &nal);
            }
            if !b.is_empty() {
                for (at, v) in damage {
                    let i = at.index(b.len());
                    b[i] = v;
                }
                if do_cut {
                    b.truncate(cut.index(b.len() + 1));
                }
            }
            b
        },
    )
}
