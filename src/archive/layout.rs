//! Object keys and manifests: the bucket's layout (`docs/design/archive.md`).
//!
//! - `{prefix}/{box_id}/{camera}/{YYYYMMDD}/{camera}.{YYYYMMDD}.{HHMM}[.n].chunk`: a chunk
//!   file byte for byte, under the relative path it has on disk (PyNVR's layout, so its
//!   tools read a day straight from the bucket). A name another chunk of this box already
//!   holds in the bucket (two storage roots, the same minute) gets the next free `.n`.
//! - `{prefix}/{box_id}/{camera}/{YYYYMMDD}/{camera}.{YYYYMMDD}.{HHMM}[.n].audio`: the chunk's
//!   audio sibling byte for byte, when it had one (`docs/design/audio.md`), named from the
//!   chunk's key as on disk (PyNVR's tools list `*.chunk` and never see it).
//! - `{prefix}/{box_id}/{camera}/{YYYYMMDD}/manifest.jsonl`: that day's index rows, one JSON
//!   object a line after a header line, rewritten as the day grows; an index is rebuilt from
//!   these alone (`edgenvr archive restore`). A line lists the sibling's length and MD5
//!   (`audio_bytes`, `audio_md5`) only when one was archived, so manifests written before
//!   audio was archived read the same (no audio), and older readers skip the two fields.

use crate::chunk::path::{parse_rel_path, rel_path};
use crate::err;
use crate::error::Result;
use crate::index::archive::{ArchivedRow, AudioCopy, RestoredChunk};
use crate::media::h26x::Codec;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The manifest format's version (the header's `edgenvr_manifest`).
pub const MANIFEST_VERSION: u32 = 1;
/// The file name of a day's manifest.
pub const MANIFEST_NAME: &str = "manifest.jsonl";
/// Most bytes of one manifest: a day of one-minute chunks is about 0.6 MB.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The key of a chunk at `rel` with collision number `extra` (0: its own name).
pub fn chunk_key(object_prefix: &str, rel: &Path, extra: u32) -> Option<String> {
    let p = parse_rel_path(rel)?;
    let rel = if extra == 0 { rel.to_owned() } else { rel_path(&p.camera, p.minute_us, p.seq + extra) };
    Some(format!("{object_prefix}/{}", rel.to_str()?))
}

/// The key of the manifest of `camera` on UTC `day`.
pub fn manifest_key(object_prefix: &str, camera: &str, day: &str) -> String {
    format!("{object_prefix}/{camera}/{day}/{MANIFEST_NAME}")
}

#[derive(Serialize, Deserialize)]
struct Header {
    edgenvr_manifest: u32,
    box_id: String,
    camera: String,
    day: String,
    chunks: usize,
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    rel_path: String,
    start_us: i64,
    end_us: i64,
    bytes: u64,
    frames: u64,
    records: i64,
    codec: String,
    /// The index's keyframe blob (LEB128 deltas from start_us), base64.
    keyframes: String,
    md5: String,
    /// The audio sibling's length and MD5, when one was archived with the chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audio_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audio_md5: Option<String>,
}

/// The manifest of one camera-day: a header line, then one line per chunk.
pub fn manifest(box_id: &str, camera: &str, day: &str, rows: &[ArchivedRow]) -> Result<Vec<u8>> {
    let head = Header {
        edgenvr_manifest: MANIFEST_VERSION,
        box_id: box_id.into(),
        camera: camera.into(),
        day: day.into(),
        chunks: rows.len(),
    };
    let mut out = serde_json::to_vec(&head).map_err(|e| err!(Internal, "manifest header").with_source(e))?;
    for r in rows {
        let c = &r.chunk;
        let line = Line {
            key: r.key.clone(),
            rel_path: c.rel_path.to_string_lossy().into_owned(),
            start_us: c.start_us,
            end_us: c.end_us,
            bytes: c.bytes,
            frames: c.frames,
            records: c.records.map_or(-1, |v| v as i64),
            codec: c.codec.as_str().into(),
            keyframes: base64::engine::general_purpose::STANDARD
                .encode(crate::index::keyframes::encode(c.start_us, &c.keyframes)),
            md5: r.md5.clone(),
            audio_bytes: r.audio.as_ref().map(|a| a.bytes),
            audio_md5: r.audio.as_ref().map(|a| a.md5.clone()),
        };
        out.push(b'\n');
        serde_json::to_writer(&mut out, &line).map_err(|e| err!(Internal, "manifest line").with_source(e))?;
        if out.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(err!(Internal, "manifest of {camera} on {day} is over {MAX_MANIFEST_BYTES} bytes"));
        }
    }
    out.push(b'\n');
    Ok(out)
}

