//! What the export routes share with the others: the camera lookup, and an export of a
//! range as a file reply (`export.*`, PyNVR's range and minute routes).

use super::respond::Reply;
use super::App;
use crate::error::{Error, ErrorKind, Result};
use crate::export::{annexb::AnnexBFile, mp4::Mp4File, plan::make_plan, Format, VirtualFile};

/// The camera with this id: a configured one, or one removed over the API whose footage
/// the index still holds (browsable and exportable until the reaper takes it); 404 if
/// neither.
pub(crate) async fn camera_id(app: &App, id: &str) -> Result<String> {
    let not_found = || Error::new(ErrorKind::NotFound, format!("no camera {id:?}"));
    if let Some(c) = app.state.camera(id) {
        return Ok(c.config.id.clone());
    }
    if !crate::config::valid_camera_id(id) {
        return Err(not_found());
    }
    let (state, owned) = (app.state.clone(), id.to_owned());
    let rows = app
        .pool
        .run(move || state.readers.chunks_for_camera_page(&owned, (i64::MIN, i64::MAX), (i64::MIN, i64::MIN), 1, false))
        .await??;
    if rows.is_empty() {
        return Err(not_found());
    }
    Ok(id.to_owned())
}

/// An export of `camera` from `from` to `to` as a file reply.
pub(crate) async fn export(app: &App, camera: String, from: i64, to: i64, format: Format) -> Result<Reply> {
    let state = app.state.clone();
    app.pool
        .run(move || {
            // Footage only in the archive is fetched back first (bounded: docs/design/archive.md).
            crate::archive::fetch::fetch_range(&state.index, &state.storage, &state.archive, (&camera, from, to))?;
            let plan = make_plan(&state.readers, &state.storage, &camera, from, to)?;
            if !format.carries(plan.codec) {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "camera {camera} records {} here; ask for /api/v1/cameras/{camera}/export.{} (or export.mp4)",
                        plan.codec.as_str().to_ascii_uppercase().replace("H26", "H.26"),
                        plan.codec.as_str()
                    ),
                ));
            }
            let stamp = crate::time::Civil::from_us(from);
            let name = format!("{camera}-{}-{}.{}", stamp.yyyymmdd(), stamp.hhmm(), format.extension(plan.codec));
            let file: Box<dyn VirtualFile> = match format {
                Format::Mp4 => Box::new(Mp4File::new(plan.with_audio())?),
                Format::H264 | Format::H265 => Box::new(AnnexBFile::new(plan)),
            };
            Ok(Reply::File(file, name))
        })
        .await?
}
