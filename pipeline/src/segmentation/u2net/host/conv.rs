//! Convolution on the host: im2col by bands of output rows, then one GEMM per band,
//! `out[o, band] = W[o, in·k²] × cols[in·k², band]`, then bias and ReLU.
//!
//! The decoder's `conv(cat(up, skip))` needs no concatenation: im2col writes the parts' rows
//! one after the other, which is exactly the concatenated input's row order, so the weight
//! stays PyTorch's `[out, in, k, k]` flattening. A 1×1 convolution of one part skips im2col
//! (its columns are the input itself).

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use super::super::rebnconv::FoldedConv;
use super::{Map, run_bands};

/// Largest im2col buffer per band, in values (1 MiB, a core's L2 on the benchmark machine):
/// the GEMM reads the columns back from the cache they were written to. Measured on u2netp
/// (BENCHMARKS.md): 64 Ki values 0.369 s, 256 Ki 0.352 s, 1 Mi 0.370 s, 2 Mi 0.445 s.
const BAND_VALUES: usize = 256 * 1024;

/// Output rows `y0 .. y0 + rows` of image `img`.
#[derive(Debug, Clone, Copy)]
struct Band {
    img: usize,
    y0: usize,
    rows: usize,
}

/// A folded convolution repacked for im2col: stride 1, "same" padding, any kernel size and
/// dilation.
#[derive(Debug, Clone)]
pub struct Im2colConv {
    /// `[out, in · k · k]`, PyTorch's flattening (input channels of all parts in order).
    weight: Vec<f32>,
    bias: Vec<f32>,
    out_ch: usize,
    in_ch: usize,
    kernel: usize,
    dilation: usize,
    padding: usize,
    relu: bool,
}

impl Im2colConv {
    pub fn new(c: &FoldedConv) -> Self {
        let [out_ch, in_ch, kernel, _] = c.shape;
        Im2colConv {
            weight: c.weight.clone(),
            bias: c.bias.clone(),
            out_ch,
            in_ch,
            kernel,
            dilation: c.dilation,
            padding: c.padding,
            relu: c.relu,
        }
    }

    /// The convolution of `cat(parts)`. The parts share `n`, `h` and `w` and their channels
    /// add up to the layer's input channels (the network's wiring guarantees both).
    ///
    /// Where the maps are large enough to give every core several bands, each core takes whole
    /// bands (im2col and a single-threaded GEMM back to back, so the columns it just wrote are
    /// still in its own cache); the small bottom stages instead run band by band with the GEMM
    /// itself threaded.
    pub fn forward(&self, parts: &[&Map]) -> Map {
        let Some(first) = parts.first() else {
            return Map::zeros(0, self.out_ch, 0, 0);
        };
        let (n, h, w) = (first.n, first.h, first.w);
        debug_assert_eq!(parts.iter().map(|p| p.c).sum::<usize>(), self.in_ch);
        let k = self.in_ch * self.kernel * self.kernel;
        let band_rows = (BAND_VALUES / (k * w).max(1)).clamp(1, h.max(1));
        let bands: Vec<Band> = (0..n)
            .flat_map(|img| {
                (0..h).step_by(band_rows).map(move |y0| Band {
                    img,
                    y0,
                    rows: band_rows.min(h - y0),
                })
            })
            .collect();
        let products = run_bands(&bands, |b, cols: &mut Vec<f32>, threaded| {
            let par = if threaded {
                Parallelism::Rayon(0)
            } else {
                Parallelism::None
            };
            self.band(parts, b, cols, par)
        });
        self.assemble(n, h, w, &bands, &products)
    }

