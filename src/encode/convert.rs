//! Pixel-format conversion to I420, the encoders' input: what a camera that delivers raw
//! YUYV (most UVC webcams) needs before encoding.

use super::yuv::I420;

/// Converts packed YUYV 4:2:2 (`Y0 U Y1 V` per two pixels, `stride` bytes per row) into
/// `dst` (same size). Luma is copied; chroma is averaged over each pair of rows (4:2:2 →
/// 4:2:0), rounding to nearest.
pub fn yuyv_to_i420(src: &[u8], stride: usize, dst: &mut I420) {
    let (w, h) = (dst.width, dst.height);
    assert!(stride >= w * 2 && src.len() >= stride * (h - 1) + w * 2, "YUYV buffer too small for {w}x{h}");
    let (y, u, v) = dst.planes_mut();
    for row in 0..h {
        let s = &src[row * stride..row * stride + w * 2];
        for (d, px) in y[row * w..(row + 1) * w].iter_mut().zip(s.iter().step_by(2)) {
            *d = *px;
        }
    }
    let cw = w / 2;
    for crow in 0..h / 2 {
        let a = &src[2 * crow * stride..];
        let b = &src[(2 * crow + 1) * stride..];
        for x in 0..cw {
            let i = 4 * x;
            u[crow * cw + x] = (a[i + 1] as u16 + b[i + 1] as u16).div_ceil(2) as u8;
            v[crow * cw + x] = (a[i + 3] as u16 + b[i + 3] as u16).div_ceil(2) as u8;
        }
    }
}

/// The inverse, for tests and benchmarks: I420 → YUYV (chroma repeated on both rows).
pub fn i420_to_yuyv(src: &I420, out: &mut Vec<u8>) {
    let (w, h) = (src.width, src.height);
    let (y, u, v) = src.planes();
    out.clear();
    out.reserve(w * h * 2);
    for row in 0..h {
        for x in (0..w).step_by(2) {
            let c = (row / 2) * (w / 2) + x / 2;
            out.extend_from_slice(&[y[row * w + x], u[c], y[row * w + x + 1], v[c]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference written independently: sample by sample, in f64, from the definition of
    /// the two layouts.
    fn reference(src: &[u8], w: usize, h: usize) -> Vec<u8> {
        let sample = |row: usize, x: usize, k: usize| src[row * w * 2 + (x / 2) * 4 + k] as f64;
        let mut out = Vec::new();
        for row in 0..h {
            for x in 0..w {
                out.push(sample(row, x, if x % 2 == 0 { 0 } else { 2 }) as u8);
            }
        }
        for k in [1, 3] {
            for crow in 0..h / 2 {
                for cx in 0..w / 2 {
                    let avg = (sample(2 * crow, 2 * cx, k) + sample(2 * crow + 1, 2 * cx, k)) / 2.0;
                    out.push((avg + 0.5).floor() as u8);
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_reference_on_noise_and_extremes() {
        let (w, h) = (18, 10);
        let mut x = 12345u32;
        let mut src: Vec<u8> = (0..w * h * 2)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        src[1] = 255;
        src[w * 2 + 1] = 254; // rounding of (255 + 254) / 2
        let mut dst = I420::new(w, h);
        yuyv_to_i420(&src, w * 2, &mut dst);
        assert_eq!(dst.data, reference(&src, w, h));
        assert_eq!(dst.planes().1[0], 255);
    }

    #[test]
    fn padded_rows_and_round_trip() {
        let (w, h) = (8, 4);
        let mut pic = I420::new(w, h);
        for (i, p) in pic.data.iter_mut().enumerate() {
            *p = (i * 7 % 251) as u8;
        }
        let mut yuyv = Vec::new();
        i420_to_yuyv(&pic, &mut yuyv);
        // Rows padded to a stride of 20 bytes, as drivers do.
        let stride = 20;
        let mut padded = vec![0xEE; stride * h];
        for row in 0..h {
            padded[row * stride..row * stride + w * 2].copy_from_slice(&yuyv[row * w * 2..(row + 1) * w * 2]);
        }
        let mut back = I420::new(w, h);
        yuyv_to_i420(&padded, stride, &mut back);
        assert_eq!(back.data, pic.data, "I420 -> YUYV -> I420 is lossless for 4:2:0 chroma");
    }
}
