//! What the Rust benchmarks share.

use edgenvr::media::h26x::Codec;

/// Real H.264 parameter sets (SPS, PPS) from openh264, for synthetic frames that exports
/// and the live view can describe (their picture size is read from the SPS).
pub fn openh264_parameter_sets() -> Vec<Vec<u8>> {
    let mut enc = edgenvr::encode::software::SoftwareEncoder::new(edgenvr::encode::software::SoftwareEncoderConfig {
        bitrate: 200_000,
        fps: 10,
        keyframe_interval: 10,
    })
    .unwrap();
    let key = enc.encode(&edgenvr::encode::yuv::I420::new(64, 48), 0).unwrap().unwrap();
    key.nals().filter(|n| Codec::H264.classify(n).is_parameter_set()).map(|n| n.to_vec()).collect()
}
