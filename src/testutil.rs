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
    let cfg =
        StorageConfig { path: dir.to_owned(), min_free: FreeSpace::Bytes(0), max_bytes: None, require_mount: false };
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
