//! The three transforms of Winograd F(2×2, 3×3): the kernel's `G g Gᵀ` (once, at load), the
//! input patches' `Bᵀ d B` and the products' `Aᵀ m A`. The last two work on whole runs of
//! tiles as vector operations (one channel and one row of tiles at a time), since at the
//! network's 320² levels with few channels they, not the GEMMs, set the pace.

use rayon::prelude::*;

use super::super::Map;
use super::Band;

/// The part of a band that lies in one row of tiles.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub row: usize,
    /// First tile column.
    pub col: usize,
    pub len: usize,
    /// Offset of its first tile in the band.
    pub off: usize,
}

pub(super) fn segments(t0: usize, count: usize, tx: usize) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut t = t0;
    while t < t0 + count {
        let (row, col) = (t / tx, t % tx);
        let len = (tx - col).min(t0 + count - t);
        out.push(Segment {
            row,
            col,
            len,
            off: t - t0,
        });
        t += len;
    }
    out
}

/// `G g Gᵀ` of a 3×3 kernel, row-major 4×4.
pub(super) fn kernel_transform(g: &[f32]) -> [f32; 16] {
    // Rows of G: [1,0,0], [½,½,½], [½,-½,½], [0,0,1].
    let gt = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut tmp = [[0f32; 3]; 4]; // G g: 4×3
    for col in 0..3 {
        let v = gt(g[col], g[3 + col], g[6 + col]);
        for r in 0..4 {
            tmp[r][col] = v[r];
        }
    }
    let mut out = [0f32; 16];
    for r in 0..4 {
        let v = gt(tmp[r][0], tmp[r][1], tmp[r][2]);
        out[r * 4..r * 4 + 4].copy_from_slice(&v);
    }
    out
}

/// `V[ch][t][j] = (Bᵀ d B)[t]` of tile `j` of the band, for every input channel (the parts'
/// channels in order); a patch reaches one pixel beyond its tile on each side, zero outside the
/// image. Each channel's 16 runs of `len` values are contiguous, so channels are independent
/// tasks, and `V[t]` is a `cin × len` matrix of row stride `16 · len` for the GEMM.
///
/// The row part of the transform (`Bᵀ d`) combines four padded input rows; the column part
/// reads the even and odd columns of each result apart.
pub(super) fn input_transform(parts: &[&Map], b: &Band, v: &mut [f32], threaded: bool) {
    let (h, w) = (parts[0].h, parts[0].w);
    let nt = b.len;
    let cin: usize = parts.iter().map(|p| p.c).sum();
    let mut starts = Vec::with_capacity(parts.len());
    let mut total = 0;
    for p in parts {
        starts.push(total);
        total += p.c;
    }
    let fill = |ch: usize, out: &mut [f32], scratch: &mut RowScratch| {
        let pi = starts.partition_point(|&s| s <= ch) - 1;
        let src = &parts[pi].image(b.img)[(ch - starts[pi]) * h * w..][..h * w];
        for &Segment { row, col, len, off } in &b.segs {
            // Padded input: columns 2·col − 1 .. 2·(col + len) + 1, rows 2·row − 1 .. + 4.
            let width = 2 * len + 2;
            let x0 = 2 * col as isize - 1;
            for r in 0..4 {
                let y = 2 * row as isize - 1 + r as isize;
                let p = &mut scratch.rows[r][..width];
                if y < 0 || y >= h as isize {
                    p.fill(0.0);
                    continue;
                }
                let line = &src[y as usize * w..][..w];
                let lo = (-x0).max(0) as usize;
                let hi = ((w as isize - x0).max(0) as usize).min(width);
                p[..lo].fill(0.0);
                if hi > lo {
                    let sx = (x0 + lo as isize) as usize;
                    p[lo..hi].copy_from_slice(&line[sx..sx + hi - lo]);
                }
                p[hi.max(lo)..].fill(0.0);
            }
            let [p0, p1, p2, p3] = &scratch.rows;
            let combos: [[&[f32]; 2]; 4] = [[p0, p2], [p1, p2], [p2, p1], [p1, p3]];
            for (r, [a, bb]) in combos.iter().enumerate() {
                // Bᵀ rows: [1,0,-1,0], [0,1,1,0], [0,-1,1,0], [0,1,0,-1].
                let sign = if r == 1 { 1.0 } else { -1.0 };
                let (odd, even) = (&mut scratch.odd[..=len], &mut scratch.even[..=len]);
                let pairs = a[..width].chunks_exact(2).zip(bb[..width].chunks_exact(2));
                for ((o, e), (pa, pb)) in odd.iter_mut().zip(even.iter_mut()).zip(pairs) {
                    *o = pa[0] + sign * pb[0];
                    *e = pa[1] + sign * pb[1];
                }
                let (o, e) = (&scratch.odd[..=len], &scratch.even[..=len]);
                let run = &mut out[(4 * r) * nt + off..];
                let (d0, rest) = run.split_at_mut(nt);
                let (d1, rest) = rest.split_at_mut(nt);
                let (d2, d3) = rest.split_at_mut(nt);
                sub_into(&mut d0[..len], &o[..len], &o[1..]);
                add_into(&mut d1[..len], &e[..len], &o[1..]);
                sub_into(&mut d2[..len], &o[1..], &e[..len]);
                sub_into(&mut d3[..len], &e[..len], &e[1..]);
            }
        }
    };
    let max_len = b.segs.iter().map(|s| s.len).max().unwrap_or(0);
    let new_scratch = || RowScratch::new(max_len);
    let v = &mut v[..16 * cin * nt];
    if threaded {
        v.par_chunks_mut(16 * nt)
            .enumerate()
            .for_each_init(new_scratch, |sc, (ch, out)| fill(ch, out, sc));
    } else {
        let mut sc = new_scratch();
        for (ch, out) in v.chunks_mut(16 * nt).enumerate() {
            fill(ch, out, &mut sc);
        }
    }
}