/// Reads a manifest back into rows; `key` names it in errors.
pub fn parse_manifest(key: &str, text: &str) -> Result<(String, Vec<RestoredChunk>)> {
    let bad = |what: &str| err!(DataLoss, "manifest {key}: {what}");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let head: Header = serde_json::from_str(lines.next().ok_or_else(|| bad("empty"))?)
        .map_err(|e| bad("header does not parse").with_source(e))?;
    if head.edgenvr_manifest != MANIFEST_VERSION {
        return Err(bad(&format!("format version {} is unknown to this edgenvr", head.edgenvr_manifest)));
    }
    let mut out = Vec::with_capacity(head.chunks.min(4096));
    for l in lines {
        let line: Line = serde_json::from_str(l).map_err(|e| bad("a line does not parse").with_source(e))?;
        let codec = Codec::from_name(&line.codec).ok_or_else(|| bad("unknown codec"))?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&line.keyframes)
            .map_err(|e| bad("keyframes are not base64").with_source(e))?;
        let keyframes = crate::index::keyframes::decode(line.start_us, &blob).ok_or_else(|| bad("keyframe table"))?;
        let parsed = parse_rel_path(Path::new(&line.rel_path)).ok_or_else(|| bad("a chunk path is not a chunk's"))?;
        if parsed.camera != head.camera {
            return Err(bad("a chunk of another camera"));
        }
        let audio = match (line.audio_bytes, line.audio_md5) {
            (Some(bytes), Some(md5)) => Some(AudioCopy { bytes, md5 }),
            (None, None) => None,
            _ => return Err(bad("an audio length without its MD5 or the other way round")),
        };
        out.push(RestoredChunk {
            camera: head.camera.clone(),
            rel_path: line.rel_path,
            start_us: line.start_us,
            end_us: line.end_us,
            bytes: line.bytes,
            frames: line.frames,
            records: u64::try_from(line.records).ok(),
            codec,
            keyframes,
            key: line.key,
            md5: line.md5,
            audio,
            day: head.day.clone(),
        });
    }
    if out.len() != head.chunks {
        return Err(bad("fewer lines than its header says (cut short?)"));
    }
    Ok((head.box_id, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{ChunkRow, ChunkState};

    #[test]
    fn keys_follow_the_disk_layout_and_manifests_round_trip() {
        let rel = Path::new("door/20261121/door.20261121.1456.chunk");
        assert_eq!(chunk_key("site/box1", rel, 0).unwrap(), "site/box1/door/20261121/door.20261121.1456.chunk");
        assert_eq!(chunk_key("box1", rel, 2).unwrap(), "box1/door/20261121/door.20261121.1456.2.chunk");
        assert!(chunk_key("box1", Path::new("../etc/passwd"), 0).is_none());
        let chunk = ChunkRow {
            id: 7,
            camera: "door".into(),
            root_id: 1,
            rel_path: rel.to_owned(),
            start_us: 1_795_272_960_000_000,
            end_us: 1_795_273_019_900_000,
            bytes: 123_456,
            frames: 600,
            codec: Codec::H264,
            state: ChunkState::Sealed,
            keyframes: vec![(1_795_272_960_000_000, 0), (1_795_272_962_000_000, 4_000)],
            records: Some(1_250),
        };
        let row = ArchivedRow {
            chunk,
            key: "box1/door/20261121/door.20261121.1456.chunk".into(),
            md5: "ab".into(),
            audio: None,
        };
        let mut with_audio = row.clone();
        with_audio.chunk.start_us += 60_000_000;
        with_audio.key = "box1/door/20261121/door.20261121.1457.chunk".into();
        with_audio.audio = Some(AudioCopy { bytes: 9_876, md5: "cd".into() });
        let m = manifest("box1", "door", "20261121", &[row.clone(), with_audio]).unwrap();
        let text = String::from_utf8(m).unwrap();
        let (box_id, rows) = parse_manifest("k", &text).unwrap();
        assert_eq!(box_id, "box1");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].audio, Some(AudioCopy { bytes: 9_876, md5: "cd".into() }));
        assert_eq!(rows[0].audio, None);
        // A chunk without a sibling is listed exactly as before audio was archived.
        assert!(!text.lines().nth(1).unwrap().contains("audio"), "{text}");
        let r = &rows[0];
        assert_eq!(
            (r.start_us, r.end_us, r.bytes, r.frames, r.records),
            (row.chunk.start_us, row.chunk.end_us, 123_456, 600, Some(1_250))
        );
        assert_eq!(r.keyframes, row.chunk.keyframes);
        assert_eq!((r.key.as_str(), r.md5.as_str(), r.day.as_str()), (row.key.as_str(), "ab", "20261121"));
        // A manifest cut short is refused, not half-restored.
        let cut = text.lines().next().unwrap();
        assert!(parse_manifest("k", cut).unwrap_err().to_string().contains("cut short"));
        // Half an audio copy is refused too: it could not be checked when fetched back.
        let half = text.replace(",\"audio_md5\":\"cd\"", "");
        assert_ne!(half, text);
        assert!(parse_manifest("k", &half).unwrap_err().to_string().contains("audio length"));
    }

    /// A manifest written before audio was archived (no audio fields) restores as before.
    #[test]
    fn manifests_without_audio_fields_still_read() {
        let text = concat!(
            r#"{"edgenvr_manifest":1,"box_id":"b","camera":"door","day":"20261121","chunks":1}"#,
            "\n",
            r#"{"key":"b/door/20261121/door.20261121.1456.chunk","rel_path":"door/20261121/door.20261121.1456.chunk","#,
            r#""start_us":1795272960000000,"end_us":1795273019900000,"bytes":10,"frames":1,"records":3,"#,
            r#""codec":"h264","keyframes":"AAA=","md5":"ab"}"#,
            "\n"
        );
        let (_, rows) = parse_manifest("k", text).unwrap();
        assert_eq!((rows.len(), rows[0].audio.as_ref()), (1, None));
    }
}
