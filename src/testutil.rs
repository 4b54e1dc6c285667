//! Fixtures shared by unit tests.

use crate::chunk::writer::{ChunkWriter, WriterContext};
use crate::config::{FreeSpace, StorageConfig};
use crate::h264::Codec;
use crate::index::Index;
use crate::storage::Storage;
use std::sync::Arc;

/// A chunk writer for camera "cam" on one storage root at `dir`, with an in-memory index.
pub fn writer_fixture(dir: &std::path::Path) -> (ChunkWriter, Arc<Index>, Arc<Storage>) {
    let index = Arc::new(Index::open_in_memory().unwrap());
    let cfg =
        StorageConfig { path: dir.to_owned(), min_free: FreeSpace::Bytes(0), max_bytes: None, require_mount: false };
    let storage = Arc::new(Storage::open(&[cfg], &index).unwrap());
    let ctx = WriterContext {
        storage: storage.clone(),
        index: index.clone(),
        on_space_pressure: Arc::new(|| {}),
        sync_interval: std::time::Duration::from_secs(2),
    };
    (ChunkWriter::new("cam", Codec::H264, ctx, Arc::default()), index, storage)
}
