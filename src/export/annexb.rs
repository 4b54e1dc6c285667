//! The raw elementary stream of a [`Plan`]: every record with a 4-byte start code, exactly
//! what `ffmpeg -f h264` (or `-f hevc`) reads. Same length as the MP4's `mdat` payload.

use super::plan::Plan;
use super::stream::{Layout, Part, PartReader, Timing};
use super::VirtualFile;
use crate::media::h26x::Codec;

/// An Annex B export.
pub struct AnnexBFile {
    layout: std::sync::Arc<Layout>,
    etag: String,
}

impl AnnexBFile {
    /// Lays out the stream of `plan`.
    pub fn new(plan: Plan) -> AnnexBFile {
        let etag = format!("\"annexb-{:016x}\"", super::fnv1a(&[plan.camera.as_bytes(), &plan.segment_key(),]));
        let timing = Timing { base_us: plan.first_ts(), last_duration: 1 };
        let payload = Part::Payload { start_codes: true, segments: 0..plan.segments.len() };
        AnnexBFile { layout: std::sync::Arc::new(Layout::new(plan, vec![payload], timing)), etag }
    }
}

impl VirtualFile for AnnexBFile {
    fn len(&self) -> u64 {
        self.layout.len()
    }
    fn etag(&self) -> String {
        self.etag.clone()
    }
    fn content_type(&self) -> &'static str {
        match self.layout.plan.codec {
            Codec::H264 => "video/h264",
            Codec::H265 => "video/h265",
        }
    }
    fn reader(&self, start: u64, end: u64) -> Box<dyn std::io::Read + Send> {
        Box::new(PartReader::new(self.layout.clone(), start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::mp4::tests::{read_all, record, T0};
    use crate::export::plan::make_plan;

    #[test]
    fn annex_b_export_matches_the_chunks_with_start_codes() {
        let dir = tempfile::tempdir().unwrap();
        let (index, storage) = record(dir.path());
        let plan = make_plan(&index, &storage, "cam", T0, T0 + 30_000_000).unwrap();
        let records: u64 = plan.segments.iter().map(|s| s.records).sum();
        let f = AnnexBFile::new(plan);
        let all = read_all(&f, 0, f.len());
        let nals = crate::media::h26x::split_annex_b(&all);
        assert_eq!(nals.len() as u64, records);
        assert_eq!(read_all(&f, 100, 200), all[100..200]);
    }
}
