//! The camera state file: the camera list as last changed over the API or by `SIGHUP`,
//! kept next to the index (`cameras.json` in the index's directory, on the data partition:
//! the root file system may be read-only). When it exists its cameras are used instead of
//! the TOML file's `[[camera]]` tables; deleting it (service stopped) or `SIGHUP` goes back
//! to the TOML file's cameras (README, "Cameras over the API").
//!
//! Crash safety (`docs/design/crash-safety.md`, "The camera state file"): the new list is
//! written to `cameras.json.tmp`, fsynced, renamed over `cameras.json`, and the directory
//! fsynced; a power cut at any point leaves the old file or the new one whole. A leftover
//! `.tmp` is ignored and overwritten by the next change.
//!
//! Format: `{"version": 1, "cameras": [ {a [[camera]] table as JSON}, ... ]}`. It may hold
//! camera passwords, like the TOML file: it is written with mode 0600.

use crate::config::CameraTable;
use crate::err;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The format's version.
const VERSION: u32 = 1;
/// Largest state file read: [`crate::config::MAX_CAMERAS`] tables of at most
/// [`crate::config::MAX_CAMERA_JSON`] bytes each, with room for the frame.
const MAX_BYTES: u64 = (crate::config::MAX_CAMERAS * crate::config::MAX_CAMERA_JSON) as u64 + 4096;

#[derive(serde::Serialize, serde::Deserialize)]
struct Doc {
    version: u32,
    cameras: Vec<CameraTable>,
}

/// Where the state file of the index at `index_path` lives.
pub fn path_for(index_path: &Path) -> PathBuf {
    index_path.with_file_name("cameras.json")
}

/// The saved list, or `None` when there is no state file. The tables are not yet checked
/// (the caller checks them as it checks the TOML file's).
pub fn load(path: &Path) -> Result<Option<Vec<CameraTable>>> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot open the camera state file {}", path.display()), e)),
    };
    let mut text = Vec::new();
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| Error::io(format!("cannot read the camera state file {}", path.display()), e))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(err!(DataLoss, "the camera state file {} is over {MAX_BYTES} bytes", path.display()));
    }
    let doc: Doc = serde_json::from_slice(&text)
        .map_err(|e| err!(DataLoss, "the camera state file {} cannot be read", path.display()).with_source(e))?;
    if doc.version != VERSION {
        return Err(err!(
            DataLoss,
            "the camera state file {} has version {}, not {VERSION}",
            path.display(),
            doc.version
        ));
    }
    Ok(Some(doc.cameras))
}

/// Replaces the state file with `tables`, crash-safely (see the module doc).
pub fn save(path: &Path, tables: &[CameraTable]) -> Result<()> {
    let doc = Doc { version: VERSION, cameras: tables.to_vec() };
    let bytes =
        serde_json::to_vec_pretty(&doc).map_err(|e| err!(Internal, "cannot write the camera list").with_source(e))?;
    let tmp = path.with_extension("json.tmp");
    let io = |what: &str, e: std::io::Error| Error::io(format!("{what} {}", tmp.display()), e);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("cannot create", e))?;
        f.write_all(&bytes).map_err(|e| io("cannot write", e))?;
        f.sync_all().map_err(|e| io("cannot fsync", e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("cannot rename {} into place", tmp.display()), e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot fsync the directory {}", dir.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(&dir.path().join("index.db"));
        assert!(load(&p).unwrap().is_none());
        let t = CameraTable::from_json(br#"{"id": "door", "source": "testsrc"}"#, None).unwrap();
        save(&p, std::slice::from_ref(&t)).unwrap();
        let got = load(&p).unwrap().unwrap();
        assert!(got == vec![t.clone()]);
        save(&p, &[]).unwrap();
        assert!(load(&p).unwrap().unwrap().is_empty());
        assert!(!dir.path().join("cameras.json.tmp").exists());
        std::fs::write(&p, b"{\"version\": 1, \"cameras\": [").unwrap();
        assert_eq!(load(&p).unwrap_err().kind(), crate::error::ErrorKind::DataLoss);
        std::fs::write(&p, b"{\"version\": 9, \"cameras\": []}").unwrap();
        assert_eq!(load(&p).unwrap_err().kind(), crate::error::ErrorKind::DataLoss);
    }
}
