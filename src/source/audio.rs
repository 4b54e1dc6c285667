//! A camera's audio over RTSP (`docs/design/audio.md`): which SDP stream to record, its
//! description, and its timestamps on the video's wall clock (`docs/design/time.md` rule 9).
//!
//! Cost: no thread and no queue of its own; frames ride in the video's batches (their bytes
//! count against the batch cap), about 16 KB/s for 128 kbit/s AAC and 8 KB/s for G.711.

use super::clock::StreamClock;
use crate::media::audio::{AudioCodec, AudioFrame, AudioParams};
use retina::codec::ParametersRef;
use std::sync::Arc;

/// Audio further than this from the video's frontier is off the video's timeline (a
/// camera whose audio and video RTP clocks disagree): dropped and counted, never allowed to
/// move the video's timestamps.
pub const MAX_AV_SKEW_US: i64 = 1_000_000;

/// The first audio stream of a codec we record: its index and codec.
pub fn pick(streams: &[retina::client::Stream]) -> Option<(usize, AudioCodec)> {
    streams
        .iter()
        .enumerate()
        .filter(|(_, s)| s.media() == "audio")
        .find_map(|(i, s)| Some((i, AudioCodec::from_encoding(s.encoding_name())?)))
}

/// The stream's description once set up: AAC needs its AudioSpecificConfig from the SDP
/// (`None` without one: the stream cannot be described, so it is not recorded); G.711 is
/// described by its clock rate and channels.
pub fn params(stream: &retina::client::Stream, codec: AudioCodec) -> Option<AudioParams> {
    let channels = stream.channels().map_or(1, |c| c.get());
    match (codec, stream.parameters()) {
        (AudioCodec::Aac, Some(ParametersRef::Audio(p))) if !p.extra_data().is_empty() => Some(AudioParams {
            codec,
            sample_rate: p.clock_rate(),
            channels: p.channels().get(),
            config: p.extra_data().to_vec(),
        }),
        (AudioCodec::Aac, _) => None,
        (AudioCodec::Pcmu | AudioCodec::Pcma, _) => {
            Some(AudioParams { codec, sample_rate: stream.clock_rate_hz(), channels, config: Vec::new() })
        }
    }
}

/// Stamps an audio frame whose RTP time is `src_us` after PLAY (retina's `elapsed`, which
/// RTP-Info makes relative to the same start as the video's) on the video's clock (rule 9):
/// the video frontier's timestamp plus the audio's offset from it. `None` before the first
/// video frame, or when the audio is more than [`MAX_AV_SKEW_US`] off the video's timeline.
pub fn stamp(video: &StreamClock, src_us: i64) -> Option<i64> {
    let (v_src, v_ts) = video.frontier()?;
    let off = src_us - v_src;
    (off.abs() <= MAX_AV_SKEW_US).then_some(v_ts + off)
}

/// The frame to send: its bytes, stamped by [`stamp`].
pub fn frame(params: &Arc<AudioParams>, ts_us: i64, data: &[u8]) -> AudioFrame {
    AudioFrame { ts_us, params: params.clone(), data: data.to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `audio` is on by default, `false` turns it off, and it is an error where no RTSP
    /// camera could send audio.
    #[test]
    fn the_audio_key_is_checked() {
        use crate::config::{Config, SourceConfig};
        let parse = |cam: &str| Config::parse(&format!("[[storage]]\npath = \"/x\"\n[[camera]]\nid = \"a\"\n{cam}"));
        let audio = |cam: &str| match parse(cam).unwrap().cameras[0].source {
            SourceConfig::Rtsp(ref r) => r.audio,
            _ => unreachable!(),
        };
        assert!(audio("url = \"rtsp://h/s\"\n"));
        assert!(!audio("url = \"rtsp://h/s\"\naudio = false\n"));
        let e = parse("source = \"testsrc\"\naudio = true\n").unwrap_err();
        assert!(e.to_string().contains("camera[0].audio"), "{e}");
        assert!(parse("url = \"rtsp://h/s\"\naudio = \"yes\"\n").is_err());
    }

    #[test]
    fn audio_follows_the_video_frontier_and_is_dropped_far_off_it() {
        let mut v = StreamClock::new(None, true);
        assert_eq!(stamp(&v, 0), None, "no video yet: nothing to anchor on");
        let t0 = v.ts_at_wall(1_000_000, 5_000_000_000);
        assert_eq!(stamp(&v, 1_020_000), Some(t0 + 20_000));
        assert_eq!(stamp(&v, 990_000), Some(t0 - 10_000));
        assert_eq!(stamp(&v, 1_000_000 + MAX_AV_SKEW_US + 1), None);
        let t1 = v.ts_at_wall(1_033_333, 5_000_033_333);
        assert_eq!(stamp(&v, 1_040_000), Some(t1 + 6_667));
    }
}