    /// `W × cols` for one band: `out_ch` rows of `rows · w` values.
    fn band(&self, parts: &[&Map], b: &Band, cols: &mut Vec<f32>, par: Parallelism) -> Vec<f32> {
        let (h, w) = (parts[0].h, parts[0].w);
        let k = self.in_ch * self.kernel * self.kernel;
        let npix = b.rows * w;
        // A 1×1 convolution of one part reads its input in place: its columns are the image.
        let (rhs, rhs_rs): (&[f32], usize) = if self.kernel == 1 && parts.len() == 1 {
            (&parts[0].image(b.img)[b.y0 * w..], h * w)
        } else {
            cols.resize(k * npix, 0.0);
            let threaded = matches!(par, Parallelism::Rayon(_));
            self.im2col(parts, b, &mut cols[..k * npix], threaded);
            (&cols[..k * npix], npix)
        };
        let mut dst = vec![0f32; self.out_ch * npix];
        // The one unsafe call of the host path: `gemm` takes raw strided pointers.
        // SAFETY: dst is `out_ch × npix` (row stride npix); lhs is the `out_ch × k` weight (row
        // stride k); rhs holds `k` rows of stride `rhs_rs`, each `npix` long, inside `cols` or
        // inside the input image (the 1×1 case: `k` is its channel count and the band ends by
        // row `h`).
        #[allow(unsafe_code)]
        unsafe {
            gemm(
                self.out_ch,
                npix,
                k,
                dst.as_mut_ptr(),
                1,
                npix as isize,
                false,
                self.weight.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr(),
                1,
                rhs_rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        dst
    }

    /// The bands' products placed in `[n, out, h, w]`, with the bias and the ReLU applied on
    /// the way (one pass over the output, one output plane per task).
    fn assemble(&self, n: usize, h: usize, w: usize, bands: &[Band], products: &[Vec<f32>]) -> Map {
        let mut out = Map::zeros(n, self.out_ch, h, w);
        let plane = h * w;
        if plane == 0 {
            return out;
        }
        let per_image = bands.len() / n.max(1);
        out.data
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(i, dst)| {
                let (img, o) = (i / self.out_ch, i % self.out_ch);
                let bias = self.bias[o];
                let range = img * per_image..(img + 1) * per_image;
                for (b, product) in bands[range.clone()].iter().zip(&products[range]) {
                    let npix = b.rows * w;
                    let src = &product[o * npix..(o + 1) * npix];
                    let d = &mut dst[b.y0 * w..b.y0 * w + npix];
                    if self.relu {
                        d.iter_mut()
                            .zip(src)
                            .for_each(|(d, &v)| *d = (v + bias).max(0.0));
                    } else {
                        d.iter_mut().zip(src).for_each(|(d, &v)| *d = v + bias);
                    }
                }
            });
        out
    }

    /// Fills `cols` (`in·k²` rows of `rows · w` values) with the taps of the band's output
    /// rows; out-of-image taps are the zero padding.
    fn im2col(&self, parts: &[&Map], b: &Band, cols: &mut [f32], threaded: bool) {
        let (h, w) = (parts[0].h, parts[0].w);
        let (img, y0, rows) = (b.img, b.y0, b.rows);
        let kk = self.kernel * self.kernel;
        let npix = rows * w;
        // Row r of cols = (channel of the concatenation, tap): find the part once per row.
        let mut starts = Vec::with_capacity(parts.len());
        let mut total = 0;
        for p in parts {
            starts.push(total);
            total += p.c;
        }
        let fill = |(r, dst): (usize, &mut [f32])| {
            let (ch, tap) = (r / kk, r % kk);
            let pi = starts.partition_point(|&s| s <= ch) - 1;
            let part = parts[pi];
            let src = &part.image(img)[(ch - starts[pi]) * h * w..][..h * w];
            let dy = (tap / self.kernel * self.dilation) as isize - self.padding as isize;
            let dx = (tap % self.kernel * self.dilation) as isize - self.padding as isize;
            // Output columns whose tap lands inside the row: x + dx ∈ [0, w).
            let x_lo = (-dx).clamp(0, w as isize) as usize;
            let x_hi = (w as isize - dx).clamp(0, w as isize) as usize;
            for (ry, line) in dst.chunks_exact_mut(w).enumerate() {
                let sy = (y0 + ry) as isize + dy;
                if sy < 0 || sy >= h as isize || x_lo >= x_hi {
                    line.fill(0.0);
                    continue;
                }
                let s = &src[sy as usize * w..(sy as usize + 1) * w];
                line[..x_lo].fill(0.0);
                line[x_hi..].fill(0.0);
                let sx = (x_lo as isize + dx) as usize;
                line[x_lo..x_hi].copy_from_slice(&s[sx..sx + (x_hi - x_lo)]);
            }
        };
        if threaded {
            cols.par_chunks_mut(npix).enumerate().for_each(fill);
        } else {
            cols.chunks_mut(npix).enumerate().for_each(fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference::{layer, map, matches_definition};
    use super::*;

    fn check(c: &FoldedConv, parts: &[&Map]) {
        matches_definition(c, parts, &Im2colConv::new(c).forward(parts));
    }

    #[test]
    fn banded_spread_gemm_with_two_parts_and_dilation_matches_the_definition() {
        // 64 channels × 9 taps × 500 columns exceed a band: one row per band, 2 images × 5
        // rows = 10 bands, spread over the cores; the decoder's two-part input; dilation 2.
        let (a, b) = (map(2, 40, 5, 500, 1), map(2, 24, 5, 500, 2));
        check(&layer(6, 64, 3, 2, true), &[&a, &b]);
    }

    #[test]
    fn small_maps_one_threaded_gemm_odd_sizes_and_large_dilation() {
        // An RSU-4F level: a 7×5 map with dilation 8 (every tap but the centre is padding).
        let x = map(1, 3, 7, 5, 4);
        check(&layer(5, 3, 3, 8, false), &[&x]);
        check(&layer(4, 3, 3, 1, true), &[&x]);
    }

    #[test]
    fn one_by_one_convolutions_read_their_input_in_place_or_through_parts() {
        let x = map(2, 6, 9, 11, 5);
        check(&layer(1, 6, 1, 1, false), &[&x]);
        let parts: Vec<Map> = (0..6).map(|s| map(2, 1, 9, 11, s)).collect();
        let refs: Vec<&Map> = parts.iter().collect();
        check(&layer(1, 6, 1, 1, false), &refs);
    }
}
