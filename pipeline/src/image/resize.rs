//! Resizing of 8-bit interleaved images that reproduces OpenCV's `cv2.resize` for the three
//! interpolations Hunyuan3D-2's `ImageProcessorV2` uses: `INTER_AREA` (both its area-averaging
//! downscale and its linear-with-area-coefficients upscale), `INTER_CUBIC` (a = -0.75, fixed
//! point with 11 fractional bits per pass, replicated borders) and `INTER_NEAREST`.
//! Equality with cv2 is checked against fixtures in `pipeline/tests/preprocess_parity.rs`.

/// An 8-bit interleaved raster: `data[(y * width + x) * channels + c]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Raster {
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Raster {
            width,
            height,
            channels,
            data: vec![0; width * height * channels],
        }
    }

    pub fn from_data(width: usize, height: usize, channels: usize, data: Vec<u8>) -> Self {
        assert_eq!(
            data.len(),
            width * height * channels,
            "raster size mismatch"
        );
        Raster {
            width,
            height,
            channels,
            data,
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> &[u8] {
        let i = (y * self.width + x) * self.channels;
        &self.data[i..i + self.channels]
    }

    /// Copies the rectangle `[x0, x1) × [y0, y1)`.
    pub fn crop(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> Raster {
        let (w, h, c) = (x1 - x0, y1 - y0, self.channels);
        let mut out = Vec::with_capacity(w * h * c);
        for y in y0..y1 {
            let start = (y * self.width + x0) * c;
            out.extend_from_slice(&self.data[start..start + w * c]);
        }
        Raster::from_data(w, h, c, out)
    }
}

/// Fractional bits of OpenCV's fixed-point coefficients for 8-bit linear and cubic resizing.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

fn round_coef(c: f32) -> i32 {
    // saturate_cast<short>(float) rounds half to even.
    (c * COEF_SCALE).round_ties_even() as i32
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_AREA)`.
pub fn resize_area(src: &Raster, dw: usize, dh: usize) -> Raster {
    if src.width == dw && src.height == dh {
        return src.clone();
    }
    let scale_x = src.width as f64 / dw as f64;
    let scale_y = src.height as f64 / dh as f64;
    if scale_x >= 1.0 && scale_y >= 1.0 {
        area_downscale(src, dw, dh, scale_x, scale_y)
    } else {
        let xs = linear_taps(src.width, dw, scale_x, true);
        let ys = linear_taps(src.height, dh, scale_y, true);
        separable_fixed(src, dw, dh, &xs, &ys, 2)
    }
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_CUBIC)`.
pub fn resize_cubic(src: &Raster, dw: usize, dh: usize) -> Raster {
    if src.width == dw && src.height == dh {
        return src.clone();
    }
    let xs = cubic_taps(src.width, dw);
    let ys = cubic_taps(src.height, dh);
    separable_fixed(src, dw, dh, &xs, &ys, 4)
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_NEAREST)`.
pub fn resize_nearest(src: &Raster, dw: usize, dh: usize) -> Raster {
    let c = src.channels;
    let fx = src.width as f64 / dw as f64;
    let fy = src.height as f64 / dh as f64;
    let xmap: Vec<usize> = (0..dw)
        .map(|x| ((x as f64 * fx).floor() as usize).min(src.width - 1))
        .collect();
    let mut out = Raster::new(dw, dh, c);
    for y in 0..dh {
        let sy = ((y as f64 * fy).floor() as usize).min(src.height - 1);
        for (x, &sx) in xmap.iter().enumerate() {
            let s = (sy * src.width + sx) * c;
            let d = (y * dw + x) * c;
            out.data[d..d + c].copy_from_slice(&src.data[s..s + c]);
        }
    }
    out
}

/// Source indices (already clamped to the image) and fixed-point weights of one output sample.
struct Taps {
    index: Vec<usize>,
    weight: Vec<i32>,
}

/// Two-tap linear coefficients; with `area_mode` they are OpenCV's INTER_AREA upscaling ones.
fn linear_taps(src_len: usize, dst_len: usize, scale: f64, area_mode: bool) -> Taps {
    let inv_scale = dst_len as f64 / src_len as f64;
    let mut taps = Taps {
        index: Vec::with_capacity(dst_len * 2),
        weight: Vec::with_capacity(dst_len * 2),
    };
    for d in 0..dst_len {
        let (mut sx, mut fx);
        if area_mode {
            sx = (d as f64 * scale).floor() as i64;
            fx = ((d + 1) as f64 - (sx + 1) as f64 * inv_scale) as f32;
            fx = if fx <= 0.0 { 0.0 } else { fx - fx.floor() };
        } else {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            sx = f.floor() as i64;
            fx = f - sx as f32;
        }
        if sx < 0 {
            fx = 0.0;
            sx = 0;
        }
        if sx >= src_len as i64 - 1 {
            fx = 0.0;
            sx = src_len as i64 - 1;
        }
        let s = sx as usize;
        taps.index.push(s);
        taps.index.push((s + 1).min(src_len - 1));
        taps.weight.push(round_coef(1.0 - fx));
        taps.weight.push(round_coef(fx));
    }
    taps
}

fn cubic_taps(src_len: usize, dst_len: usize) -> Taps {
    const A: f32 = -0.75;
    let scale = src_len as f64 / dst_len as f64;
    let mut taps = Taps {
        index: Vec::with_capacity(dst_len * 4),
        weight: Vec::with_capacity(dst_len * 4),
    };
    for d in 0..dst_len {
        let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let sx = f.floor() as i64;
        let x = f - sx as f32;
        let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
        let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
        let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
        let c3 = 1.0 - c0 - c1 - c2;
        for (k, c) in [c0, c1, c2, c3].into_iter().enumerate() {
            let s = (sx - 1 + k as i64).clamp(0, src_len as i64 - 1) as usize;
            taps.index.push(s);
            taps.weight.push(round_coef(c));
        }
    }
    taps
}

/// Horizontal pass into i32 rows, vertical pass back to u8, as OpenCV's `resizeGeneric` does
/// for 8-bit data (both passes in fixed point, 22 fractional bits before the final shift).
fn separable_fixed(src: &Raster, dw: usize, dh: usize, xs: &Taps, ys: &Taps, n: usize) -> Raster {
    let c = src.channels;
    let row_len = dw * c;
    // Horizontal pass for every source row that some output row needs.
    let mut needed = vec![false; src.height];
    for &i in &ys.index {
        needed[i] = true;
    }
    let mut hrows: Vec<Option<Vec<i32>>> = vec![None; src.height];
    for (sy, row) in hrows.iter_mut().enumerate() {
        if !needed[sy] {
            continue;
        }
        let srow = &src.data[sy * src.width * c..(sy + 1) * src.width * c];
        let mut out = vec![0i32; row_len];
        for dx in 0..dw {
            for ch in 0..c {
                let mut acc = 0i32;
                for k in 0..n {
                    let t = dx * n + k;
                    acc += i32::from(srow[xs.index[t] * c + ch]) * xs.weight[t];
                }
                out[dx * c + ch] = acc;
            }
        }
        *row = Some(out);
    }
    let mut dst = Raster::new(dw, dh, c);
    for dy in 0..dh {
        let out = &mut dst.data[dy * row_len..(dy + 1) * row_len];
        let rows: Vec<&[i32]> = (0..n)
            .map(|k| hrows[ys.index[dy * n + k]].as_deref().unwrap_or(&[]))
            .collect();
        let betas = &ys.weight[dy * n..(dy + 1) * n];
        for (x, o) in out.iter_mut().enumerate() {
            *o = if n == 2 {
                // OpenCV's SIMD linear path: pre-shift by 4, multiply-high, round by 2 bits.
                let a = ((rows[0][x] >> 4) * betas[0]) >> 16;
                let b = ((rows[1][x] >> 4) * betas[1]) >> 16;
                ((a + b + 2) >> 2).clamp(0, 255) as u8
            } else {
                let mut acc = 0i64;
                for k in 0..n {
                    acc += i64::from(rows[k][x]) * i64::from(betas[k]);
                }
                ((acc + (1 << 21)) >> 22).clamp(0, 255) as u8
            };
        }
    }
    dst
}

/// OpenCV's area-averaging downscale (`INTER_AREA` with both scales ≥ 1).
fn area_downscale(src: &Raster, dw: usize, dh: usize, scale_x: f64, scale_y: f64) -> Raster {
    let c = src.channels;
    let xtab = area_tab(src.width, dw, scale_x);
    let ytab = area_tab(src.height, dh, scale_y);
    let mut dst = Raster::new(dw, dh, c);
    let mut row_acc = vec![0f32; dw * c];
    let mut acc = vec![0f32; dw * c];
    let mut yi = 0;
    for dy in 0..dh {
        acc.iter_mut().for_each(|v| *v = 0.0);
        while yi < ytab.len() && ytab[yi].0 == dy {
            let (_, sy, wy) = ytab[yi];
            row_acc.iter_mut().for_each(|v| *v = 0.0);
            let srow = &src.data[sy * src.width * c..(sy + 1) * src.width * c];
            for &(dx, sx, wx) in &xtab {
                for ch in 0..c {
                    row_acc[dx * c + ch] += f32::from(srow[sx * c + ch]) * wx;
                }
            }
            for (a, r) in acc.iter_mut().zip(&row_acc) {
                *a += r * wy;
            }
            yi += 1;
        }
        let out = &mut dst.data[dy * dw * c..(dy + 1) * dw * c];
        for (o, a) in out.iter_mut().zip(&acc) {
            *o = a.round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
    dst
}

/// `computeResizeAreaTab`: (destination index, source index, weight) triples.
fn area_tab(src_len: usize, dst_len: usize, scale: f64) -> Vec<(usize, usize, f32)> {
    let mut tab = Vec::new();
    for d in 0..dst_len {
        let fs1 = d as f64 * scale;
        let fs2 = fs1 + scale;
        let cell = scale.min(src_len as f64 - fs1);
        let mut s1 = fs1.ceil() as usize;
        let s2 = (fs2.floor() as usize).min(src_len - 1);
        s1 = s1.min(s2);
        if s1 as f64 - fs1 > 1e-3 {
            tab.push((d, s1 - 1, ((s1 as f64 - fs1) / cell) as f32));
        }
        for s in s1..s2 {
            tab.push((d, s, (1.0 / cell) as f32));
        }
        if fs2 - s2 as f64 > 1e-3 {
            tab.push((d, s2, ((fs2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
        }
    }
    tab
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_images_stay_constant() {
        let src = Raster::from_data(37, 23, 3, vec![200; 37 * 23 * 3]);
        for (w, h) in [(10, 7), (80, 51), (37, 23), (100, 9)] {
            for out in [
                resize_area(&src, w, h),
                resize_cubic(&src, w, h),
                resize_nearest(&src, w, h),
            ] {
                assert_eq!((out.width, out.height), (w, h));
                assert!(out.data.iter().all(|&v| v == 200), "{w}x{h}");
            }
        }
    }

    #[test]
    fn area_downscale_by_two_averages_blocks() {
        let src = Raster::from_data(4, 2, 1, vec![0, 100, 10, 30, 40, 60, 50, 70]);
        let out = resize_area(&src, 2, 1);
        assert_eq!(out.data, vec![50, 40]);
    }
}
