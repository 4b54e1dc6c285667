//! The helpers every part of the config's checking uses: one error shape naming the key,
//! and paths made absolute.

use crate::err;
use crate::error::Error;
use std::path::{Path, PathBuf};

/// A config error naming the key: `storage[1].min_free: ...`.
pub(super) fn invalid(key: &str, why: impl std::fmt::Display) -> Error {
    err!(InvalidArgument, "{key}: {why}")
}

/// `p` against the current directory when relative.
pub(super) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_owned())
    }
}
