//! The host executor: U²-Net on the CPU without burn. Convolutions are one packed GEMM per band
//! of output rows over an im2col buffer (the `gemm` crate's cache-blocked AVX2/AVX-512 kernels,
//! threaded with rayon), with bias and ReLU applied in one pass afterwards; pooling, resizing
//! and the residual sums are plain loops over channel planes, in parallel. burn-ndarray's
//! direct convolution reaches a fifth of onnxruntime's throughput on the same cores
//! (BENCHMARKS.md, "Background removal"), which is why the CPU path does not go through burn.

mod conv;
mod planes;

use super::exec::Exec;
use super::rebnconv::FoldedConv;

pub use conv::HostConv;

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
