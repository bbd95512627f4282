//! Winograd F(2×2, 3×3) (Lavin & Gray 2016) for the 3×3, dilation-1, "same" convolutions.
//!
//! Each 2×2 block of outputs ("tile") comes from a 4×4 input patch. The patch and the kernel are
//! transformed (`V = Bᵀ d B`, `U = G g Gᵀ`) so that the convolution becomes 16 element-wise
//! products, and summing over input channels turns each of the 16 into one GEMM,
//! `M[t] = U[t] (out × in) · V[t] (in × tiles)`. The output is `Aᵀ m A` per tile: 16
//! multiplications per 2×2 outputs and channel pair instead of 36, at the price of the two
//! transforms, which are additions only.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

#[cfg(test)]
mod tests;
mod transform;

use super::super::rebnconv::FoldedConv;
use super::{Map, run_bands};
use transform::{
    OutScratch, Segment, input_transform, kernel_transform, output_transform, segments,
};

/// Values per band, the transformed input and the 16 products together (2 MiB). Measured on
/// the two networks' layers (BENCHMARKS.md): 128 Ki values 1.09×, 256 Ki 1.03×, 1 Mi 0.95–1.03×,
/// 2 Mi 1.06–1.16× the time of this size; the kernel matrices stream past either way.
const BAND_VALUES: usize = 512 * 1024;
/// Fewest tiles per band: below this the 16 GEMMs are too narrow to run at speed.
const MIN_TILES: usize = 32;

#[derive(Debug, Clone)]
pub struct WinogradConv {
    /// `U[t]`, 16 matrices `[out, in]`.
    u: Vec<f32>,
    bias: Vec<f32>,
    out_ch: usize,
    in_ch: usize,
    relu: bool,
}

/// A run of `len` consecutive tiles of image `img` (tiles numbered row-major).
#[derive(Debug, Clone)]
struct Band {
    img: usize,
    len: usize,
    /// Its parts in each row of tiles, worked out once for the input transform and assembly.
    segs: Vec<Segment>,
}

impl WinogradConv {
    /// None unless the layer is a 3×3, dilation-1, padding-1 convolution.
    pub fn new(c: &FoldedConv) -> Option<Self> {
        let [out_ch, in_ch, kh, kw] = c.shape;
        if kh != 3 || kw != 3 || c.dilation != 1 || c.padding != 1 {
            return None;
        }
        let mut u = vec![0f32; 16 * out_ch * in_ch];
        for o in 0..out_ch {
            for i in 0..in_ch {
                let g = &c.weight[(o * in_ch + i) * 9..][..9];
                let t = kernel_transform(g);
                for (k, v) in t.iter().enumerate() {
                    u[(k * out_ch + o) * in_ch + i] = *v;
                }
            }
        }
        Some(WinogradConv {
            u,
            bias: c.bias.clone(),
            out_ch,
            in_ch,
            relu: c.relu,
        })
    }

    pub fn forward(&self, parts: &[&Map]) -> Map {
        let Some(first) = parts.first() else {
            return Map::zeros(0, self.out_ch, 0, 0);
        };
        let (n, h, w) = (first.n, first.h, first.w);
        let (tx, ty) = (w.div_ceil(2), h.div_ceil(2));
        let tiles = tx * ty;
        let per_tile = 16 * (self.in_ch + self.out_ch);
        let len = (BAND_VALUES / per_tile).max(MIN_TILES).min(tiles.max(1));
        let bands: Vec<Band> = (0..n)
            .flat_map(|img| {
                (0..tiles).step_by(len).map(move |t0| Band {
                    img,
                    len: len.min(tiles - t0),
                    segs: segments(t0, len.min(tiles - t0), tx),
                })
            })
            .collect();
        let products = run_bands(&bands, |b, sc: &mut Scratch, threaded| {
            self.band(parts, b, sc, threaded)
        });
        self.assemble(n, h, w, &bands, &products)
    }

    /// The band's outputs (bias and ReLU applied), `[out, 2, 2 · len]`: for every output
    /// channel, the top and the bottom row of each tile in turn.
    fn band(&self, parts: &[&Map], b: &Band, sc: &mut Scratch, threaded: bool) -> Vec<f32> {
        let (cin, cout, nt) = (self.in_ch, self.out_ch, b.len);
        sc.v.resize(16 * cin * nt, 0.0);
        input_transform(parts, b, &mut sc.v, threaded);
        sc.m.resize(16 * cout * nt, 0.0);
        let v = &sc.v[..];
        let product = |(t, dst): (usize, &mut [f32])| {
            let lhs = &self.u[t * cout * cin..][..cout * cin];
            // V[t] is `cin × nt` with row stride 16·nt, starting at t·nt.
            let rhs = &v[t * nt..];
            // SAFETY: dst is `cout × nt` (row stride nt), lhs `cout × cin` (row stride cin);
            // rhs's last element read is (cin − 1)·16·nt + t·nt + nt − 1 < 16·cin·nt = v.len().
            #[allow(unsafe_code)]
            unsafe {
                gemm(
                    cout,
                    nt,
                    cin,
                    dst.as_mut_ptr(),
                    1,
                    nt as isize,
                    false,
                    lhs.as_ptr(),
                    1,
                    cin as isize,
                    rhs.as_ptr(),
                    1,
                    (16 * nt) as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        };
        if threaded {
            sc.m.par_chunks_mut(cout * nt).enumerate().for_each(product);
        } else {
            sc.m.chunks_mut(cout * nt).enumerate().for_each(product);
        }
        let mut y = vec![0f32; cout * 4 * nt];
        let m = &sc.m[..];
        // Channel o's row of M[t] starts at (t · cout + o) · nt.
        let finish = |tmp: &mut OutScratch, (o, dst): (usize, &mut [f32])| {
            let q = std::array::from_fn(|t| &m[(t * cout + o) * nt..][..nt]);
            output_transform(q, self.bias[o], self.relu, dst, tmp);
        };
        if threaded {
            y.par_chunks_mut(4 * nt)
                .enumerate()
                .for_each_init(OutScratch::default, finish);
        } else {
            let mut tmp = OutScratch::default();
            y.chunks_mut(4 * nt)
                .enumerate()
                .for_each(|item| finish(&mut tmp, item));
        }
        y
    }

    /// The bands' outputs placed in `[n, out, h, w]`, one output plane per task.
    fn assemble(&self, n: usize, h: usize, w: usize, bands: &[Band], products: &[Vec<f32>]) -> Map {
        let mut out = Map::zeros(n, self.out_ch, h, w);
        let plane = h * w;
        if plane == 0 {
            return out;
        }
        let per_image = bands.len() / n.max(1);
        let cout = self.out_ch;
        out.data
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(i, dst)| {
                let (img, o) = (i / cout, i % cout);
                let range = img * per_image..(img + 1) * per_image;
                for (b, y) in bands[range.clone()].iter().zip(&products[range]) {
                    let y = &y[o * 4 * b.len..][..4 * b.len];
                    for s in &b.segs {
                        // An odd width drops the last tile's second column.
                        let cols = (2 * s.len).min(w - 2 * s.col);
                        for dy in 0..2 {
                            let yy = 2 * s.row + dy;
                            if yy < h {
                                let src = &y[dy * 2 * b.len + 2 * s.off..][..cols];
                                dst[yy * w + 2 * s.col..][..cols].copy_from_slice(src);
                            }
                        }
                    }
                }
            });
        out
    }
}

/// Per-thread buffers of [`WinogradConv::band`]: the transformed input and the 16 products.
#[derive(Debug, Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
}
