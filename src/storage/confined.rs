//! File operations that cannot leave a storage root: every chunk file is reached from the
//! root directory one component at a time with `openat(O_NOFOLLOW)`, so a symlink (a
//! camera or day directory, or a chunk-named file, pointing elsewhere: a USB stick's
//! content is not ours to trust) is never followed, whatever the path in the index says.
//!
//! Rules (see `docs/design/crash-safety.md`, "Staying inside the root"):
//! 1. A relative path is used only if it is exactly `{camera}/{YYYYMMDD}/{name}.chunk`
//!    with normal components ([`parse_rel_path`]).
//! 2. The configured root itself may be a symlink (the owner chose it); nothing below it may.
//! 3. Files are opened non-blocking and must be regular files (a FIFO or device named
//!    `*.chunk` cannot stall a reader).
//! 4. Writers (the chunk writer, repair's truncation, the reaper's unlink) use only these
//!    functions; readers of indexed files open the last component with `O_NOFOLLOW` too.

use crate::chunk::path::parse_rel_path;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How to open a chunk file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// An existing file, read-only.
    Read,
    /// An existing file, for writing (repair cuts torn tails).
    Write,
    /// A new file (`O_EXCL`): the chunk writer's.
    CreateNew,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// The camera, day and file names of a chunk path, or an error if it breaks rule 1.
