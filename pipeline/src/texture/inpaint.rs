//! Image-space inpainting of texels no view saw: Telea's fast-marching method. Unknown texels
//! are filled in order of their distance to the known region, each from the known texels within
//! a radius, weighted by how well they lie along the marching direction, their distance and
//! their level-set difference, each extrapolated to the texel along its image gradient.
//! (Hunyuan3D-Paint calls OpenCV's Navier–Stokes variant with the same radius; both march the
//! same front.) The extrapolation can overshoot at chart borders, so a filled value is clamped
//! to the range of the values it came from.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Known,
    Band,
    Unknown,
}

/// A band texel in the heap, smallest arrival time first.
#[derive(PartialEq)]
struct Front(f32, usize);

impl Eq for Front {}

impl PartialOrd for Front {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Front {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

/// Fills every texel where `fill` is set and `known` is not, from the known texels; texels in
/// neither set are never read nor written. Returns how many texels were filled (a fill region
/// with no known texel next to it stays as it was).
pub fn telea(
    rgb: &mut [[f32; 3]],
    width: usize,
    height: usize,
    known: &[bool],
    fill: &[bool],
    radius: f32,
) -> usize {
    let n = width * height;
    let mut state: Vec<State> = (0..n)
        .map(|i| {
            if known[i] {
                State::Known
            } else if fill[i] {
                State::Unknown
            } else {
                // Neither: a wall the front does not cross.
                State::Known
            }
        })
        .collect();
    let usable: Vec<bool> = known.to_vec();
    let mut time = vec![f32::INFINITY; n];
    let mut heap = BinaryHeap::new();
    let neighbours = |i: usize| {
        let (x, y) = (i % width, i / width);
        let mut out = [usize::MAX; 4];
        if x > 0 {
            out[0] = i - 1;
        }
        if x + 1 < width {
            out[1] = i + 1;
        }
        if y > 0 {
            out[2] = i - width;
        }
        if y + 1 < height {
            out[3] = i + width;
        }
        out
    };
    // The initial band: known texels touching an unknown one.
    for i in 0..n {
        if usable[i]
            && neighbours(i)
                .iter()
                .any(|&j| j != usize::MAX && state[j] == State::Unknown)
        {
            state[i] = State::Band;
            time[i] = 0.0;
            heap.push(Front(0.0, i));
        }
    }
    let mut values_known = usable;
    let r = radius.max(1.0);
    let ri = r.ceil() as isize;
    let mut filled = 0;
    while let Some(Front(t, i)) = heap.pop() {
        if t > time[i] || state[i] == State::Known {
            continue;
        }
        state[i] = State::Known;
        for j in neighbours(i) {
            if j == usize::MAX || state[j] != State::Unknown {
                continue;
            }
            let tj = arrival(j, width, height, &time, &state);
            // Fill j from the known texels around it.
            let (x, y) = ((j % width) as isize, (j / width) as isize);
            let grad = gradient(j, width, height, &time, &state);
            let mut acc = [0f64; 3];
            let mut wsum = 0f64;
            let mut lo = [f32::INFINITY; 3];
            let mut hi = [f32::NEG_INFINITY; 3];
            for dy in -ri..=ri {
                for dx in -ri..=ri {
                    let (qx, qy) = (x + dx, y + dy);
                    if qx < 0 || qy < 0 || qx >= width as isize || qy >= height as isize {
                        continue;
                    }
                    let d2 = (dx * dx + dy * dy) as f32;
                    if d2 == 0.0 || d2 > r * r {
                        continue;
                    }
                    let q = qy as usize * width + qx as usize;
                    if !values_known[q] {
                        continue;
                    }
                    let (rx, ry) = (-dx as f32, -dy as f32);
                    let dist = d2.sqrt();
                    let dir = ((rx * grad[0] + ry * grad[1]) / dist).abs().max(1e-6);
                    let dst = 1.0 / d2;
                    let lev = if time[q].is_finite() {
                        1.0 / (1.0 + (time[q] - tj).abs())
                    } else {
                        1.0
                    };
                    let w = f64::from(dir * dst * lev);
                    let g = image_gradient(rgb, &values_known, width, height, q);
                    for k in 0..3 {
                        let v = rgb[q][k];
                        lo[k] = lo[k].min(v);
                        hi[k] = hi[k].max(v);
                        let extrapolated = v + g[0][k] * rx + g[1][k] * ry;
                        acc[k] += w * f64::from(extrapolated);
                    }
                    wsum += w;
                }
            }
            if wsum > 0.0 {
                rgb[j] = [0, 1, 2].map(|k| ((acc[k] / wsum) as f32).clamp(lo[k], hi[k]));
                values_known[j] = true;
                filled += 1;
            }
            time[j] = tj;
            state[j] = State::Band;
            heap.push(Front(tj, j));
        }
    }
    filled
}

/// The colour gradient at a known texel, from its known neighbours (central differences where
/// both sides are known, one-sided where one is, zero where none is).
fn image_gradient(
    rgb: &[[f32; 3]],
    known: &[bool],
    width: usize,
    height: usize,
    q: usize,
) -> [[f32; 3]; 2] {
    let (x, y) = (q % width, q / width);
    let axis = |lo: Option<usize>, hi: Option<usize>| -> [f32; 3] {
        let lo = lo.filter(|&i| known[i]);
        let hi = hi.filter(|&i| known[i]);
        match (lo, hi) {
            (Some(a), Some(b)) => [0, 1, 2].map(|k| (rgb[b][k] - rgb[a][k]) / 2.0),
            (Some(a), None) => [0, 1, 2].map(|k| rgb[q][k] - rgb[a][k]),
            (None, Some(b)) => [0, 1, 2].map(|k| rgb[b][k] - rgb[q][k]),
            (None, None) => [0.0; 3],
        }
    };
    [
        axis((x > 0).then(|| q - 1), (x + 1 < width).then(|| q + 1)),
        axis(
            (y > 0).then(|| q - width),
            (y + 1 < height).then(|| q + width),
        ),
    ]
}

/// Arrival time at `i` from its neighbours that the front has reached (the eikonal equation's
/// upwind solution on the grid, as in Telea's paper).
fn arrival(i: usize, width: usize, height: usize, time: &[f32], state: &[State]) -> f32 {
    let (x, y) = (i % width, i / width);
    let reached = |j: usize| {
        if state[j] == State::Unknown {
            f32::INFINITY
        } else {
            time[j]
        }
    };
    let tx = {
        let l = if x > 0 { reached(i - 1) } else { f32::INFINITY };
        let r = if x + 1 < width {
            reached(i + 1)
        } else {
            f32::INFINITY
        };
        l.min(r)
    };
    let ty = {
        let u = if y > 0 {
            reached(i - width)
        } else {
            f32::INFINITY
        };
        let d = if y + 1 < height {
            reached(i + width)
        } else {
            f32::INFINITY
        };
        u.min(d)
    };
    let (a, b) = if tx < ty { (tx, ty) } else { (ty, tx) };
    if !a.is_finite() {
        return f32::INFINITY;
    }
    if !b.is_finite() || b - a >= 1.0 {
        return a + 1.0;
    }
    let s = 2.0 - (a - b) * (a - b);
    (a + b + s.max(0.0).sqrt()) / 2.0
}

/// Central-difference gradient of the arrival time where the neighbours have one.
fn gradient(i: usize, width: usize, height: usize, time: &[f32], state: &[State]) -> [f32; 2] {
    let (x, y) = (i % width, i / width);
    let t = |j: usize| (state[j] != State::Unknown && time[j].is_finite()).then_some(time[j]);
    let axis = |lo: Option<usize>, hi: Option<usize>| match (lo.and_then(t), hi.and_then(t)) {
        (Some(a), Some(b)) => (b - a) / 2.0,
        _ => 0.0,
    };
    let gx = axis((x > 0).then(|| i - 1), (x + 1 < width).then(|| i + 1));
    let gy = axis(
        (y > 0).then(|| i - width),
        (y + 1 < height).then(|| i + width),
    );
    let norm = (gx * gx + gy * gy).sqrt();
    if norm > 0.0 {
        [gx / norm, gy / norm]
    } else {
        [0.0, 0.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_in_a_smooth_ramp_is_filled_close_to_the_ramp() {
        let (w, h) = (48, 40);
        let truth = |i: usize| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            [x * 4.0, y * 5.0, 100.0]
        };
        let mut rgb: Vec<[f32; 3]> = (0..w * h).map(truth).collect();
        let hole = |i: usize| {
            let (x, y) = ((i % w) as i32, (i / w) as i32);
            (x - 24).pow(2) + (y - 20).pow(2) <= 64
        };
        let known: Vec<bool> = (0..w * h).map(|i| !hole(i)).collect();
        let fill: Vec<bool> = (0..w * h).map(hole).collect();
        for (i, px) in rgb.iter_mut().enumerate() {
            if hole(i) {
                *px = [0.0; 3];
            }
        }
        let filled = telea(&mut rgb, w, h, &known, &fill, 3.0);
        assert_eq!(filled, fill.iter().filter(|&&f| f).count());
        for i in (0..w * h).filter(|&i| hole(i)) {
            let t = truth(i);
            for k in 0..3 {
                assert!(
                    (rgb[i][k] - t[k]).abs() < 12.0,
                    "texel {i}: {:?} vs {t:?}",
                    rgb[i]
                );
            }
        }
    }

    #[test]
    fn texels_outside_the_fill_region_are_untouched() {
        let (w, h) = (8, 8);
        let mut rgb = vec![[7.0f32; 3]; w * h];
        rgb[0] = [1.0; 3];
        let known = vec![false; w * h];
        let fill = vec![false; w * h];
        assert_eq!(telea(&mut rgb, w, h, &known, &fill, 3.0), 0);
        assert_eq!(rgb[0], [1.0; 3]);
    }
}
