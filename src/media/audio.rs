//! Camera audio as it is stored: one encoded audio frame with its wall-clock timestamp, and
//! the stream's description ([`AudioParams`]) that the audio sibling file starts with
//! (`docs/design/audio.md`). Audio is never decoded or re-encoded.

use std::sync::Arc;

/// The audio codecs recorded: what cameras send over RTSP and retina depacketizes with a
/// known frame layout. Others (LATM, Opus, G.726, ...) are not recorded: video only.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC (RFC 3640 `mpeg4-generic`), raw access units; the AudioSpecificConfig is in
    /// [`AudioParams::config`].
    Aac,
    /// G.711 µ-law, one byte per sample.
    Pcmu,
    /// G.711 A-law, one byte per sample.
    Pcma,
}

impl AudioCodec {
    /// The codec of an SDP encoding name (lower case, as retina gives it), if recorded.
    pub fn from_encoding(name: &str) -> Option<AudioCodec> {
        match name {
            "mpeg4-generic" => Some(AudioCodec::Aac),
            "pcmu" => Some(AudioCodec::Pcmu),
            "pcma" => Some(AudioCodec::Pcma),
            _ => None,
        }
    }

    /// Short name for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Pcmu => "pcmu",
            AudioCodec::Pcma => "pcma",
        }
    }

    /// The byte that names the codec in the sibling file's header record.
    fn code(self) -> u8 {
        match self {
            AudioCodec::Aac => 1,
            AudioCodec::Pcmu => 2,
            AudioCodec::Pcma => 3,
        }
    }

    fn from_code(c: u8) -> Option<AudioCodec> {
        [AudioCodec::Aac, AudioCodec::Pcmu, AudioCodec::Pcma].into_iter().find(|a| a.code() == c)
    }
}

/// What a player needs to decode a stored audio stream. Written as the first record of every
/// audio sibling file, so the file describes itself (no index column needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioParams {
    /// The codec.
    pub codec: AudioCodec,
    /// Samples per second (the RTP clock rate for these codecs).
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
    /// The AAC AudioSpecificConfig (empty for G.711).
    pub config: Vec<u8>,
}

/// The magic that starts a header record's payload: "edgenvr audio, layout 1".
const HEADER_MAGIC: &[u8; 4] = b"EAU1";

/// The most a header record's payload may be: the magic, codec, rate, channels and an
/// AudioSpecificConfig (a few bytes; 64 leaves room for any extension).
pub const MAX_HEADER_LEN: usize = 4 + 1 + 4 + 2 + 64;

impl AudioParams {
    /// The header record's payload: `"EAU1" | codec u8 | rate u32 BE | channels u16 BE |
    /// config` (`docs/design/audio.md`).
    pub fn to_header(&self) -> Vec<u8> {
        let mut v = HEADER_MAGIC.to_vec();
        v.push(self.codec.code());
        v.extend_from_slice(&self.sample_rate.to_be_bytes());
        v.extend_from_slice(&self.channels.to_be_bytes());
        v.extend_from_slice(&self.config);
        v
    }

    /// Reads a header record's payload; `None` if it is not one (a damaged or foreign file).
    pub fn from_header(p: &[u8]) -> Option<AudioParams> {
        if p.len() < 11 || p.len() > MAX_HEADER_LEN || &p[..4] != HEADER_MAGIC {
            return None;
        }
        let codec = AudioCodec::from_code(p[4])?;
        let sample_rate = u32::from_be_bytes(p[5..9].try_into().ok()?);
        let channels = u16::from_be_bytes(p[9..11].try_into().ok()?);
        if sample_rate == 0 || channels == 0 {
            return None;
        }
        Some(AudioParams { codec, sample_rate, channels, config: p[11..].to_vec() })
    }
}

/// One encoded audio frame (an AAC access unit, or a packet's G.711 samples) stamped on the
/// video's wall clock (`docs/design/time.md` rule 9).
#[derive(Clone, Debug)]
pub struct AudioFrame {
    /// µs since the epoch.
    pub ts_us: i64,
    /// The stream's description, shared by all its frames.
    pub params: Arc<AudioParams>,
    /// The encoded bytes.
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let p = AudioParams { codec: AudioCodec::Aac, sample_rate: 48_000, channels: 1, config: vec![0x11, 0x88] };
        assert_eq!(AudioParams::from_header(&p.to_header()), Some(p.clone()));
        let mut bad = p.to_header();
        bad[4] = 9;
        assert_eq!(AudioParams::from_header(&bad), None);
        assert_eq!(AudioParams::from_header(b"EAU1"), None);
        assert_eq!(AudioParams::from_header(&[0x41; 20]), None);
        assert_eq!(AudioParams::from_header(&[0; 200]), None);
    }
}
