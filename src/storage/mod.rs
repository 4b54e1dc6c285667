//! The disk side: storage roots (this module), retention ([`reaper`]) and bringing index
//! and files back into agreement ([`recovery`] at startup, [`check`] for `edgenvr check`,
//! the background [`indexer`] for footage the index does not know). Every file below a
//! root is found by [`walk`] and reached through [`confined`], which never follows a
//! symlink out of the root.
//!
//! Storage roots are where chunk files may be written, in order of preference, with whether
//! each is usable right now.
//!
//! A root is usable when its directory exists (or can be created, unless `require_mount`),
//! is on a different filesystem than `/` when `require_mount` is set, and its filesystem is
//! not read-only. A root on which a write fails is marked failed for
//! [`FAILED_RETRY`]; new chunks go to the first usable root, so recording moves to the next
//! root at once and moves back when the preferred one returns (a re-plugged USB disk).

pub mod check;
pub mod confined;
pub mod indexer;
pub mod reaper;
pub mod recovery;
pub mod walk;

use crate::bail;
use crate::config::StorageConfig;
use crate::error::{Error, Result};
use crate::index::Index;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a root that failed a write is skipped before it is tried again.
pub const FAILED_RETRY: Duration = Duration::from_secs(30);

/// Filesystem size and free space, bytes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Space {
    /// Size of the filesystem.
    pub total: u64,
    /// Bytes available to unprivileged writers.
    pub free: u64,
    /// Whether the filesystem is mounted read-only.
    pub read_only: bool,
}

/// `statvfs(2)` of the filesystem holding `path`.
pub fn statvfs(path: &Path) -> std::io::Result<Space> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = s.f_frsize as u64;
    Ok(Space {
        total: s.f_blocks as u64 * frsize,
        free: s.f_bavail as u64 * frsize,
        read_only: s.f_flag & libc::ST_RDONLY != 0,
    })
}

/// fsyncs a directory, so a file created or removed in it survives a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Health of one root, as last observed.
#[derive(Clone, Debug, Default)]
pub struct RootHealth {
    /// Until when the root is skipped after a failure.
    pub failed_until: Option<Instant>,
    /// The last error, for status.
    pub last_error: Option<String>,
    /// How many times recording moved away from this root.
    pub failures: u64,
}

/// One configured storage root.
pub struct Root {
    /// Index id of the root.
    pub id: i64,
    /// Its configuration.
    pub config: StorageConfig,
    /// Health, updated by writers (failures) and read by status.
    health: Mutex<RootHealth>,
}

impl Root {
    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Checks (and, unless `require_mount`, creates) the root directory; returns its space.
    pub fn check_usable(&self) -> Result<Space> {
        let p = self.path();
        if !p.is_dir() {
            if self.config.require_mount {
                bail!(
                    NotFound,
                    "storage root {} is not present; check that its disk is plugged in and mounted",
                    p.display()
                );
            }
            std::fs::create_dir_all(p).map_err(|e| Error::io(format!("creating storage root {}", p.display()), e))?;
        }
        if self.config.require_mount {
            let dev = |q: &Path| std::fs::metadata(q).map(|m| m.dev());
            match (dev(p), dev(Path::new("/"))) {
                (Ok(a), Ok(b)) if a != b => {}
                _ => {
                    bail!(
                        NotFound,
                        "storage root {} is not on a mounted disk (require_mount); check the mount",
                        p.display()
                    )
                }
            }
        }
        let space = statvfs(p).map_err(|e| Error::io(format!("statvfs {}", p.display()), e))?;
        if space.read_only {
            bail!(Io, "storage root {} is on a read-only filesystem; check the disk (fsck) or remount it", p.display());
        }
        Ok(space)
    }

    /// Free-space watermark in bytes for a filesystem of `total` bytes.
    pub fn min_free_bytes(&self, total: u64) -> u64 {
        self.config.min_free.bytes_for(total)
    }

