//! `edgenvr export --camera ID --from T --to T -o FILE`: writes an export with the same code
//! the HTTP API serves (`-o -` writes to stdout, so `ssh box edgenvr export ... > clip.mp4`
//! works). The format follows the output's extension: `.mp4`, `.h264`/`.h265` (Annex B);
//! stdout defaults to MP4 unless `--format` says otherwise.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::export::{annexb::AnnexBFile, mp4::Mp4File, plan::make_plan, Format, VirtualFile};
use crate::index::Index;
use crate::storage::Storage;
use crate::time::parse_time;
use crate::{bail, err};
use std::io::Write;

/// Options of `export`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExportArgs {
    /// `--camera`.
    pub camera: Option<String>,
    /// `--from`.
    pub from: Option<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `-o`.
    pub output: Option<String>,
    /// `--format mp4|h264|h265`.
    pub format: Option<String>,
}

fn need<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str> {
    v.as_deref().ok_or_else(|| err!(InvalidArgument, "export needs {name}"))
}

/// Runs the export; returns the exit code.
pub fn run(config: &Config, a: &ExportArgs) -> Result<i32> {
    let camera = need(&a.camera, "--camera ID")?;
    let time = |v: &Option<String>, name: &str| -> Result<i64> {
        let s = need(v, name)?;
        parse_time(s).ok_or_else(|| err!(InvalidArgument, "{name} {s:?} is not RFC 3339 or Unix seconds"))
    };
    let (from, to) = (time(&a.from, "--from")?, time(&a.to, "--to")?);
    let output = need(&a.output, "-o FILE (or - for stdout)")?;
    let name = match (&a.format, output) {
        (Some(f), _) => f.clone(),
        (None, "-") => "mp4".into(),
        (None, o) => o.rsplit('.').next().unwrap_or("mp4").to_owned(),
    };
    let format = Format::from_name(&name)
        .ok_or_else(|| err!(InvalidArgument, "unknown export format {name:?}: use mp4, h264 or h265"))?;
    let index = Index::open(&config.index_path)?;
    let storage = Storage::open(&config.storage, &index)?;
    if !config.archive.is_empty() {
        // Footage only in the archive comes back first (docs/design/archive.md).
        storage.set_fetch_dir(crate::archive::fetch::cache_dir(&config.index_path));
        crate::archive::fetch::fetch_range(&index, &storage, &config.archive, (camera, from, to))?;
    }
    let plan = make_plan(&index, &storage, camera, from, to)?;
    if !format.carries(plan.codec) {
        bail!(
            InvalidArgument,
            "camera {camera} records {} in this range; write .{} or .mp4",
            plan.codec.as_str(),
            plan.codec.as_str()
        );
    }
    let file: Box<dyn VirtualFile> = match format {
        Format::Mp4 => Box::new(Mp4File::new(plan.with_audio())?),
        Format::H264 | Format::H265 => Box::new(AnnexBFile::new(plan)),
    };
    let mut out: Box<dyn Write> = if output == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(output).map_err(|e| Error::io(format!("creating {output}"), e))?)
    };
    let n = std::io::copy(&mut file.reader(0, file.len()), &mut out).map_err(|e| Error::io("writing the export", e))?;
    out.flush().map_err(|e| Error::io("writing the export", e))?;
    log::info!("exported {n} bytes of camera {camera}");
    Ok(0)
}
