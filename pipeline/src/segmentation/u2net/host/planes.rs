//! The host executor's non-convolution operations, one channel plane per rayon task: the same
//! arithmetic as the burn versions in `super::super::ops` (which the parity tests pin to PyTorch
//! and onnxruntime), with the resize taps from the one place that defines them.

use rayon::prelude::*;

use super::super::ops::linear_taps;
use super::Map;

/// `MaxPool2d(2, stride=2, ceil_mode=True)`: a window over the bottom or right edge takes the
/// maximum of its in-bounds values.
pub fn max_pool_ceil(x: &Map) -> Map {
    let (h, w) = (x.h, x.w);
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = Map::zeros(x.n, x.c, h2, w2);
    out.data
        .par_chunks_mut(h2 * w2)
        .zip(x.data.par_chunks(h * w))
        .for_each(|(dst, src)| {
            for oy in 0..h2 {
                let r0 = &src[2 * oy * w..(2 * oy + 1) * w];
                // An odd height's last window has one row: it pools with itself.
                let r1 = if 2 * oy + 1 < h {
                    &src[(2 * oy + 1) * w..(2 * oy + 2) * w]
                } else {
                    r0
                };
                let row = &mut dst[oy * w2..(oy + 1) * w2];
                for (ox, d) in row.iter_mut().enumerate() {
                    let x0 = 2 * ox;
                    let x1 = (x0 + 1).min(w - 1);
                    *d = r0[x0].max(r0[x1]).max(r1[x0]).max(r1[x1]);
                }
            }
        });
    out
}

/// Half-pixel bilinear resize of every plane to `h2 × w2`, along W then along H, each output
/// `w0·x[i0] + w1·x[i1]` as PyTorch's kernel blends.
pub fn resize_bilinear(x: &Map, h2: usize, w2: usize) -> Map {
    if (x.h, x.w) == (h2, w2) {
        return x.clone();
    }
    let (h, w) = (x.h, x.w);
    let tx = linear_taps(w, w2);
    let ty = linear_taps(h, h2);
    let mut out = Map::zeros(x.n, x.c, h2, w2);
    out.data
        .par_chunks_mut(h2 * w2)
        .zip(x.data.par_chunks(h * w))
        .for_each_init(
            || vec![0f32; h * w2],
            |rows, (dst, src)| {
                for (y, row) in rows.chunks_exact_mut(w2).enumerate() {
                    let s = &src[y * w..(y + 1) * w];
                    for (d, &(i0, i1, a, b)) in row.iter_mut().zip(&tx) {
                        *d = a * s[i0] + b * s[i1];
                    }
                }
                for (drow, &(i0, i1, a, b)) in dst.chunks_exact_mut(w2).zip(&ty) {
                    let r0 = &rows[i0 * w2..(i0 + 1) * w2];
                    let r1 = &rows[i1 * w2..(i1 + 1) * w2];
                    for ((d, &p), &q) in drow.iter_mut().zip(r0).zip(r1) {
                        *d = a * p + b * q;
                    }
                }
            },
        );
    out
}

/// `a += b` (same shape: the residual of one block).
pub fn add_assign(a: &mut Map, b: &Map) {
    a.data
        .par_chunks_mut(PLANE_CHUNK)
        .zip(b.data.par_chunks(PLANE_CHUNK))
        .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(p, q)| *p += q));
}

pub fn sigmoid(x: &mut Map) {
    x.data
        .par_chunks_mut(PLANE_CHUNK)
        .for_each(|c| c.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())));
}

/// Work per rayon task for element-wise passes: large enough to amortise the task, small
/// enough to split a 20×20 stage's maps across cores.
const PLANE_CHUNK: usize = 16 * 1024;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use burn::tensor::{Tensor, TensorData};

    use super::super::super::ops;
    use super::*;
    use crate::tensor::CpuBackend;

    fn map(n: usize, c: usize, h: usize, w: usize) -> Map {
        let data = (0..n * c * h * w)
            .map(|i| ((i * 37 + 11) % 101) as f32 / 10.0 - 5.0)
            .collect();
        Map { n, c, h, w, data }
    }

    fn burn_of(m: &Map) -> Tensor<CpuBackend, 4> {
        Tensor::from_data(
            TensorData::new(m.data.clone(), [m.n, m.c, m.h, m.w]),
            &Default::default(),
        )
    }

    fn close(ours: &Map, theirs: Tensor<CpuBackend, 4>) {
        assert_eq!(theirs.dims(), [ours.n, ours.c, ours.h, ours.w]);
        let t: Vec<f32> = theirs.into_data().to_vec().unwrap();
        for (a, b) in ours.data.iter().zip(&t) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// The burn operations are pinned to PyTorch by their own tests; the host's must agree with
    /// them on the odd sizes a ceil-mode pyramid makes from other inputs than 320².
    #[test]
    fn pool_and_resize_agree_with_the_burn_operations_on_odd_sizes() {
        for (h, w) in [(7, 5), (5, 8), (1, 3)] {
            let x = map(2, 3, h, w);
            close(&max_pool_ceil(&x), ops::max_pool_ceil(burn_of(&x)));
            for (h2, w2) in [(2 * h, 2 * w), (h + 3, w), (h, w + 1), (3, 2)] {
                close(
                    &resize_bilinear(&x, h2, w2),
                    ops::resize_bilinear(burn_of(&x), h2, w2),
                );
            }
        }
    }
}