    /// Whether the root is inside its failure back-off.
    pub fn is_failed(&self) -> bool {
        let h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        h.failed_until.is_some_and(|t| Instant::now() < t)
    }

    /// Records a failure; the root is skipped for [`FAILED_RETRY`].
    pub fn mark_failed(&self, why: &Error) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        h.failed_until = Some(Instant::now() + FAILED_RETRY);
        h.last_error = Some(why.to_string());
        h.failures += 1;
    }

    /// A copy of the health record.
    pub fn health(&self) -> RootHealth {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// All configured roots, in order of preference.
pub struct Storage {
    /// The roots, as configured.
    roots: Vec<Root>,
    /// Where archived-only chunks are fetched back to for exports, when an archive is
    /// configured (`docs/design/archive.md`).
    fetch_dir: std::sync::OnceLock<std::path::PathBuf>,
}

impl Storage {
    /// Registers the configured roots in the index.
    pub fn open(configs: &[StorageConfig], index: &Index) -> Result<Storage> {
        let roots = configs
            .iter()
            .map(|c| Ok(Root { id: index.root_id(&c.path)?, config: c.clone(), health: Mutex::default() }))
            .collect::<Result<Vec<_>>>()?;
        Ok(Storage { roots, fetch_dir: Default::default() })
    }

    /// Sets the directory archived-only chunks are fetched back to (once).
    pub fn set_fetch_dir(&self, dir: std::path::PathBuf) {
        let _ = self.fetch_dir.set(dir);
    }

    /// Where the fetched-back copy of archived-only chunk `id` lives (it may not exist).
    pub fn fetched_path(&self, id: i64) -> Option<std::path::PathBuf> {
        self.fetch_dir.get().map(|d| d.join(format!("{id}.chunk")))
    }

    /// The roots in order of preference.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// A root by index id.
    pub fn root(&self, id: i64) -> Option<&Root> {
        self.roots.iter().find(|r| r.id == id)
    }

    /// The first root that is usable now, skipping roots in failure back-off and marking
    /// roots that fail the check. `None` when no root can take a write.
    pub fn pick_for_write(&self) -> Option<&Root> {
        for r in &self.roots {
            if r.is_failed() {
                continue;
            }
            match r.check_usable() {
                Ok(_) => return Some(r),
                Err(e) => {
                    log::warn!("{e}");
                    r.mark_failed(&e);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FreeSpace;
    use crate::err;

    fn cfg(p: &Path, require_mount: bool) -> StorageConfig {
        StorageConfig {
            path: p.to_owned(),
            min_free: FreeSpace::Percent(1.0),
            max_bytes: None,
            events_reserve: None,
            require_mount,
        }
    }

    #[test]
    fn picks_first_usable_and_skips_failed() {
        let d = tempfile::tempdir().unwrap();
        let ix = Index::open_in_memory().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        let s = Storage::open(&[cfg(&a, false), cfg(&b, false)], &ix).unwrap();
        let first = s.pick_for_write().unwrap();
        assert_eq!(first.path(), a);
        assert!(a.is_dir(), "non-mount roots are created");
        first.mark_failed(&err!(Io, "boom"));
        assert_eq!(s.pick_for_write().unwrap().path(), b);
        assert_eq!(s.root(s.roots()[0].id).unwrap().health().failures, 1);
    }

    #[test]
    fn require_mount_refuses_plain_directory() {
        let d = tempfile::tempdir().unwrap();
        let ix = Index::open_in_memory().unwrap();
        let missing = d.path().join("usb");
        let s = Storage::open(&[cfg(&missing, true)], &ix).unwrap();
        assert!(s.pick_for_write().is_none());
        assert!(!missing.exists(), "a require_mount root is never created");
    }

    #[test]
    fn statvfs_reports_space() {
        let s = statvfs(Path::new("/")).unwrap();
        assert!(s.total > 0 && s.free <= s.total);
    }
}
