//! `edgenvr archive restore`: an index rebuilt from a bucket's manifests alone, on another
//! box or a laptop. Every chunk listed becomes an archived-only row (its footage is fetched
//! back when exported); rows already known (by object key) are left alone, so a restore
//! can be repeated, except archived-only rows that break the index's rules: those are
//! rewritten from the manifest (their repair; `check --repair` only reports them). Memory: one listing page (1000 keys) and one manifest (4 MiB at most).

use super::layout::{parse_manifest, MANIFEST_NAME, MAX_MANIFEST_BYTES};
use super::s3::Store;
use super::settings::{read_login, ArchiveConfig};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::storage::Storage;
use crate::{bail, err};
use std::io::Read;

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Manifests read.
    pub manifests: usize,
    /// Chunks added to the index (or damaged archived-only rows rewritten).
    pub added: usize,
    /// Chunks the index already had.
    pub known: usize,
}

/// Restores the chunks of box `box_id` from target `cfg` into `index`.
pub fn restore(index: &Index, storage: &Storage, cfg: &ArchiveConfig, box_id: &str) -> Result<Restored> {
    let store = Store::new(cfg, &read_login(&cfg.credentials_file)?)?;
    let Some(root) = storage.roots().first() else { bail!(InvalidArgument, "restore needs a [[storage]] root") };
    let target_id = index.archive_target_id(&cfg.location(box_id), super::takes(cfg.send))?;
    let prefix = format!("{}/", cfg.object_prefix(box_id));
    let mut done = Restored::default();
    let mut token: Option<String> = None;
    loop {
        let (page, next) = store.list(&prefix, token.as_deref())?;
        for item in page.iter().filter(|i| i.key.ends_with(&format!("/{MANIFEST_NAME}"))) {
            if item.size > MAX_MANIFEST_BYTES {
                bail!(DataLoss, "manifest {} is larger than {MAX_MANIFEST_BYTES} bytes", item.key);
            }
            let mut text = String::new();
            store
                .get(&item.key, MAX_MANIFEST_BYTES)?
                .read_to_string(&mut text)
                .map_err(|e| Error::io(format!("GET {}", item.key), e))?;
            let (from_box, rows) = parse_manifest(&item.key, &text)?;
            if from_box != box_id {
                return Err(err!(DataLoss, "manifest {} belongs to box {from_box:?}, not {box_id:?}", item.key));
            }
            for r in &rows {
                if index.insert_restored(root.id, target_id, r)? {
                    done.added += 1;
                } else {
                    done.known += 1;
                }
            }
            done.manifests += 1;
        }
        match next {
            Some(t) => token = Some(t),
            None => return Ok(done),
        }
    }
}
