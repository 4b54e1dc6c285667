//! Which format, size and frame rate to ask a camera for, from what it offers and what the
//! config wants. Pure, so every rule is unit-tested without a device.
//!
//! Rules, in order (see `docs/design/v4l2.md`):
//! 1. Only formats edgenvr can record: H.264 (stored as is), YUYV, NV12, YU12 (encoded) and
//!    MJPEG (decoded, then encoded). `format` in the config narrows this to one.
//! 2. Size: the configured one, exactly; otherwise the largest up to 1920x1080 among the
//!    sizes that reach a usable rate (15 fps, or the configured rate if lower), so a webcam
//!    whose raw 1080p runs at 5 fps records 1080p MJPEG at 30 instead.
//! 3. Rate: the configured one, or 30; the fastest each format offers at that size without
//!    exceeding it.
//! 4. Between formats: the higher achievable rate wins, then H.264 > YUYV > NV12 > YU12 >
//!    MJPEG (no re-encode first, then no JPEG decode).

use crate::kernel::v4l2::probe::FormatOffer;
use crate::kernel::v4l2::Fourcc;

/// Formats edgenvr records, most preferred first.
pub const SUPPORTED: [Fourcc; 5] = [Fourcc::H264, Fourcc::YUYV, Fourcc::NV12, Fourcc::YU12, Fourcc::MJPG];

/// Largest default picture (larger sizes only when configured).
const DEFAULT_MAX_PIXELS: u64 = 1920 * 1080;
/// Default frame rate.
const DEFAULT_FPS: f64 = 30.0;
/// A size whose best rate is below this (or the configured rate, if lower) is not chosen by
/// default when another size reaches it.
const USABLE_FPS: f64 = 15.0;

/// What the config asks for (all optional).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Wanted {
    /// Format.
    pub format: Option<Fourcc>,
    /// Size.
    pub size: Option<(u32, u32)>,
    /// Frame rate.
    pub fps: Option<u32>,
}

/// The mode to set.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Format.
    pub fourcc: Fourcc,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Rate to request (`None`: the driver lists no rates; leave its default).
    pub fps: Option<f64>,
}

fn rank(f: Fourcc) -> usize {
    SUPPORTED.iter().position(|&s| s == f).unwrap_or(usize::MAX)
}

fn list(v: impl Iterator<Item = String>) -> String {
    v.collect::<Vec<_>>().join(", ")
}

/// The best rate not above `target` (or the slowest, if all are faster).
fn achievable(rates: &[f64], target: f64) -> Option<f64> {
    let under = rates
        .iter()
        .copied()
        .filter(|&r| r <= target + 1e-6)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    under.or_else(|| rates.iter().copied().reduce(f64::min))
}

