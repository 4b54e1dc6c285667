//! The lock file beside the index (`{index}.lock`): who may touch the chunks being written.
//!
//! Rules (see `docs/design/crash-safety.md`, "The index lock"):
//! 1. `edgenvr run` holds an exclusive `flock` on it for its whole life. A second service on
//!    the same index finds it held and refuses to start, naming the holder's pid.
//! 2. Open rows (chunks being written) and `deleting` rows are only ever recovered by a
//!    process holding the lock: startup recovery, or `check --repair` while no service runs
//!    (it holds the lock only while it recovers them, a few seconds).
//! 3. `check` and `check --repair` that find the lock held by a service leave open rows
//!    alone and say so; everything else they may check and repair beside the service.
//! 4. A service that finds the lock held by `check` waits for it (up to
//!    [`SERVICE_PATIENCE`]) instead of failing and burning systemd's restart budget.
//!
//! The holder writes `{pid} {role}` into the file so the others can say who holds it. A
//! file system without `flock` (some network shares) gets a warning and no lock.

use crate::bail;
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a starting service waits for a `check` that holds the lock.
pub const SERVICE_PATIENCE: Duration = Duration::from_secs(60);

/// What a lock holder is doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// `edgenvr run`.
    Service,
    /// `edgenvr check` (with or without `--repair`).
    Check,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Service => "run",
            Role::Check => "check",
        }
    }
}

/// Who holds the lock, as its file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its process id, if written.
    pub pid: Option<u32>,
    /// What it is doing, if written.
    pub role: Option<Role>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.role {
            Some(Role::Service) => "the edgenvr service",
            Some(Role::Check) => "`edgenvr check`",
            None => "another edgenvr process",
        };
        match self.pid {
            Some(pid) => write!(f, "{what} (pid {pid})"),
            None => f.write_str(what),
        }
    }
}

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct IndexLock {
    /// The locked file; `None` where the file system has no `flock`.
    file: Option<File>,
}

/// The outcome of [`IndexLock::try_acquire`].
#[derive(Debug)]
pub enum Acquired {
    /// The lock is ours.
    Locked(IndexLock),
    /// Someone else holds it.
    Held(Holder),
}

/// The lock file of the index at `index`.
pub fn lock_path(index: &Path) -> PathBuf {
    let mut p = index.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn read_holder(path: &Path) -> Holder {
    let mut s = String::new();
    let _ = File::open(path).and_then(|f| f.take(64).read_to_string(&mut s));
    let mut words = s.split_whitespace();
    let pid = words.next().and_then(|w| w.parse().ok());
    let role = match words.next() {
        Some("run") => Some(Role::Service),
        Some("check") => Some(Role::Check),
        _ => None,
    };
    Holder { pid, role }
}

impl IndexLock {
    /// Tries to take the lock of the index at `index` for `role`, without waiting.
    pub fn try_acquire(index: &Path, role: Role) -> Result<Acquired> {
        let path = lock_path(index);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating index directory {}", dir.display()), e))?;
        }
        let open = |write: bool| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .create(write)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
        };
        // A lock file created by root (a `check` over SSH) is still lockable read-only.
        let (mut file, writable) = match open(true) {
            Ok(f) => (f, true),
            Err(_) => (open(false).map_err(|e| Error::io(format!("opening lock file {}", path.display()), e))?, false),
        };
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => Ok(Acquired::Held(read_holder(&path))),
                _ => {
                    log::warn!(
                        "cannot lock {} ({e}): its file system has no flock; make sure only one edgenvr \
                         process writes this index",
                        path.display()
                    );
                    Ok(Acquired::Locked(IndexLock { file: None }))
                }
            };
        }
        if writable {
            let stamp = format!("{} {}\n", std::process::id(), role.as_str());
            let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(stamp.as_bytes()));
        }
        Ok(Acquired::Locked(IndexLock { file: Some(file) }))
    }

    /// The service's lock: waits (up to `patience`) for a `check` that holds it; refuses at
    /// once when another service holds it.
    pub fn for_service(index: &Path, patience: Duration) -> Result<IndexLock> {
        let deadline = Instant::now() + patience;
        let mut said = false;
        loop {
            let holder = match IndexLock::try_acquire(index, Role::Service)? {
                Acquired::Locked(l) => return Ok(l),
                Acquired::Held(h) => h,
            };
            // The holder may not have written its name yet: look again shortly.
            let waiting_for_check = holder.role != Some(Role::Service);
            if !waiting_for_check || Instant::now() >= deadline {
                bail!(
                    InvalidArgument,
                    "the index {} is in use by {holder}; two services must not record into one index: stop \
                     the other one (systemctl stop edgenvr) or give this one its own [index] path",
                    index.display()
                );
            }
            if !said && holder.role.is_some() {
                log::warn!("waiting for {holder} to finish with the index {}", index.display());
                said = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Whether the lock is really held (false where the file system has no `flock`).
    pub fn is_real(&self) -> bool {
        self.file.is_some()
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            // Clear the name before the kernel releases the lock with the descriptor.
            let _ = f.set_len(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let index = d.path().join("index.db");
        let first = match IndexLock::try_acquire(&index, Role::Service).unwrap() {
            Acquired::Locked(l) => l,
            Acquired::Held(h) => panic!("held by {h}"),
        };
        assert!(first.is_real());
        // flock conflicts between two opens even in one process.
        match IndexLock::try_acquire(&index, Role::Check).unwrap() {
            Acquired::Held(h) => assert_eq!(h, Holder { pid: Some(std::process::id()), role: Some(Role::Service) }),
            Acquired::Locked(_) => panic!("a second lock was granted"),
        }
        let e = IndexLock::for_service(&index, Duration::from_secs(30)).unwrap_err();
        assert!(e.to_string().contains("in use by the edgenvr service (pid"), "{e}");
        drop(first);
        assert!(matches!(IndexLock::try_acquire(&index, Role::Check).unwrap(), Acquired::Locked(_)));
    }

    #[test]
    fn a_service_waits_for_a_check() {
        let d = tempfile::tempdir().unwrap();
        let index = d.path().join("index.db");
        let Acquired::Locked(check) = IndexLock::try_acquire(&index, Role::Check).unwrap() else { panic!() };
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            drop(check);
        });
        let started = Instant::now();
        IndexLock::for_service(&index, Duration::from_secs(30)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        t.join().unwrap();
        let e = {
            let _held = IndexLock::for_service(&index, Duration::ZERO).unwrap();
            let Acquired::Held(h) = IndexLock::try_acquire(&index, Role::Check).unwrap() else { panic!() };
            h
        };
        assert_eq!(e.role, Some(Role::Service));
    }
}