struct RowScratch {
    rows: [Vec<f32>; 4],
    odd: Vec<f32>,
    even: Vec<f32>,
}

impl RowScratch {
    fn new(len: usize) -> Self {
        let row = vec![0f32; 2 * len + 2];
        RowScratch {
            rows: [row.clone(), row.clone(), row.clone(), row],
            odd: vec![0f32; len + 1],
            even: vec![0f32; len + 1],
        }
    }
}

/// `Aᵀ m A` + bias (+ ReLU) for one output channel of a band: `q[t]` is that channel's row of
/// the product `M[t]` (`len` values); `dst` is `[2, 2 · len]`, the top and the bottom output
/// row of each tile in turn.
pub(super) fn output_transform(
    q: [&[f32]; 16],
    bias: f32,
    relu: bool,
    dst: &mut [f32],
    sc: &mut OutScratch,
) {
    let nt = q[0].len();
    for v in sc.s.iter_mut().chain(sc.y.iter_mut()) {
        v.resize(nt, 0.0);
    }
    // Aᵀ = [[1,1,1,0],[0,1,-1,-1]]: the rows first (s0 = s[0..4], s1 = s[4..8]), then the
    // columns of each.
    let (s0, s1) = sc.s.split_at_mut(4);
    for c in 0..4 {
        add3_into(&mut s0[c], q[c], q[4 + c], q[8 + c]);
        sub3_into(&mut s1[c], q[4 + c], q[8 + c], q[12 + c]);
    }
    let [y00, y01, y10, y11] = &mut sc.y;
    add3_into(y00, &s0[0], &s0[1], &s0[2]);
    sub3_into(y01, &s0[1], &s0[2], &s0[3]);
    add3_into(y10, &s1[0], &s1[1], &s1[2]);
    sub3_into(y11, &s1[1], &s1[2], &s1[3]);
    let (top, bottom) = dst.split_at_mut(2 * nt);
    for (row, (e, od)) in [(top, (&*y00, &*y01)), (bottom, (&*y10, &*y11))] {
        for ((p, &a), &b) in row.chunks_exact_mut(2).zip(e).zip(od) {
            let (a, b) = (a + bias, b + bias);
            p[0] = if relu { a.max(0.0) } else { a };
            p[1] = if relu { b.max(0.0) } else { b };
        }
    }
}

/// Buffers of [`output_transform`], reused across a band's channels.
#[derive(Debug, Default)]
pub(super) struct OutScratch {
    s: [Vec<f32>; 8],
    y: [Vec<f32>; 4],
}

fn add_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = x + y;
    }
}

fn sub_into(dst: &mut [f32], a: &[f32], b: &[f32]) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = x - y;
    }
}

/// `dst = a + b + c`.
fn add3_into(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((d, &x), &y), &z) in dst.iter_mut().zip(a).zip(b).zip(c) {
        *d = x + y + z;
    }
}

/// `dst = a − b − c`.
fn sub3_into(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32]) {
    for (((d, &x), &y), &z) in dst.iter_mut().zip(a).zip(b).zip(c) {
        *d = x - y - z;
    }
}
