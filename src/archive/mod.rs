//! Off the box: copies of the footage in S3-compatible storage (`docs/design/archive.md`).
//!
//! - [`settings`]: `[[archive]]` targets and their root-only login file.
//! - [`s3`]: a small blocking S3 client (rusty-s3 signs, ureq sends; bodies streamed).
//! - [`throttle`]: the paced, hashing reader an upload streams through.
//! - [`layout`]: object keys (the disk's layout under `prefix/box_id`) and day manifests.
//! - [`upload`]: the uploader thread; its progress lives in the index.
//! - [`restore`]: an index rebuilt from a bucket's manifests.
//! - [`fetch`]: archived-only footage fetched back for exports, into a bounded cache.
//! - [`status`]: backlog, bytes sent, errors, health.
//!
//! It reads sealed chunks and writes only its own index rows; recording never waits for it.

pub mod fetch;
pub mod layout;
pub mod restore;
pub mod s3;
pub mod settings;
pub mod status;
pub mod throttle;
pub mod upload;

/// What a target's `send` asks of the index's archive queries. Here, not in `settings`,
/// which the config module reads and so must not depend on the index.
pub(crate) fn takes(send: settings::Send) -> crate::index::archive::Takes {
    match send {
        settings::Send::All => crate::index::archive::Takes::All,
        settings::Send::Events => crate::index::archive::Takes::EventFootage,
    }
}
