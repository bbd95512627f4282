//! The two tensor operations U²-Net needs besides convolution, written with plain burn tensor
//! ops so that they run unchanged on every backend:
//!
//! - [`max_pool_ceil`]: `nn.MaxPool2d(2, stride=2, ceil_mode=True)`;
//! - [`resize_bilinear`]: `F.interpolate(mode="bilinear", align_corners=False)` (what the ONNX
//!   export calls `Resize(linear, pytorch_half_pixel)`), U²-Net's `_upsample_like`.

use burn::tensor::module::max_pool2d;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

/// `MaxPool2d(2, stride=2, ceil_mode=True)`: output `ceil(H/2) × ceil(W/2)`; a window hanging
/// over the bottom or right edge takes the maximum of its in-bounds values. Odd sides are padded
/// with −∞ (never the maximum), so the pool itself runs without ceil mode: the fast path of every
/// backend, and the identical result.
pub fn max_pool_ceil<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let mut x = x;
    if h % 2 == 1 {
        let pad = Tensor::<B, 4>::full([n, c, 1, w], f32::NEG_INFINITY, &device);
        x = Tensor::cat(vec![x, pad], 2);
    }
    if w % 2 == 1 {
        let pad = Tensor::<B, 4>::full([n, c, h + h % 2, 1], f32::NEG_INFINITY, &device);
        x = Tensor::cat(vec![x, pad], 3);
    }
    max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// The two source taps and their weights of one output sample of a half-pixel linear resize,
/// as PyTorch's `upsample_bilinear2d` (align_corners=False) computes them: `src = (i + 0.5) ·
/// in/out − 0.5`, clamped below at 0, `i0 = floor(src)`, `i1 = min(i0 + 1, in − 1)`,
/// `λ = src − i0`, weights `(1 − λ, λ)`. The scale is `in/out` in f32 as PyTorch's CPU kernel
/// uses (`area_pixel_compute_scale<float>`).
pub fn linear_taps(src_len: usize, dst_len: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = src_len as f32 / dst_len as f32;
    (0..dst_len)
        .map(|i| {
            let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src as usize).min(src_len - 1);
            let i1 = (i0 + 1).min(src_len - 1);
            let l = src - i0 as f32;
            (i0, i1, 1.0 - l, l)
        })
        .collect()
}

/// Resizes `[N, C, H, W]` to `[N, C, h2, w2]` bilinearly with half-pixel centres
/// (`_upsample_like(src, tar)` with `tar`'s size), separably: along W, then along H. Each pass
/// gathers the two taps with `select` and blends them, `w0·x[i0] + w1·x[i1]`, which is PyTorch's
/// own arithmetic (`h0λ·(w0λ·x00 + w1λ·x01) + h1λ·(…)`), not a dense interpolation matrix (that
/// would cost O(in·out) per line instead of two taps).
pub fn resize_bilinear<B: Backend>(x: Tensor<B, 4>, h2: usize, w2: usize) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    let x = if w2 != w { resize_axis(x, 3, w2) } else { x };
    if h2 != h { resize_axis(x, 2, h2) } else { x }
}

fn resize_axis<B: Backend>(x: Tensor<B, 4>, axis: usize, dst: usize) -> Tensor<B, 4> {
    let device = x.device();
    let src = x.dims()[axis];
    let taps = linear_taps(src, dst);
    let idx = |pick: fn(&(usize, usize, f32, f32)) -> usize| {
        let v: Vec<i64> = taps.iter().map(|t| pick(t) as i64).collect();
        Tensor::<B, 1, Int>::from_data(TensorData::new(v, [dst]), &device)
    };
    let weight = |pick: fn(&(usize, usize, f32, f32)) -> f32| {
        let v: Vec<f32> = taps.iter().map(pick).collect();
        let mut shape = [1, 1, 1, 1];
        shape[axis] = dst;
        Tensor::<B, 4>::from_data(TensorData::new(v, shape), &device)
    };
    let a = x.clone().select(axis, idx(|t| t.0));
    let b = x.select(axis, idx(|t| t.1));
    a * weight(|t| t.2) + b * weight(|t| t.3)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::tensor::CpuBackend;

    type B = CpuBackend;

    fn tensor(v: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(v, shape), &Default::default())
    }

    fn values(t: Tensor<B, 4>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    #[test]
    fn ceil_mode_pool_on_odd_sides() {
        // 3×5: windows rows {0,1},{2}; columns {0,1},{2,3},{4}.
        let x: Vec<f32> = (0..15).map(|v| -(v as f32)).collect();
        let y = max_pool_ceil(tensor(x, [1, 1, 3, 5]));
        assert_eq!(y.dims(), [1, 1, 2, 3]);
        assert_eq!(values(y), vec![0.0, -2.0, -4.0, -10.0, -12.0, -14.0]);
    }

    #[test]
    fn bilinear_matches_pytorch_half_pixel() {
        // torch.nn.functional.interpolate(torch.tensor([[[[1., 2., 4.]]]]), size=(1, 5),
        //   mode="bilinear", align_corners=False) = [1.0, 1.4, 2.0, 3.2, 4.0]
        let y = resize_bilinear(tensor(vec![1.0, 2.0, 4.0], [1, 1, 1, 3]), 1, 5);
        let v = values(y);
        for (a, b) in v.iter().zip([1.0, 1.4, 2.0, 3.2, 4.0]) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
        // 2× upsampling of a 2×2 image: rows blend (0.75, 0.25) except at the clamped borders.
        let y = values(resize_bilinear(
            tensor(vec![0.0, 4.0, 8.0, 12.0], [1, 1, 2, 2]),
            4,
            4,
        ));
        assert_eq!(&y[..4], &[0.0, 1.0, 3.0, 4.0]);
        assert_eq!(&y[4..8], &[2.0, 3.0, 5.0, 6.0]);
        assert_eq!(&y[12..], &[8.0, 9.0, 11.0, 12.0]);
    }

    #[test]
    fn downsampling_taps() {
        // 5 → 3 (the sizes a ceil-mode pyramid produces): scale 5/3.
        let t = linear_taps(5, 3);
        assert_eq!((t[0].0, t[0].1), (0, 1));
        assert!((t[0].3 - (5.0f32 / 3.0 * 0.5 - 0.5)).abs() < 1e-7);
        assert_eq!((t[2].0, t[2].1), (3, 4));
    }
}