pub fn split(rel: &Path) -> io::Result<[&str; 3]> {
    let bad = || invalid(format!("{} is not a chunk path ({{camera}}/YYYYMMDD/NAME.chunk)", rel.display()));
    // A chunk's audio sibling lives by the same rules as its chunk.
    let chunk = crate::chunk::path::chunk_of_sibling(rel);
    parse_rel_path(chunk.as_deref().unwrap_or(rel)).ok_or_else(bad)?;
    let mut it = rel.iter().map(|c| c.to_str());
    match (it.next(), it.next(), it.next()) {
        (Some(Some(c)), Some(Some(d)), Some(Some(f))) => Ok([c, d, f]),
        _ => Err(bad()),
    }
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| invalid("a name holds a NUL byte".into()))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Opens a directory; `at` = `None` opens `path` itself (following symlinks: rule 2).
fn open_dir(at: Option<&OwnedFd>, name: &[u8]) -> io::Result<OwnedFd> {
    let c = cstring(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `c` is NUL-terminated; `at` is an open directory descriptor.
    let fd = check(unsafe {
        match at {
            None => libc::open(c.as_ptr(), flags),
            Some(d) => libc::openat(d.as_raw_fd(), c.as_ptr(), flags | libc::O_NOFOLLOW),
        }
    })?;
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens (creating it when `create`) the directory `name` in `dir`; says if it created it.
fn sub_dir(dir: &OwnedFd, name: &str, create: bool) -> io::Result<(OwnedFd, bool)> {
    match open_dir(Some(dir), name.as_bytes()) {
        Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
            let c = cstring(name.as_bytes())?;
            // SAFETY: `c` is NUL-terminated; `dir` is an open directory.
            match check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            Ok((open_dir(Some(dir), name.as_bytes())?, true))
        }
        // ELOOP: the name is a symlink.
        r => r.map(|d| (d, false)),
    }
}

/// A camera's day directory inside a root, reached without following symlinks.
pub struct DayDir {
    camera: OwnedFd,
    day: OwnedFd,
    day_name: String,
}

impl DayDir {
    /// Opens `{root}/{camera}/{day}`, creating the missing directories when `create` (and
    /// then fsyncing their parents, so they survive a power cut).
    pub fn open(root: &Path, camera: &str, day: &str, create: bool) -> io::Result<DayDir> {
        let root_fd = open_dir(None, root.as_os_str().as_bytes())?;
        let (camera_fd, new_camera) = sub_dir(&root_fd, camera, create)?;
        let (day_fd, new_day) = sub_dir(&camera_fd, day, create)?;
        if new_camera {
            let _ = fsync(&root_fd);
        }
        if new_day {
            let _ = fsync(&camera_fd);
        }
        Ok(DayDir { camera: camera_fd, day: day_fd, day_name: day.to_owned() })
    }

    /// Opens the file `name` in this directory (rule 3: regular files only).
    pub fn file(&self, name: &str, access: Access) -> io::Result<File> {
        let c = cstring(name.as_bytes())?;
        let base = libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let flags = match access {
            Access::Read => base | libc::O_RDONLY,
            Access::Write => base | libc::O_WRONLY,
            Access::CreateNew => base | libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        };
        // SAFETY: `c` is NUL-terminated; the mode argument is read only with O_CREAT.
        let fd = check(unsafe { libc::openat(self.day.as_raw_fd(), c.as_ptr(), flags, 0o666 as libc::c_uint) })?;
        // SAFETY: `fd` was just returned by openat and is owned by nobody else.
        let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        if !f.metadata()?.file_type().is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name} is not a regular file")));
        }
        if access == Access::CreateNew {
            if let Err(e) = fsync(&self.day) {
                log::warn!("fsync of the directory holding {name}: {e}");
            }
        }
        Ok(f)
    }

    /// Whether `name` exists in this directory as anything (a dangling symlink included).
    pub fn contains(&self, name: &str) -> io::Result<bool> {
        let c = cstring(name.as_bytes())?;
        // SAFETY: `st` is a writable stat buffer; `c` is NUL-terminated.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        match check(unsafe { libc::fstatat(self.day.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the directory entry `name` (a symlink is removed itself, never its target).
    pub fn unlink(&self, name: &str) -> io::Result<()> {
        let c = cstring(name.as_bytes())?;
        // SAFETY: `c` is NUL-terminated; `day` is an open directory.
        check(unsafe { libc::unlinkat(self.day.as_raw_fd(), c.as_ptr(), 0) }).map(|_| ())
    }

    /// Removes the audio sibling of the chunk `name` (`docs/design/audio.md`), if any.
    pub fn unlink_audio_of(&self, name: &str) -> io::Result<()> {
        let Some(sib) = crate::chunk::path::sibling_path(Path::new(name)) else { return Ok(()) };
        match self.unlink(sib.to_str().expect("made from a str")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Makes removals durable: removes the day directory if it is empty (and fsyncs the
    /// camera directory), else fsyncs the day directory.
    pub fn sync_or_prune(self) -> io::Result<()> {
        let c = cstring(self.day_name.as_bytes())?;
        // SAFETY: `c` is NUL-terminated; `camera` is an open directory.
        if check(unsafe { libc::unlinkat(self.camera.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) }).is_ok() {
            fsync(&self.camera)
        } else {
            fsync(&self.day)
        }
    }
}

fn fsync(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fsync on an open descriptor.
    check(unsafe { libc::fsync(fd.as_raw_fd()) }).map(|_| ())
}

/// Opens the chunk `rel` of `root` (rules 1-3).
pub fn open_chunk(root: &Path, rel: &Path, access: Access) -> io::Result<File> {
    let [camera, day, name] = split(rel)?;
    DayDir::open(root, camera, day, access == Access::CreateNew)?.file(name, access)
}

/// Whether the name `rel` is taken in `root` (by anything, a symlink included), so the
/// writer picks another.
pub fn name_taken(root: &Path, rel: &Path) -> io::Result<bool> {
    let [camera, day, name] = split(rel)?;
    match DayDir::open(root, camera, day, false) {
        Ok(d) => d.contains(name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens a chunk for reading by its absolute path, refusing a symlink as the last
/// component and anything but a regular file (for files whose path came from a checked
/// index row).
pub fn open_read_nofollow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    const REL: &str = "cam/20261121/cam.20261121.1456.chunk";

    #[test]
    fn creates_reads_and_removes_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let rel = Path::new(REL);
        assert!(!name_taken(d.path(), rel).unwrap());
        open_chunk(d.path(), rel, Access::CreateNew).unwrap().write_all(b"abc").unwrap();
        assert!(name_taken(d.path(), rel).unwrap());
        assert!(open_chunk(d.path(), rel, Access::CreateNew).is_err(), "never overwrites");
        assert_eq!(open_chunk(d.path(), rel, Access::Read).unwrap().metadata().unwrap().len(), 3);
        let day = DayDir::open(d.path(), "cam", "20261121", false).unwrap();
        day.unlink("cam.20261121.1456.chunk").unwrap();
        day.sync_or_prune().unwrap();
        assert!(!d.path().join("cam/20261121").exists(), "the emptied day directory is pruned");
    }

    #[test]
    fn symlinks_and_bad_paths_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let (root, outside) = (d.path().join("root"), d.path().join("outside"));
        std::fs::create_dir_all(root.join("cam/20261121")).unwrap();
        std::fs::create_dir_all(outside.join("20261122")).unwrap();
        std::fs::write(outside.join("target"), b"precious").unwrap();
        std::fs::write(outside.join("20261122/cam.20261122.0000.chunk"), b"precious").unwrap();
        symlink(outside.join("target"), root.join(REL)).unwrap();
        symlink(outside.join("20261122"), root.join("cam/20261122")).unwrap();
        let via_dir = Path::new("cam/20261122/cam.20261122.0000.chunk");
        for access in [Access::Read, Access::Write] {
            assert!(open_chunk(&root, Path::new(REL), access).is_err(), "{access:?} through a symlinked file");
            assert!(open_chunk(&root, via_dir, access).is_err(), "{access:?} through a symlinked directory");
        }
        assert!(open_chunk(&root, Path::new("cam/20261122/cam.20261122.0001.chunk"), Access::CreateNew).is_err());
        assert!(name_taken(&root, Path::new(REL)).unwrap(), "a symlink takes its name");
        assert!(open_read_nofollow(&root.join(REL)).is_err());
        for bad in ["../outside/target", "/etc/passwd", "cam/20261121/../../x.chunk", "cam/20261121/other.chunk"] {
            assert_eq!(split(Path::new(bad)).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
        assert_eq!(std::fs::read(outside.join("target")).unwrap(), b"precious");
    }

    #[test]
    fn a_fifo_named_like_a_chunk_does_not_block() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("cam/20261121")).unwrap();
        let c = CString::new(d.path().join(REL).as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert_eq!(open_chunk(d.path(), Path::new(REL), Access::Read).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
