//! `edgenvr check [--repair]`: prints what disagrees between index and files, fixes it with
//! `--repair`, and exits non-zero while problems remain.

use crate::config::Config;
use crate::error::Result;
use crate::index::Index;
use crate::storage::Storage;
use std::sync::Arc;

/// Runs the check; returns the exit code (0 clean or all repaired, 1 problems remain).
pub fn run(config: &Config, repair: bool) -> Result<i32> {
    let index = Arc::new(Index::open(&config.index_path)?);
    let storage = Arc::new(Storage::open(&config.storage, &index)?);
    let report = crate::storage::recovery::check(&index, &storage, repair)?;
    for p in &report.problems {
        println!("{p}");
    }
    for r in &report.roots_absent {
        println!("storage root {} is not present; not checked", r.display());
    }
    println!(
        "checked {} chunk files: {} problems, {} repaired, {} remaining",
        report.files_checked,
        report.problems.len(),
        report.repaired,
        report.remaining()
    );
    Ok(if report.remaining() == 0 { 0 } else { 1 })
}
