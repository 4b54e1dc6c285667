//! `edgenvr check [--repair]`: every row against its file and every file against the index;
//! with `repair`, fixes what it finds (torn tails cut, unknown files indexed, rows of
//! missing files dropped, stale and damaged rows rewritten from their files).
//!
//! It is safe beside a running service (`docs/design/crash-safety.md`, "The index lock"):
//! - open rows (chunks being written) and `deleting` rows are recovered only in the first
//!   phase, and only while holding the index lock (no service runs); with a service running
//!   they are left alone and counted, never reported as damage;
//! - the second phase touches only sealed rows and files the index does not know, which
//!   the service never writes (its rows come before its files); a file the service's
//!   background indexer adds meanwhile is simply found indexed.

use super::recovery::{examine, index_unknown, recover_unfinished, remove_chunk, repair_damaged};
use super::recovery::{seal_from, Examined, Problem, Report};
use super::{Root, Storage};
use crate::error::Result;
use crate::index::lock::IndexLock;
use crate::index::{ChunkRow, ChunkState, Index, Seal};
use std::sync::Arc;

/// Rows read per page: bounded memory on any index.
const PAGE: usize = 512;

/// Runs the check. `lock` is the index lock when this process holds it (no service
/// runs); it is released after the first phase, so a service can start meanwhile.
pub fn check(index: &Arc<Index>, storage: &Arc<Storage>, repair: bool, lock: Option<IndexLock>) -> Result<Report> {
    let mut report = Report::default();
    let open = index.rows_in_state(ChunkState::Open)?;
    match lock {
        Some(lock) if repair => {
            recover_unfinished(index, storage, &mut report)?;
            drop(lock);
        }
        Some(lock) => {
            drop(lock);
            for row in open.iter().chain(&index.rows_in_state(ChunkState::Deleting)?) {
                report.problems.push(Problem::Unfinished { id: row.as_ref().map_or_else(|d| d.id, |r| r.id) });
            }
        }
        None => report.live_left_alone = open.len() as u64,
    }
    for root in storage.roots() {
        if root.check_usable().is_err() {
            report.roots_absent.push(root.path().to_owned());
            continue;
        }
        // Rows → files, a page at a time.
        let mut after_id = 0;
        loop {
            let page = index.chunks_on_root_page(root.id, after_id, PAGE)?;
            let Some(last) = page.last() else { break };
            after_id = last.as_ref().map_or_else(|d| d.id, |r| r.id);
            for row in page {
                match row {
                    Ok(row) if row.state == ChunkState::Sealed => check_row(index, root, &row, repair, &mut report)?,
                    Ok(_) => {}
                    // Open and deleting rows belong to the lock holder (first phase).
                    Err(d)
                        if matches!(ChunkState::from_i64(d.state), Some(ChunkState::Open | ChunkState::Deleting)) => {}
                    Err(d) => repair_damaged(index, root, &d, repair, &mut report)?,
                }
            }
        }
        // Files → rows.
        index_unknown(index, root, None, repair, &mut report)?;
    }
    Ok(report)
}

/// The row's facts as a seal, to compare with a scan of its file. `audio_bytes` is not in
/// `ChunkRow`, and a row is not stale for its audio count alone (it can differ by a torn
/// audio tail cut since), so the caller passes the scan's.
fn seal_of(row: &ChunkRow, audio_bytes: u64) -> Seal {
    Seal {
        id: row.id,
        start_us: row.start_us,
        end_us: row.end_us,
        bytes: row.bytes,
        frames: row.frames,
        keyframes: row.keyframes.clone(),
        records: row.records.unwrap_or(u64::MAX),
        audio_bytes,
    }
}

fn check_row(index: &Index, root: &Root, row: &ChunkRow, repair: bool, report: &mut Report) -> Result<()> {
    let path = root.path().join(&row.rel_path);
    match examine(root, &row.rel_path, Some(row.codec), repair, report)? {
        Examined::Missing => {
            // The reaper of a running service may have just deleted it.
            if index.chunk(row.id).ok().flatten().is_none_or(|r| r.state != ChunkState::Sealed) {
                return Ok(());
            }
            report.problems.push(Problem::MissingFile { id: row.id, path });
            if repair {
                index.delete_rows(&[row.id])?;
                report.repaired += 1;
            }
        }
        Examined::NotRegular => {
            report.problems.push(Problem::NotRegular { id: row.id, path });
            if repair {
                index.delete_rows(&[row.id])?;
                report.repaired += 1;
            }
        }
        Examined::Undecodable => {
            report.problems.push(Problem::Undecodable { path });
            if repair {
                remove_chunk(root, &row.rel_path)?;
                index.delete_rows(&[row.id])?;
                report.repaired += 1;
            }
        }
        Examined::Chunk(s) => {
            let found = seal_from(row.id, &s);
            if found != seal_of(row, found.audio_bytes) {
                report.problems.push(Problem::Stale { id: row.id, path });
                if repair {
                    index.seal(&found)?;
                    report.repaired += 1;
                }
            }
        }
    }
    Ok(())
}
