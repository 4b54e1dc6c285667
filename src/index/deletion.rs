//! The last step of crash-safe deletion (docs/design/crash-safety.md): rows leave the
//! index, or become archived-only, in one transaction that also lowers the roots' running
//! totals by the bytes freed.

use super::{lenient_int, Index, USAGE_SQL};
use crate::error::{Error, Result};
use rusqlite::OptionalExtension;
use std::collections::HashMap;

impl Index {
    /// Removes rows (last step of deletion, or repair of rows whose files are gone).
    pub fn delete_rows(&self, ids: &[i64]) -> Result<()> {
        self.free_rows(
            ids,
            &format!("SELECT root_id, {USAGE_SQL} FROM chunk WHERE id = ?1"),
            &["DELETE FROM chunk WHERE id = ?1"],
            "deleting chunk rows",
        )
    }

    /// In one transaction: sums per root the bytes of the rows `freed_sql` selects (`root_id,
    /// bytes` for the id `?1`), runs `statements` for each id, commits, and lowers the
    /// roots' running totals by what was freed. The shared last step of deleting rows and
    /// of turning them archived-only; `what` names a failed statement.
    pub(super) fn free_rows(&self, ids: &[i64], freed_sql: &str, statements: &[&str], what: &str) -> Result<()> {
        let mut c = self.lock();
        let tx = c.transaction().map_err(|e| Error::db("starting batch", e))?;
        let mut freed: HashMap<i64, i64> = HashMap::new();
        {
            let mut get = tx.prepare_cached(freed_sql).map_err(|e| Error::db("preparing batch", e))?;
            for id in ids {
                let row: Option<(i64, i64)> = get
                    .query_row([id], |r| Ok((lenient_int(r, 0), lenient_int(r, 1))))
                    .optional()
                    .map_err(|e| Error::db("reading chunk rows", e))?;
                if let Some((root, bytes)) = row {
                    *freed.entry(root).or_default() += bytes.max(0);
                }
            }
            for sql in statements {
                let mut st = tx.prepare_cached(sql).map_err(|e| Error::db("preparing batch", e))?;
                for id in ids {
                    st.execute([id]).map_err(|e| Error::db(what, e))?;
                }
            }
        }
        tx.commit().map_err(|e| Error::db("committing batch", e))?;
        self.count_tx();
        for (root, bytes) in freed {
            self.refresh_root(&c, root, -bytes);
        }
        Ok(())
    }
}
