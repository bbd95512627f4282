//! Pillow's `Image.resize(size, Image.Resampling.LANCZOS)` for 8-bit images, bit-exact: the
//! resampling rembg applies to its input (to 320×320) and to its mask (back to the image size).
//! Equality with Pillow is checked against fixtures in `pipeline/tests/u2net.rs`.
//!
//! The algorithm of Pillow 13's `libImaging/Resample.c` (`ImagingResample`), reimplemented:
//! - separable, one pass per axis; a pass whose size does not change is skipped (and an
//!   unchanged image is copied, as `Image.resize` does);
//! - the pass order is Pillow 13.0's: vertical first when the height shrinks by more than twice
//!   as many pixels as the width (`in_h − out_h > 0 && in_h − out_h > 2 · (in_w − out_w)`),
//!   otherwise horizontal first. Pillow ≤ 12 always went horizontal first; the order matters
//!   (by a grey level or two) because the intermediate image is rounded to 8 bits;
//! - per output sample: `scale = in/out`, `filterscale = max(scale, 1)`, `support = 3 ·
//!   filterscale`, `center = (i + 0.5) · scale`, taps `xmin = max((int)(center − support + 0.5),
//!   0)` up to `min((int)(center + support + 0.5), in)` (C truncation), weights
//!   `lanczos((x − center + 0.5) · (1 / filterscale))` normalised to sum 1, all in f64;
//! - weights to fixed point with 22 fractional bits, rounded half away from zero;
//! - accumulation in integers starting at `1 << 21` (rounding), then `>> 22` (arithmetic shift:
//!   floor) clamped to 0…255 after **each** pass (the intermediate image is 8-bit).

use super::resize::Raster;

/// Fractional bits of Pillow's 8-bit coefficients (`32 − 8 − 2`: 8 bits of pixel value and 2 of
/// headroom for the negative lobes, in a 32-bit accumulator).
const PRECISION_BITS: u32 = 22;

/// Lanczos-3's support.
const SUPPORT: f64 = 3.0;

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Pillow's `lanczos_filter`: the truncated, windowed sinc on `[−3, 3)`.
fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// Taps of one output sample: first source index and fixed-point weights.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for a box covering the
/// whole input.
fn coefficients(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    // Pillow multiplies by the reciprocal; dividing by `filterscale` rounds differently.
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // `(int)` in C truncates toward zero; a negative start is then clamped to 0.
            let xmin = ((center - support + 0.5).trunc() as i64).max(0);
            let xmax = ((center + support + 0.5).trunc() as i64).min(in_size as i64);
            let raw: Vec<f64> = (xmin..xmax)
                .map(|x| lanczos((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let fixed = w * f64::from(1u32 << PRECISION_BITS);
                    // `(int)(±0.5 + w · 2^22)`: half away from zero, then truncation.
                    (if w < 0.0 { fixed - 0.5 } else { fixed + 0.5 }).trunc() as i32
                })
                .collect();
            Taps {
                start: xmin as usize,
                weights,
            }
        })
        .collect()
}

/// Pillow's `clip8`: `acc >> 22` (floor, since the shift is arithmetic) clamped to a byte.
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One pass along the row (`horizontal`) or column axis.
fn pass(src: &Raster, out_len: usize, horizontal: bool) -> Raster {
    let c = src.channels;
    let (w, h) = (src.width, src.height);
    let taps = coefficients(if horizontal { w } else { h }, out_len);
    let (ow, oh) = if horizontal {
        (out_len, h)
    } else {
        (w, out_len)
    };
    let mut out = Raster::new(ow, oh, c);
    let init = 1i64 << (PRECISION_BITS - 1);
    for y in 0..oh {
        for x in 0..ow {
            let t = if horizontal { &taps[x] } else { &taps[y] };
            for ch in 0..c {
                let mut acc = init;
                for (k, &wk) in t.weights.iter().enumerate() {
                    let (sx, sy) = if horizontal {
                        (t.start + k, y)
                    } else {
                        (x, t.start + k)
                    };
                    acc += i64::from(src.data[(sy * w + sx) * c + ch]) * i64::from(wk);
                }
                out.data[(y * ow + x) * c + ch] = clip8(acc);
            }
        }
    }
    out
}

/// `Image.resize((dw, dh), Image.Resampling.LANCZOS)` for an 8-bit image of any number of
/// channels (each resampled independently, as Pillow does for `L`, `RGB` and `RGBA` without
/// premultiplication — rembg converts to RGB first). Sizes must be non-zero.
pub fn resize_lanczos(src: &Raster, dw: usize, dh: usize) -> Raster {
    let shrink_h = src.height as i64 - dh as i64;
    let shrink_w = src.width as i64 - dw as i64;
    let vertical_first = shrink_h > 0 && shrink_h > 2 * shrink_w;
    let mut img = src.clone();
    for horizontal in if vertical_first {
        [false, true]
    } else {
        [true, false]
    } {
        if horizontal && dw != img.width {
            img = pass(&img, dw, true);
        } else if !horizontal && dh != img.height {
            img = pass(&img, dh, false);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constant_images() {
        let src = Raster::from_data(3, 2, 1, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(resize_lanczos(&src, 3, 2), src);
        // Normalised weights keep a constant image constant (fixed-point rounding included).
        let flat = Raster::from_data(7, 5, 3, vec![200; 7 * 5 * 3]);
        let r = resize_lanczos(&flat, 16, 3);
        assert!(r.data.iter().all(|&v| v == 200), "{:?}", r.data);
    }

    #[test]
    fn window_bounds_follow_pillow() {
        // Downscale 10 → 4: scale 2.5, support 7.5; sample 0: center 1.25, taps [0, 9).
        let t = coefficients(10, 4);
        assert_eq!((t[0].start, t[0].weights.len()), (0, 9));
        // Sample 3: center 8.75, taps [int(1.75) = 1, min(int(16.75), 10) = 10).
        assert_eq!((t[3].start, t[3].weights.len()), (1, 9));
        let sum: i64 = t[1].weights.iter().map(|&w| i64::from(w)).sum();
        assert!((sum - (1 << 22)).abs() <= 9, "{sum}");
        // Upscale 4 → 10: support stays 3; sample 0: center 0.2, taps [0, int(3.7) = 3).
        let t = coefficients(4, 10);
        assert_eq!((t[0].start, t[0].weights.len()), (0, 3));
    }

    #[test]
    fn matches_pillow_on_small_cases() {
        // Reference values: Pillow 13.0.0, `Image.fromarray(a).resize(size, LANCZOS)`.
        let step = Raster::from_data(4, 1, 1, vec![0, 0, 255, 255]);
        assert_eq!(
            resize_lanczos(&step, 9, 1).data,
            [10, 0, 0, 10, 128, 245, 255, 255, 245]
        );
        let bar = Raster::from_data(10, 1, 1, vec![0, 0, 0, 255, 255, 255, 0, 0, 0, 0]);
        assert_eq!(
            resize_lanczos(&bar, 23, 1).data,
            [
                0, 1, 7, 0, 0, 0, 75, 204, 255, 255, 255, 255, 255, 167, 40, 0, 0, 5, 6, 0, 0, 0, 0
            ]
        );
        // np.arange(48).reshape(6, 8) * 5, downscaled in both directions.
        let ramp = Raster::from_data(8, 6, 1, (0..48u8).map(|v| v * 5).collect());
        assert_eq!(
            resize_lanczos(&ramp, 5, 3).data,
            [
                21, 28, 37, 45, 52, 102, 109, 118, 126, 133, 183, 190, 199, 207, 214
            ]
        );
    }
}
