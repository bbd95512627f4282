//! The host executor: U²-Net on the CPU without burn. The 3×3 convolutions without dilation,
//! 94 % of U²-Net's multiply-adds and nearly all of U²-Net-p's, run as Winograd F(2×2, 3×3)
//! ([`winograd`]: 16 GEMMs per band of tiles, 2.25× fewer multiplications); the others are one
//! packed GEMM per band of output rows over an im2col buffer ([`conv`]). Both use the `gemm`
//! crate's cache-blocked AVX2/AVX-512 kernels, threaded with rayon. Pooling, resizing and the
//! residual sums are plain loops over channel planes, in parallel. burn-ndarray's direct
//! convolution reaches a fifth of onnxruntime's throughput on the same cores (BENCHMARKS.md,
//! "Background removal"), which is why the CPU path does not go through burn.

mod conv;
mod planes;
#[cfg(test)]
mod reference;
mod winograd;

use rayon::prelude::*;

use super::exec::Exec;
use super::rebnconv::FoldedConv;

use conv::Im2colConv;
use winograd::WinogradConv;

/// Fewest input channels for which Winograd beats im2col: with the 3-channel input layer the
/// transforms cost more than the multiplications they save (measured, BENCHMARKS.md).
const WINOGRAD_MIN_IN: usize = 16;

/// One convolution prepared for the host, by the algorithm that suits its shape.
#[derive(Debug, Clone)]
pub enum HostConv {
    Im2col(Im2colConv),
    Winograd(WinogradConv),
}

impl HostConv {
    pub fn new(c: &FoldedConv) -> Self {
        let wide_enough = c.shape[1] >= WINOGRAD_MIN_IN;
        match WinogradConv::new(c) {
            Some(w) if wide_enough => HostConv::Winograd(w),
            _ => HostConv::Im2col(Im2colConv::new(c)),
        }
    }

    /// The convolution of `cat(parts)`.
    pub fn forward(&self, parts: &[&Map]) -> Map {
        match self {
            HostConv::Im2col(c) => c.forward(parts),
            HostConv::Winograd(c) => c.forward(parts),
        }
    }
}

/// Runs `band` over every band of a convolution and returns the products in order. With at
/// least two bands per core, each core takes whole bands, single-threaded, so a band's buffers
/// stay in that core's cache; with fewer (the small bottom stages), bands run one after another
/// and the work inside each is threaded. `band` gets its thread's scratch and whether it may
/// use threads itself.
fn run_bands<B: Sync, S: Default + Send>(
    bands: &[B],
    band: impl Fn(&B, &mut S, bool) -> Vec<f32> + Sync + Send,
) -> Vec<Vec<f32>> {
    if bands.len() >= 2 * rayon::current_num_threads() {
        bands
            .par_iter()
            .map_init(S::default, |s, b| band(b, s, false))
            .collect()
    } else {
        let mut s = S::default();
        bands.iter().map(|b| band(b, &mut s, true)).collect()
    }
}

/// A batch of feature maps in host memory, `[n, c, h, w]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Map {
    pub fn zeros(n: usize, c: usize, h: usize, w: usize) -> Self {
        Map {
            n,
            c,
            h,
            w,
            data: vec![0.0; n * c * h * w],
        }
    }

    /// Values of one image (`c · h · w`).
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.c * self.h * self.w;
        &self.data[i * len..(i + 1) * len]
    }
}

/// Runs the network on the host's cores (rayon's pool: as many threads as cores unless
/// `RAYON_NUM_THREADS` says otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostExec;

impl HostExec {
    pub fn new() -> Self {
        HostExec
    }
}

impl Exec for HostExec {
    type Map = Map;
    type Conv = HostConv;

    fn input(&self, data: Vec<f32>, [n, c, h, w]: [usize; 4]) -> Map {
        Map { n, c, h, w, data }
    }

    fn values(&self, x: Map) -> Vec<f32> {
        x.data
    }

    fn prepare(&self, conv: &FoldedConv) -> HostConv {
        HostConv::new(conv)
    }

    fn conv(&self, conv: &HostConv, parts: &[&Map]) -> Map {
        conv.forward(parts)
    }

    fn pool(&self, x: &Map) -> Map {
        planes::max_pool_ceil(x)
    }

    fn upsample_like(&self, x: &Map, like: &Map) -> Map {
        planes::resize_bilinear(x, like.h, like.w)
    }

    fn add(&self, mut a: Map, b: &Map) -> Map {
        planes::add_assign(&mut a, b);
        a
    }

    fn sigmoid(&self, mut x: Map) -> Map {
        planes::sigmoid(&mut x);
        x
    }
}
