//! What V4L2 hardware this board has: cameras with their formats, sizes and frame rates, and
//! memory-to-memory encoders. `edgenvr probe` prints it; the `auto` encoder choice uses
//! [`find_h264_encoder`]. Encoders are found by their capabilities (an M2M node whose coded
//! side offers H.264), never by a fixed path: `/dev/video11` on one kernel is another number
//! on the next.

use super::device::{buf_type, caps, Device, Fourcc};
use crate::error::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture;

/// Sizes tried inside a stepwise or continuous size range (webcams with discrete sizes list
/// their own).
const COMMON_SIZES: [(u32, u32); 8] =
    [(320, 240), (640, 360), (640, 480), (800, 600), (1024, 768), (1280, 720), (1600, 1200), (1920, 1080)];

/// Most sizes reported per format, so a driver with hundreds cannot flood the output.
const MAX_SIZES: usize = 32;

/// One picture size a camera offers, with its frame rates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeOffer {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates offered at this size, highest first (empty: the driver lists none).
    pub fps: Vec<f64>,
}

/// One format a camera offers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FormatOffer {
    /// Fourcc, e.g. `"YUYV"`.
    #[serde(serialize_with = "ser_fourcc")]
    pub fourcc: Fourcc,
    /// The driver's description.
    pub description: String,
    /// Sizes, largest first.
    pub sizes: Vec<SizeOffer>,
}

fn ser_fourcc<S: serde::Serializer>(f: &Fourcc, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(f)
}

fn ser_fourccs<S: serde::Serializer>(f: &[Fourcc], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(f.iter().map(|f| f.to_string()))
}

/// The two sides of a memory-to-memory device.
#[derive(Clone, Debug, Serialize)]
pub struct M2mInfo {
    /// Uses the multi-planar API (bcm2835-codec does).
    pub mplane: bool,
    /// Formats accepted on the OUTPUT queue (what goes in).
    #[serde(serialize_with = "ser_fourccs")]
    pub input: Vec<Fourcc>,
    /// Formats produced on the CAPTURE queue (what comes out).
    #[serde(serialize_with = "ser_fourccs")]
    pub output: Vec<Fourcc>,
}

impl M2mInfo {
    /// An encoder producing H.264 from raw pictures.
    pub fn is_h264_encoder(&self) -> bool {
        self.output.contains(&Fourcc::H264) && !self.input.contains(&Fourcc::H264)
    }
}

/// What a node is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A single-planar capture device: a camera edgenvr can record.
    Camera,
    /// A capture device that only speaks the multi-planar API (not supported as a camera).
    MplaneCamera,
    /// A memory-to-memory device (encoder, decoder, converter).
    MemToMem,
    /// Anything else (metadata nodes, outputs, radios).
    Other,
}

/// One `/dev/video*` node.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// Device node.
    pub path: PathBuf,
    /// Kernel driver.
    pub driver: String,
    /// Card name.
    pub card: String,
    /// Bus location.
    pub bus_info: String,
    /// What it is.
    pub kind: NodeKind,
    /// Formats (cameras).
    pub formats: Vec<FormatOffer>,
    /// Queues (memory-to-memory devices).
    pub m2m: Option<M2mInfo>,
    /// Why the node could not be read, if it could not.
    pub error: Option<String>,
}

/// Everything found.
#[derive(Clone, Debug, Serialize)]
pub struct Inventory {
    /// Every node, in numeric order.
    pub devices: Vec<Node>,
    /// The H.264 hardware encoder `encoder = "auto"` would use.
    pub h264_encoder: Option<PathBuf>,
}

/// The `/dev/video*` nodes in `dir`, in numeric order.
pub fn video_nodes(dir: &Path) -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix("video")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// Probes every video node under `/dev`.
pub fn inventory() -> Inventory {
    let devices: Vec<Node> = video_nodes(Path::new("/dev")).iter().map(|p| probe_node(p)).collect();
    let h264_encoder =
        devices.iter().find(|n| n.m2m.as_ref().is_some_and(M2mInfo::is_h264_encoder)).map(|n| n.path.clone());
    Inventory { devices, h264_encoder }
}

/// The first H.264 memory-to-memory encoder, if the board has one.
pub fn find_h264_encoder() -> Option<PathBuf> {
    video_nodes(Path::new("/dev")).into_iter().find(|p| {
        let Ok(dev) = Device::open(p) else { return false };
        m2m_info(&dev).is_ok_and(|m| m.is_some_and(|m| m.is_h264_encoder()))
    })
}

