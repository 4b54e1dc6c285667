//! `[server] token_file`: the admin token kept in a file on the data partition, made on
//! first boot. A box flashed from an image has no token of its own; the service makes one
//! the first time it starts (32 random bytes from the kernel, 64 hex digits), writes it
//! readable by its owner only, and `edgenvr status` over SSH shows it.
//!
//! The write is atomic: a temporary file in the same directory (mode 0600, created
//! exclusively), fsync'd, renamed over the name, and the directory fsync'd; a power cut
//! leaves either no file or the whole token.

use crate::error::{Error, ErrorKind, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Shortest token accepted from a file (as for `[server] token`).
pub const MIN_TOKEN_LEN: usize = 16;

/// Reads the token in `path`; `Ok(None)` if the file does not exist.
pub fn read(path: &Path) -> Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading the API token file {}", path.display()), e)),
    };
    let t = text.trim();
    if t.len() < MIN_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the API token file {} must hold one token of at least {MIN_TOKEN_LEN} printable characters; \
                 delete it to have a new one made",
                path.display()
            ),
        ));
    }
    Ok(Some(t.to_owned()))
}

/// Reads the token in `path`, making the file with a new random token if it is missing.
/// Returns the token and whether it was made now.
pub fn load_or_create(path: &Path) -> Result<(String, bool)> {
    if let Some(t) = read(path)? {
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        if mode & 0o077 != 0 {
            log::warn!("the API token file {} is readable by others (mode {mode:o}); chmod 600 it", path.display());
        }
        return Ok((t, false));
    }
    let token = super::session::random_token()?;
    write_atomically(path, &token)?;
    Ok((token, true))
}

fn write_atomically(path: &Path, token: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let ctx = |what: &str| format!("{what} the API token file {}", path.display());
    std::fs::create_dir_all(dir).map_err(|e| Error::io(ctx("creating the directory of"), e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(ctx("creating"), e))?;
    let written = f.write_all(format!("{token}\n").as_bytes()).and_then(|_| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(ctx("writing"), e));
    }
    crate::storage::sync_dir(dir).map_err(|e| Error::io(ctx("syncing the directory of"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_owner_only_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/api-token");
        assert_eq!(read(&p).unwrap(), None);
        let (t, made) = load_or_create(&p).unwrap();
        assert!(made);
        assert_eq!(t.len(), 64);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&p).unwrap(), (t.clone(), false));
        assert_eq!(read(&p).unwrap(), Some(t));
        // Nothing left behind but the file.
        assert_eq!(std::fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn a_short_or_garbled_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "short\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.to_string().contains("at least 16"), "{e}");
        std::fs::write(&p, "0123456789abcdef 0123456789abcdef").unwrap();
        assert!(read(&p).is_err());
    }
}