/// Chooses the mode; the error explains what the camera offers instead.
pub fn choose(offers: &[FormatOffer], want: &Wanted) -> Result<Choice, String> {
    let offered = || list(offers.iter().map(|o| o.fourcc.to_string()));
    let formats: Vec<&FormatOffer> =
        offers.iter().filter(|o| SUPPORTED.contains(&o.fourcc) && want.format.is_none_or(|f| f == o.fourcc)).collect();
    if formats.is_empty() {
        return Err(match want.format {
            Some(f) if !SUPPORTED.contains(&f) => {
                format!("format {f} is not one edgenvr records ({})", list(SUPPORTED.iter().map(|f| f.to_string())))
            }
            Some(f) => format!("the camera does not offer format {f} (it offers {})", offered()),
            None => format!("the camera offers no format edgenvr records (it offers {})", offered()),
        });
    }
    let target = want.fps.map_or(DEFAULT_FPS, f64::from);
    // Every (format, size) pair with the rate it can reach.
    let pairs: Vec<(Fourcc, u32, u32, Option<f64>)> = formats
        .iter()
        .flat_map(|o| o.sizes.iter().map(move |s| (o.fourcc, s.width, s.height, achievable(&s.fps, target))))
        .collect();
    let (width, height) = match want.size {
        Some((w, h)) => {
            if !pairs.iter().any(|p| (p.1, p.2) == (w, h)) {
                let mut sizes: Vec<String> = pairs.iter().map(|p| format!("{}x{}", p.1, p.2)).collect();
                sizes.dedup();
                return Err(format!("the camera does not offer {w}x{h} (it offers {})", sizes.join(", ")));
            }
            (w, h)
        }
        None => {
            let usable = USABLE_FPS.min(target);
            let reaches = |p: &&(Fourcc, u32, u32, Option<f64>)| p.3.is_none_or(|r| r + 1e-6 >= usable);
            let pool: Vec<_> = if pairs.iter().any(|p| reaches(&p)) {
                pairs.iter().filter(reaches).collect()
            } else {
                pairs.iter().collect()
            };
            let area = |p: &(Fourcc, u32, u32, Option<f64>)| p.1 as u64 * p.2 as u64;
            let best = pool
                .iter()
                .filter(|p| area(p) <= DEFAULT_MAX_PIXELS)
                .max_by_key(|p| (area(p), p.1))
                .or_else(|| pool.iter().min_by_key(|p| area(p)))
                .ok_or_else(|| format!("the camera lists no sizes for {}", offered()))?;
            (best.1, best.2)
        }
    };
    let best = pairs
        .iter()
        .filter(|p| (p.1, p.2) == (width, height))
        .max_by(|a, b| {
            let ra = a.3.unwrap_or(target);
            let rb = b.3.unwrap_or(target);
            ra.total_cmp(&rb).then(rank(b.0).cmp(&rank(a.0)))
        })
        .expect("the size was taken from these pairs");
    Ok(Choice { fourcc: best.0, width, height, fps: best.3 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::v4l2::probe::SizeOffer;

    fn offer(fourcc: Fourcc, sizes: &[(u32, u32, &[f64])]) -> FormatOffer {
        FormatOffer {
            fourcc,
            description: String::new(),
            sizes: sizes.iter().map(|&(width, height, fps)| SizeOffer { width, height, fps: fps.to_vec() }).collect(),
        }
    }

    /// A typical UVC webcam: raw YUYV is slow at high resolutions, MJPEG is fast everywhere.
    fn webcam() -> Vec<FormatOffer> {
        vec![
            offer(Fourcc::YUYV, &[(1920, 1080, &[5.0]), (1280, 720, &[10.0]), (640, 480, &[30.0, 15.0])]),
            offer(Fourcc::MJPG, &[(1920, 1080, &[30.0, 15.0]), (1280, 720, &[30.0]), (640, 480, &[30.0])]),
        ]
    }

    #[test]
    fn webcam_default_is_1080p30_mjpeg_not_1080p5_raw() {
        let c = choose(&webcam(), &Wanted::default()).unwrap();
        assert_eq!(c, Choice { fourcc: Fourcc::MJPG, width: 1920, height: 1080, fps: Some(30.0) });
    }

    #[test]
    fn raw_wins_a_tie_and_config_narrows_the_format() {
        let want = Wanted { size: Some((640, 480)), ..Wanted::default() };
        assert_eq!(choose(&webcam(), &want).unwrap().fourcc, Fourcc::YUYV);
        let want = Wanted { format: Some(Fourcc::YUYV), ..Wanted::default() };
        // Only YUYV: 640x480 is the largest size reaching 15 fps.
        let c = choose(&webcam(), &want).unwrap();
        assert_eq!((c.width, c.height, c.fps), (640, 480, Some(30.0)));
        // A configured rate below the usable floor lets the big slow size in.
        let want = Wanted { format: Some(Fourcc::YUYV), fps: Some(5), ..Wanted::default() };
        let c = choose(&webcam(), &want).unwrap();
        assert_eq!((c.width, c.height, c.fps), (1920, 1080, Some(5.0)));
    }

    #[test]
    fn h264_cameras_are_taken_as_is() {
        let mut offers = webcam();
        offers.push(offer(Fourcc::H264, &[(1920, 1080, &[30.0]), (1280, 720, &[30.0])]));
        let c = choose(&offers, &Wanted::default()).unwrap();
        assert_eq!(c.fourcc, Fourcc::H264);
        // A lower configured rate picks the best rate not above it.
        let want = Wanted { fps: Some(20), ..Wanted::default() };
        assert_eq!(choose(&webcam(), &want).unwrap().fps, Some(15.0));
    }

    /// vivid's list (from the arm64 VM): many formats, most unsupported, discrete sizes.
    #[test]
    fn vivid_like_offers_choose_yuyv_at_the_largest_usable_size() {
        let sizes: &[(u32, u32, &[f64])] = &[
            (3840, 2160, &[2.5]),
            (1920, 1080, &[5.0]),
            (1280, 720, &[12.5, 5.0]),
            (640, 480, &[25.0, 12.5, 5.0]),
            (640, 360, &[25.0, 12.5, 5.0]),
            (320, 180, &[60.0, 25.0]),
        ];
        let offers = vec![
            offer(Fourcc(*b"RGBP"), sizes),
            offer(Fourcc::YUYV, sizes),
            offer(Fourcc::NV12, sizes),
            offer(Fourcc(*b"GREY"), sizes),
        ];
        let c = choose(&offers, &Wanted::default()).unwrap();
        assert_eq!(c, Choice { fourcc: Fourcc::YUYV, width: 640, height: 480, fps: Some(25.0) });
        let want = Wanted { size: Some((1280, 720)), fps: Some(10), format: Some(Fourcc::NV12) };
        let c = choose(&offers, &want).unwrap();
        assert_eq!(c, Choice { fourcc: Fourcc::NV12, width: 1280, height: 720, fps: Some(5.0) });
    }

    #[test]
    fn errors_say_what_the_camera_offers() {
        let e = choose(&webcam(), &Wanted { size: Some((800, 600)), ..Wanted::default() }).unwrap_err();
        assert!(e.contains("800x600") && e.contains("1280x720"), "{e}");
        let e = choose(&webcam(), &Wanted { format: Some(Fourcc::NV12), ..Wanted::default() }).unwrap_err();
        assert!(e.contains("does not offer format NV12") && e.contains("YUYV, MJPG"), "{e}");
        let e = choose(&webcam(), &Wanted { format: Some(Fourcc(*b"BA81")), ..Wanted::default() }).unwrap_err();
        assert!(e.contains("not one edgenvr records"), "{e}");
        let e = choose(&[offer(Fourcc(*b"GREY"), &[(640, 480, &[30.0])])], &Wanted::default()).unwrap_err();
        assert!(e.contains("offers no format edgenvr records (it offers GREY)"), "{e}");
    }

    #[test]
    fn drivers_without_rates_still_get_a_mode() {
        let offers = vec![offer(Fourcc::YUYV, &[(640, 480, &[]), (320, 240, &[])])];
        let c = choose(&offers, &Wanted::default()).unwrap();
        assert_eq!(c, Choice { fourcc: Fourcc::YUYV, width: 640, height: 480, fps: None });
    }
}