/// Describes one node; failures are reported in the node, not raised.
pub fn probe_node(path: &Path) -> Node {
    let mut node = Node {
        path: path.to_owned(),
        driver: String::new(),
        card: String::new(),
        bus_info: String::new(),
        kind: NodeKind::Other,
        formats: Vec::new(),
        m2m: None,
        error: None,
    };
    let r = (|| -> Result<()> {
        let dev = Device::open(path)?;
        let cap = dev.capability()?;
        node.driver = cap.driver;
        node.card = cap.card;
        node.bus_info = cap.bus_info;
        if let Some(m) = m2m_info(&dev)? {
            node.kind = NodeKind::MemToMem;
            node.m2m = Some(m);
        } else if cap.device_caps & caps::VIDEO_CAPTURE != 0 {
            node.kind = NodeKind::Camera;
            node.formats = camera_offers(&dev)?;
        } else if cap.device_caps & caps::VIDEO_CAPTURE_MPLANE != 0 {
            node.kind = NodeKind::MplaneCamera;
        }
        Ok(())
    })();
    if let Err(e) = r {
        node.error = Some(e.to_string());
    }
    node
}

/// The queues of a memory-to-memory device, or `None` if `dev` is not one.
pub fn m2m_info(dev: &Device) -> Result<Option<M2mInfo>> {
    let c = dev.capability()?.device_caps;
    let mplane = if c & caps::VIDEO_M2M_MPLANE != 0 {
        true
    } else if c & caps::VIDEO_M2M != 0 {
        false
    } else {
        return Ok(None);
    };
    let (out_t, cap_t) = if mplane {
        (buf_type::OUTPUT_MPLANE, buf_type::CAPTURE_MPLANE)
    } else {
        (buf_type::OUTPUT, buf_type::CAPTURE)
    };
    let input = dev.formats(out_t)?.into_iter().map(|(f, _)| f).collect();
    let output = dev.formats(cap_t)?.into_iter().map(|(f, _)| f).collect();
    Ok(Some(M2mInfo { mplane, input, output }))
}

/// A camera's formats with their sizes and frame rates (through `v4l`'s enumeration).
pub fn camera_offers(dev: &Device) -> Result<Vec<FormatOffer>> {
    let mut out = Vec::new();
    for (fourcc, description) in dev.formats(buf_type::CAPTURE)? {
        let v4l_cc = v4l::FourCC::new(&fourcc.0);
        let mut sizes = Vec::new();
        for fs in dev.v4l().enum_framesizes(v4l_cc).unwrap_or_default() {
            match fs.size {
                FrameSizeEnum::Discrete(d) => sizes.push((d.width, d.height)),
                FrameSizeEnum::Stepwise(s) => {
                    let fits = |w: u32, h: u32| {
                        (s.min_width..=s.max_width).contains(&w)
                            && (s.min_height..=s.max_height).contains(&h)
                            && (w - s.min_width) % s.step_width.max(1) == 0
                            && (h - s.min_height) % s.step_height.max(1) == 0
                    };
                    sizes.extend(COMMON_SIZES.iter().copied().filter(|&(w, h)| fits(w, h)));
                    sizes.push((s.max_width, s.max_height));
                }
            }
        }
        sizes.sort_by_key(|&(w, h)| std::cmp::Reverse((w as u64 * h as u64, w)));
        sizes.dedup();
        sizes.truncate(MAX_SIZES);
        let sizes = sizes
            .into_iter()
            .map(|(width, height)| SizeOffer { width, height, fps: frame_rates(dev, v4l_cc, width, height) })
            .collect();
        out.push(FormatOffer { fourcc, description, sizes });
    }
    Ok(out)
}

