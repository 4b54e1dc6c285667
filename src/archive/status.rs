//! What `edgenvr archive status`, the status document and health say of each target: the
//! backlog (sealed chunks not yet sent, and how old the oldest is), bytes sent, chunks the
//! reaper removed before they were sent, and the last error. Everything but the live error
//! comes from the index, so the command works without the service.

use super::settings::ArchiveConfig;
use crate::error::Result;
use crate::index::archive::{Backlog, TargetRow};
use crate::index::Index;

/// One target's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    /// Where it sends (no secret).
    pub location: String,
    /// What it takes (`send`): the backlog counts only that.
    pub send: super::settings::Send,
    /// Counters and the last stored error.
    pub row: TargetRow,
    /// The backlog now.
    pub backlog: Backlog,
    /// How old the backlog's oldest chunk may get before health degrades, µs.
    pub max_backlog_age_us: i64,
}

impl TargetStatus {
    /// Why this target makes health degraded, if it does: its backlog is too old.
    pub fn unhealthy(&self, now_us: i64) -> Option<String> {
        let oldest = self.backlog.oldest_end_us?;
        let age = now_us - oldest;
        (age > self.max_backlog_age_us).then(|| {
            format!("archive {}: backlog {} s old ({} chunks)", self.location, age / 1_000_000, self.backlog.chunks)
        })
    }
}

/// The state of every configured target, in config order.
pub fn targets(index: &Index, archive: &[ArchiveConfig], box_id: &str) -> Result<Vec<TargetStatus>> {
    let mut out = Vec::with_capacity(archive.len());
    for cfg in archive {
        let location = cfg.location(box_id);
        let id = index.archive_target_id(&location, super::takes(cfg.send))?;
        let row = index.archive_targets()?.into_iter().find(|r| r.id == id).unwrap_or_default();
        out.push(TargetStatus {
            location,
            send: cfg.send,
            row,
            backlog: index.archive_backlog(id, super::takes(cfg.send))?,
            max_backlog_age_us: cfg.units.max_backlog_age.as_micros() as i64,
        });
    }
    Ok(out)
}

/// Human lines for `edgenvr archive status`.
pub fn describe(t: &TargetStatus, now_us: i64) -> Vec<String> {
    use crate::time::format_rfc3339;
    let mut lines = vec![format!("archive {} (send = {:?})", t.location, t.send.as_str())];
    lines.push(format!("  sent: {} chunks, {} bytes", t.row.objects_sent, t.row.bytes_sent));
    let age = t.backlog.oldest_end_us.map_or("-".to_owned(), |o| format!("{} s", (now_us - o) / 1_000_000));
    lines.push(format!("  backlog: {} chunks, {} bytes, oldest {age}", t.backlog.chunks, t.backlog.bytes));
    if t.row.reaped_unsent > 0 {
        lines.push(format!("  removed by the reaper before sending: {} chunks", t.row.reaped_unsent));
    }
    if t.row.audio_skipped > 0 {
        lines.push(format!("  sent without their audio (gone or damaged): {} chunks", t.row.audio_skipped));
    }
    lines.push(format!("  last upload: {}", t.row.last_ok_us.map_or("never".to_owned(), format_rfc3339)));
    if let Some((e, at)) = &t.row.last_error {
        lines.push(format!("  last error ({}): {e}", format_rfc3339(*at)));
    }
    if let Some(why) = t.unhealthy(now_us) {
        lines.push(format!("  UNHEALTHY: {why}"));
    }
    lines
}
