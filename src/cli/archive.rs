//! `edgenvr archive status|restore`: the off-box archive from the command line. Both read
//! the index and the config directly, so they work while the service runs (SQLite's WAL
//! lets a second process read and write) and on a laptop that never recorded.

#![allow(clippy::print_stdout)] // the CLI talks to people on stdout

use crate::archive::settings::ArchiveConfig;
use crate::config::Config;
use crate::error::Result;
use crate::index::Index;
use crate::storage::Storage;
use crate::{bail, err};

/// Options of `archive`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ArchiveArgs {
    /// `status` or `restore`.
    pub action: Option<String>,
    /// `--box ID`: restore another box's footage (default: this box's `box_id`).
    pub box_id: Option<String>,
    /// `--target N`: which `[[archive]]` (from 0; default 0).
    pub target: Option<String>,
}

fn target<'a>(config: &'a Config, a: &ArchiveArgs) -> Result<&'a ArchiveConfig> {
    let n: usize = match &a.target {
        None => 0,
        Some(t) => t.parse().map_err(|_| err!(InvalidArgument, "--target {t:?} is not a number"))?,
    };
    config.archive.get(n).ok_or_else(|| err!(InvalidArgument, "the config has no [[archive]] number {n} (from 0)"))
}

/// Runs `archive`; returns the exit code (status: 1 when a target is unhealthy).
pub fn run(config: &Config, a: &ArchiveArgs) -> Result<i32> {
    if config.archive.is_empty() {
        bail!(InvalidArgument, "the config has no [[archive]] target");
    }
    let index = Index::open(&config.index_path)?;
    match a.action.as_deref() {
        Some("status") => {
            let now = crate::time::now_us();
            let mut code = 0;
            for t in crate::archive::status::targets(&index, &config.archive, &config.server.box_id)? {
                code = code.max(t.unhealthy(now).is_some() as i32);
                for line in crate::archive::status::describe(&t, now) {
                    println!("{line}");
                }
            }
            Ok(code)
        }
        Some("restore") => {
            let cfg = target(config, a)?;
            let box_id = a.box_id.as_deref().unwrap_or(&config.server.box_id);
            let storage = Storage::open(&config.storage, &index)?;
            let r = crate::archive::restore::restore(&index, &storage, cfg, box_id)?;
            println!(
                "restored {} chunks of box {box_id} from {} manifests ({} already known)",
                r.added, r.manifests, r.known
            );
            Ok(0)
        }
        _ => bail!(InvalidArgument, "archive needs `status` or `restore`"),
    }
}