fn frame_rates(dev: &Device, cc: v4l::FourCC, w: u32, h: u32) -> Vec<f64> {
    let fps = |f: v4l::Fraction| (f.numerator > 0).then(|| f.denominator as f64 / f.numerator as f64);
    let mut rates: Vec<f64> = Vec::new();
    for iv in dev.v4l().enum_frameintervals(cc, w, h).unwrap_or_default() {
        match iv.interval {
            FrameIntervalEnum::Discrete(f) => rates.extend(fps(f)),
            // A range: its fastest and slowest ends, and the common rates between them.
            FrameIntervalEnum::Stepwise(s) => {
                let (fast, slow) = (fps(s.min).unwrap_or(0.0), fps(s.max).unwrap_or(0.0));
                rates.push(fast);
                rates.extend([30.0, 25.0, 15.0, 10.0, 5.0].into_iter().filter(|&r| r < fast && r > slow));
                rates.push(slow);
            }
        }
    }
    rates.retain(|r| r.is_finite() && *r > 0.0);
    rates.sort_by(|a, b| b.total_cmp(a));
    rates.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    rates
}

/// `edgenvr probe`'s text form.
pub fn render_text(inv: &Inventory) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if inv.devices.is_empty() {
        s.push_str("no V4L2 devices (/dev/video*)\n");
    }
    for n in &inv.devices {
        let _ = write!(s, "{}  {} ({})", n.path.display(), n.card, n.driver);
        if !n.bus_info.is_empty() {
            let _ = write!(s, "  {}", n.bus_info);
        }
        s.push('\n');
        if let Some(e) = &n.error {
            let _ = writeln!(s, "    error: {e}");
            continue;
        }
        match n.kind {
            NodeKind::Camera => {
                for f in &n.formats {
                    let _ = write!(s, "    camera format {} ({}):", f.fourcc, f.description);
                    for z in &f.sizes {
                        let rates: Vec<String> =
                            z.fps.iter().map(|r| format!("{}", (r * 100.0).round() / 100.0)).collect();
                        let _ = write!(s, " {}x{}@{}", z.width, z.height, rates.join("/"));
                    }
                    s.push('\n');
                }
            }
            NodeKind::MplaneCamera => s.push_str("    multi-planar capture device (not supported as a camera)\n"),
            NodeKind::MemToMem => {
                let m = n.m2m.as_ref().expect("set with the kind");
                let list = |v: &[Fourcc]| v.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" ");
                let role = if m.is_h264_encoder() { "H.264 encoder" } else { "memory-to-memory" };
                let _ = writeln!(
                    s,
                    "    {role}{}: {} -> {}",
                    if m.mplane { " (multi-planar)" } else { "" },
                    list(&m.input),
                    list(&m.output)
                );
            }
            NodeKind::Other => s.push_str("    not a camera or codec\n"),
        }
    }
    match &inv.h264_encoder {
        Some(p) => {
            let _ = writeln!(s, "hardware H.264 encoder: {} (encoder = \"auto\" uses it)", p.display());
        }
        None => s.push_str("hardware H.264 encoder: none (encoder = \"auto\" uses openh264)\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_sort_numerically_and_skip_other_names() {
        let d = tempfile::tempdir().unwrap();
        for n in ["video10", "video2", "video0", "videofoo", "media0", "video"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let names: Vec<_> = video_nodes(d.path()).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["video0", "video2", "video10"]);
    }

    #[test]
    fn an_encoder_is_raw_in_h264_out_not_a_decoder() {
        let enc = M2mInfo { mplane: true, input: vec![Fourcc::YU12, Fourcc::YUYV], output: vec![Fourcc::H264] };
        let dec = M2mInfo { mplane: true, input: vec![Fourcc::H264, Fourcc::MJPG], output: vec![Fourcc::YU12] };
        let fwht = M2mInfo { mplane: false, input: vec![Fourcc::YU12], output: vec![Fourcc::FWHT] };
        assert!(enc.is_h264_encoder());
        assert!(!dec.is_h264_encoder());
        assert!(!fwht.is_h264_encoder());
        let inv = Inventory {
            devices: vec![Node {
                path: "/dev/video11".into(),
                driver: "bcm2835-codec".into(),
                card: "bcm2835-codec-encode".into(),
                bus_info: "platform:bcm2835-codec".into(),
                kind: NodeKind::MemToMem,
                formats: vec![],
                m2m: Some(enc),
                error: None,
            }],
            h264_encoder: Some("/dev/video11".into()),
        };
        let text = render_text(&inv);
        assert!(text.contains("H.264 encoder (multi-planar): YU12 YUYV -> H264"), "{text}");
        let json = serde_json::to_value(&inv).unwrap();
        assert_eq!(json["devices"][0]["m2m"]["output"][0], "H264");
        assert_eq!(json["devices"][0]["kind"], "mem_to_mem");
    }
}
