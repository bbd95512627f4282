//! What U²-Net's topology asks of whatever runs it. The network is written once
//! ([`super::U2Net`], [`super::rsu::Rsu`], [`super::rsu4f::Rsu4f`]) over this trait, and run by
//! two executors: burn ([`super::burn_exec::BurnExec`], any backend, CUDA among them) and the
//! host CPU ([`super::host::HostExec`], packed GEMM convolutions), so both follow the same graph.

use super::rebnconv::FoldedConv;

pub trait Exec {
    /// A batch of feature maps, `[N, C, H, W]`.
    type Map;
    /// One convolution (BatchNorm folded), resident where the executor computes.
    type Conv;

    /// `[N, C, H, W]` values, row-major, as a map.
    fn input(&self, data: Vec<f32>, shape: [usize; 4]) -> Self::Map;

    /// A map's values, row-major.
    fn values(&self, x: Self::Map) -> Vec<f32>;

    /// Uploads or repacks one loaded convolution.
    fn prepare(&self, conv: &FoldedConv) -> Self::Conv;

    /// `conv(cat(parts, channels))`, with the convolution's bias and, for REBNCONV, its ReLU.
    fn conv(&self, conv: &Self::Conv, parts: &[&Self::Map]) -> Self::Map;

    /// `MaxPool2d(2, stride=2, ceil_mode=True)`.
    fn pool(&self, x: &Self::Map) -> Self::Map;

    /// `_upsample_like(x, like)`: half-pixel bilinear resize to `like`'s height and width.
    fn upsample_like(&self, x: &Self::Map, like: &Self::Map) -> Self::Map;

    /// `a + b`, element-wise (RSU's residual).
    fn add(&self, a: Self::Map, b: &Self::Map) -> Self::Map;

    /// The logistic function, element-wise.
    fn sigmoid(&self, x: Self::Map) -> Self::Map;
}
