//! Pixel-format conversion to I420, the encoders' input: what a camera that delivers raw
//! YUYV (most UVC webcams), NV12 or padded YU12 needs before encoding, and what a decoded
//! MJPEG picture needs.

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

/// Converts semi-planar NV12 (a Y plane, then interleaved U/V rows; `stride` bytes per row
/// of both, chroma starting at `stride * plane_rows`) into `dst`.
pub fn nv12_to_i420(src: &[u8], stride: usize, plane_rows: usize, dst: &mut I420) {
    let (w, h) = (dst.width, dst.height);
    let uv0 = stride * plane_rows;
    assert!(stride >= w && plane_rows >= h && src.len() >= uv0 + stride * (h / 2 - 1) + w, "NV12 buffer too small");
    let (y, u, v) = dst.planes_mut();
    for row in 0..h {
        y[row * w..(row + 1) * w].copy_from_slice(&src[row * stride..row * stride + w]);
    }
    let cw = w / 2;
    for crow in 0..h / 2 {
        let line = &src[uv0 + crow * stride..uv0 + crow * stride + w];
        for x in 0..cw {
            u[crow * cw + x] = line[2 * x];
            v[crow * cw + x] = line[2 * x + 1];
        }
    }
}

/// Copies planar YU12 (I420) with `stride` bytes per luma row (chroma rows `stride / 2`,
/// planes `plane_rows` luma rows apart) into the tightly packed `dst`.
pub fn yu12_to_i420(src: &[u8], stride: usize, plane_rows: usize, dst: &mut I420) {
    let (w, h) = (dst.width, dst.height);
    let (cs, cw) = (stride / 2, w / 2);
    let u0 = stride * plane_rows;
    let v0 = u0 + cs * (plane_rows / 2);
    assert!(stride >= w && plane_rows >= h && src.len() >= v0 + cs * (h / 2 - 1) + cw, "YU12 buffer too small");
    let (y, u, v) = dst.planes_mut();
    for row in 0..h {
        y[row * w..(row + 1) * w].copy_from_slice(&src[row * stride..row * stride + w]);
    }
    for crow in 0..h / 2 {
        u[crow * cw..(crow + 1) * cw].copy_from_slice(&src[u0 + crow * cs..u0 + crow * cs + cw]);
        v[crow * cw..(crow + 1) * cw].copy_from_slice(&src[v0 + crow * cs..v0 + crow * cs + cw]);
    }
}

/// Converts interleaved full-resolution YCbCr (3 bytes a pixel, as a JPEG decoder outputs
/// it) into `dst`, averaging chroma over each 2x2 block, rounding to nearest.
pub fn ycbcr444_to_i420(src: &[u8], dst: &mut I420) {
    let (w, h) = (dst.width, dst.height);
    assert!(src.len() >= w * h * 3, "YCbCr buffer too small");
    let (y, u, v) = dst.planes_mut();
    for (d, px) in y.iter_mut().zip(src.chunks_exact(3)) {
        *d = px[0];
    }
    let cw = w / 2;
    for crow in 0..h / 2 {
        let a = &src[2 * crow * w * 3..];
        let b = &src[(2 * crow + 1) * w * 3..];
        for x in 0..cw {
            let i = 6 * x;
            for (k, plane) in [(1, &mut *u), (2, &mut *v)] {
                let sum = a[i + k] as u16 + a[i + 3 + k] as u16 + b[i + k] as u16 + b[i + 3 + k] as u16;
                plane[crow * cw + x] = ((sum + 2) / 4) as u8;
            }
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

    /// NV12 and padded YU12 of a known picture, built sample by sample from the layouts'
    /// definitions, convert back to the picture.
    #[test]
    fn nv12_and_padded_yu12_match_their_definitions() {
        let (w, h, stride, rows) = (6, 4, 8, 6); // padded rows and a taller plane, as drivers do
        let mut pic = I420::new(w, h);
        for (i, p) in pic.data.iter_mut().enumerate() {
            *p = (i * 13 % 251) as u8;
        }
        let (y, u, v) = pic.planes();
        let mut nv12 = vec![0xAA; stride * rows + stride * h / 2];
        let mut yu12 = vec![0xBB; stride * rows + (stride / 2) * (rows / 2) * 2];
        for r in 0..h {
            for x in 0..w {
                nv12[r * stride + x] = y[r * w + x];
                yu12[r * stride + x] = y[r * w + x];
            }
        }
        for r in 0..h / 2 {
            for x in 0..w / 2 {
                nv12[stride * rows + r * stride + 2 * x] = u[r * w / 2 + x];
                nv12[stride * rows + r * stride + 2 * x + 1] = v[r * w / 2 + x];
                yu12[stride * rows + r * stride / 2 + x] = u[r * w / 2 + x];
                yu12[stride * rows + (stride / 2) * (rows / 2) + r * stride / 2 + x] = v[r * w / 2 + x];
            }
        }
        let mut out = I420::new(w, h);
        nv12_to_i420(&nv12, stride, rows, &mut out);
        assert_eq!(out.data, pic.data);
        let mut out = I420::new(w, h);
        yu12_to_i420(&yu12, stride, rows, &mut out);
        assert_eq!(out.data, pic.data);
    }

    #[test]
    fn ycbcr444_averages_each_2x2_block() {
        let (w, h) = (4, 2);
        let mut src = vec![0u8; w * h * 3];
        for (i, px) in src.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&[i as u8 * 10, 100 + i as u8, 200 - i as u8 * 3]);
        }
        let mut out = I420::new(w, h);
        ycbcr444_to_i420(&src, &mut out);
        let (y, u, v) = out.planes();
        assert_eq!(y, &[0, 10, 20, 30, 40, 50, 60, 70]);
        // Block 0 holds pixels 0, 1, 4, 5: Cb 100+101+104+105 = 410 / 4 = 102.5 -> 103.
        assert_eq!(u, &[103, 105]);
        // Cr 200+197+188+185 = 770 / 4 = 192.5 -> 193; 194+191+182+179 = 746 -> 186.5 -> 187.
        assert_eq!(v, &[193, 187]);
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
