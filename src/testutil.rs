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
