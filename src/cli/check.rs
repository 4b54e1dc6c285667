//! `edgenvr check [--repair]`: prints what disagrees between index and files, fixes it with
//! `--repair`, and exits non-zero while problems remain. Safe while the service runs: the
//! chunks it is writing are left alone and the output says so (`storage::check`).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::lock::{Acquired, Holder, IndexLock, Role};
use crate::index::Index;
use crate::storage::Storage;
use std::sync::Arc;

/// Runs the check; returns the exit code (0 clean or all repaired, 1 problems remain).
pub fn run(config: &Config, repair: bool) -> Result<i32> {
    let (lock, service) = match IndexLock::try_acquire(&config.index_path, Role::Check)? {
        Acquired::Locked(l) => (Some(l), None),
        Acquired::Held(h) => (None, Some(h)),
    };
    let index = Arc::new(Index::open(&config.index_path).map_err(|e| busy_hint(e, service.as_ref()))?);
    let storage = Arc::new(Storage::open(&config.storage, &index)?);
    let report = crate::storage::check::check(&index, &storage, repair, lock)?;
    for p in &report.problems {
        println!("{p}");
    }
    for (path, why) in &report.skipped {
        println!("{}: left alone: {why}", path.display());
    }
    if report.skipped_count > report.skipped.len() as u64 {
        println!("... and {} more paths left alone", report.skipped_count - report.skipped.len() as u64);
    }
    for r in &report.roots_absent {
        println!("storage root {} is not present; not checked", r.display());
    }
    if let Some(h) = &service {
        println!(
            "{h} is recording: {} chunk(s) being written left alone; everything else {}",
            report.live_left_alone,
            if repair { "checked and repaired" } else { "checked" }
        );
    }
    println!(
        "checked {} chunk files: {} problems, {} repaired, {} remaining",
        report.files_checked,
        report.problems.len(),
        report.repaired,
        report.remaining()
    );
    let state_dir = state_file_dir_problem(&config.state_file());
    if let Some(p) = &state_dir {
        println!("{p}");
    }
    Ok(if report.remaining() == 0 && state_dir.is_none() { 0 } else { 1 })
}

/// The camera state file's directory must exist and be writable, or every camera change
/// over the API fails (`[server] state_file`).
fn state_file_dir_problem(path: &std::path::Path) -> Option<String> {
    let dir = path.parent()?;
    let ok = dir.is_dir()
        && std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            // SAFETY: a valid NUL-terminated path; access(2) only reads it.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0);
    (!ok).then(|| {
        format!(
            "server.state_file: {} is not a writable directory; camera changes over the API would fail",
            dir.display()
        )
    })
}

/// An index that cannot be opened while the service holds it (exclusive mode, on a file
/// system without shared memory) gets a hint saying what to do.
fn busy_hint(e: Error, service: Option<&Holder>) -> Error {
    match service {
        Some(h) => Error::new(
            e.kind(),
            format!(
                "{h} holds the index (on a file system without shared memory, such as 9p, it holds it \
                 alone): stop it (systemctl stop edgenvr) to check"
            ),
        )
        .with_source(e),
        None => e,
    }
}
