//! Test support for the host convolutions: the definition of `conv(cat(parts))` in f64 and
//! deterministic inputs and layers.

use super::super::rebnconv::FoldedConv;
use super::Map;

/// `conv(cat(parts))` by its definition, in f64.
fn naive(c: &FoldedConv, parts: &[&Map]) -> Vec<f32> {
    let (n, h, w) = (parts[0].n, parts[0].h, parts[0].w);
    let [o_ch, i_ch, k, _] = c.shape;
    let (d, p) = (c.dilation as isize, c.padding as isize);
    let input = |img: usize, ch: usize, y: isize, x: isize| -> f64 {
        if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
            return 0.0;
        }
        let mut ch = ch;
        for part in parts {
            if ch < part.c {
                return f64::from(part.image(img)[(ch * h + y as usize) * w + x as usize]);
            }
            ch -= part.c;
        }
        unreachable!("channel beyond the parts")
    };
    let mut out = Vec::with_capacity(n * o_ch * h * w);
    for img in 0..n {
        for o in 0..o_ch {
            for y in 0..h as isize {
                for x in 0..w as isize {
                    let mut acc = f64::from(c.bias[o]);
                    for i in 0..i_ch {
                        for ky in 0..k {
                            for kx in 0..k {
                                let wv = c.weight[((o * i_ch + i) * k + ky) * k + kx];
                                let v =
                                    input(img, i, y + ky as isize * d - p, x + kx as isize * d - p);
                                acc += f64::from(wv) * v;
                            }
                        }
                    }
                    out.push(if c.relu { acc.max(0.0) } else { acc } as f32);
                }
            }
        }
    }
    out
}

pub(super) fn values(len: usize, seed: u64) -> Vec<f32> {
    (0..len as u64)
        .map(|i| ((i * 2_654_435_761 + seed * 97) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

pub(super) fn map(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Map {
    Map {
        n,
        c,
        h,
        w,
        data: values(n * c * h * w, seed),
    }
}

pub(super) fn layer(
    out_ch: usize,
    in_ch: usize,
    kernel: usize,
    dilation: usize,
    relu: bool,
) -> FoldedConv {
    FoldedConv {
        key: "test".into(),
        weight: values(out_ch * in_ch * kernel * kernel, 7)
            .iter()
            .map(|v| v * 0.1)
            .collect(),
        shape: [out_ch, in_ch, kernel, kernel],
        bias: values(out_ch, 3),
        padding: dilation * (kernel / 2),
        dilation,
        relu,
        inputs: 1,
    }
}

/// Asserts that `ours` is `conv(cat(parts))` within float rounding.
pub(super) fn matches_definition(c: &FoldedConv, parts: &[&Map], ours: &Map) {
    let expected = naive(c, parts);
    assert_eq!(ours.data.len(), expected.len());
    let worst = ours
        .data
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "{}: worst {worst}", c.key);
}
