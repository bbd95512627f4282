//! Full-covariance Gaussian mixtures in RGB, the colour models of GrabCut (Rother et al. 2004).
//! Components start from a deterministic principal-axis split (Orchard–Bouman) and are refitted
//! from hard assignments, as GrabCut does in each of its iterations.

/// Variance added to every component's diagonal (RGB units²): flat-coloured regions would
/// otherwise give singular covariances and unbounded likelihoods.
const VARIANCE_FLOOR: f64 = 12.0;

const LN_2PI: f32 = 1.837_877;

#[derive(Debug, Clone)]
struct Component {
    mean: [f32; 3],
    inv_cov: [[f32; 3]; 3],
    /// `ln(weight) - ln|Σ|/2 - 3·ln(2π)/2`.
    log_norm: f32,
}

impl Component {
    fn log_density(&self, x: [f32; 3]) -> f32 {
        let d = [
            x[0] - self.mean[0],
            x[1] - self.mean[1],
            x[2] - self.mean[2],
        ];
        let m = &self.inv_cov;
        let q = d[0] * (m[0][0] * d[0] + 2.0 * (m[0][1] * d[1] + m[0][2] * d[2]))
            + d[1] * (m[1][1] * d[1] + 2.0 * m[1][2] * d[2])
            + d[2] * m[2][2] * d[2];
        self.log_norm - 0.5 * q
    }
}

#[derive(Debug, Clone)]
pub(super) struct Gmm {
    components: Vec<Component>,
}

/// Running sums of one component's pixels.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    n: f64,
    sum: [f64; 3],
    sq: [[f64; 3]; 3],
}

impl Stats {
    fn add(&mut self, x: [f32; 3]) {
        self.n += 1.0;
        for i in 0..3 {
            let xi = f64::from(x[i]);
            self.sum[i] += xi;
            for j in 0..3 {
                self.sq[i][j] += xi * f64::from(x[j]);
            }
        }
    }

    fn mean_cov(&self) -> ([f64; 3], [[f64; 3]; 3]) {
        let mean = self.sum.map(|s| s / self.n);
        let mut cov = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                cov[i][j] = self.sq[i][j] / self.n - mean[i] * mean[j];
            }
            cov[i][i] += VARIANCE_FLOOR;
        }
        (mean, cov)
    }
}

impl Gmm {
    /// Fits up to `k` components to the samples; None when there are none.
    pub(super) fn fit(samples: &[[f32; 3]], k: usize) -> Option<Gmm> {
        if samples.is_empty() {
            return None;
        }
        let labels = split_init(samples, k.max(1));
        let gmm = Gmm::from_labels(samples, &labels, k.max(1))?;
        // One hard-assignment refinement, as a GrabCut iteration would do.
        let labels: Vec<usize> = samples.iter().map(|&x| gmm.component_of(x)).collect();
        Gmm::from_labels(samples, &labels, k.max(1)).or(Some(gmm))
    }

    /// Refits the components from the given hard assignments.
    pub(super) fn refit(&self, samples: &[[f32; 3]]) -> Option<Gmm> {
        let labels: Vec<usize> = samples.iter().map(|&x| self.component_of(x)).collect();
        Gmm::from_labels(samples, &labels, self.components.len())
    }

    fn from_labels(samples: &[[f32; 3]], labels: &[usize], k: usize) -> Option<Gmm> {
        let mut stats = vec![Stats::default(); k];
        for (&x, &l) in samples.iter().zip(labels) {
            stats[l.min(k - 1)].add(x);
        }
        let total: f64 = stats.iter().map(|s| s.n).sum();
        let components: Vec<Component> = stats
            .iter()
            .filter(|s| s.n >= 1.0)
            .filter_map(|s| {
                let (mean, cov) = s.mean_cov();
                let (inv, det) = invert3(cov)?;
                let log_norm = ((s.n / total).ln() - 0.5 * det.ln()) as f32 - 1.5 * LN_2PI;
                Some(Component {
                    mean: mean.map(|m| m as f32),
                    inv_cov: inv.map(|r| r.map(|v| v as f32)),
                    log_norm,
                })
            })
            .collect();
        (!components.is_empty()).then_some(Gmm { components })
    }

    /// `ln p(x)`, a log-sum-exp over the components.
    pub(super) fn log_likelihood(&self, x: [f32; 3]) -> f32 {
        let mut best = f32::NEG_INFINITY;
        let mut logs = [0f32; 8];
        let n = self.components.len().min(logs.len());
        for (l, c) in logs.iter_mut().zip(&self.components) {
            *l = c.log_density(x);
            best = best.max(*l);
        }
        let s: f32 = logs[..n].iter().map(|l| (l - best).exp()).sum();
        best + s.ln()
    }

    fn component_of(&self, x: [f32; 3]) -> usize {
        let mut best = (0, f32::NEG_INFINITY);
        for (i, c) in self.components.iter().enumerate() {
            let l = c.log_density(x);
            if l > best.1 {
                best = (i, l);
            }
        }
        best.0
    }
}

/// Splits the sample set `k - 1` times, each time the cluster with the largest variance along
/// its principal axis, at its mean along that axis.
fn split_init(samples: &[[f32; 3]], k: usize) -> Vec<usize> {
    let mut labels = vec![0usize; samples.len()];
    for next in 1..k {
        let mut stats = vec![Stats::default(); next];
        for (&x, &l) in samples.iter().zip(&labels) {
            stats[l].add(x);
        }
        let mut best: Option<(usize, f64, [f64; 3], [f64; 3])> = None;
        for (c, s) in stats.iter().enumerate() {
            if s.n < 2.0 {
                continue;
            }
            let (mean, cov) = s.mean_cov();
            let (value, axis) = principal_axis(cov);
            if best.is_none_or(|b| value > b.1) {
                best = Some((c, value, mean, axis));
            }
        }
        let Some((c, _, mean, axis)) = best else {
            break;
        };
        let cut: f64 = (0..3).map(|i| mean[i] * axis[i]).sum();
        for (x, l) in samples.iter().zip(labels.iter_mut()) {
            let proj: f64 = (0..3).map(|i| f64::from(x[i]) * axis[i]).sum();
            if *l == c && proj > cut {
                *l = next;
            }
        }
    }
    labels
}

/// Largest eigenvalue and its eigenvector of a symmetric 3×3 matrix, by power iteration.
fn principal_axis(m: [[f64; 3]; 3]) -> (f64, [f64; 3]) {
    let mut v = [0.577_350_3, 0.577_350_3, 0.577_350_3];
    let mut value = 0.0;
    for _ in 0..24 {
        let w: [f64; 3] = std::array::from_fn(|i| (0..3).map(|j| m[i][j] * v[j]).sum());
        let norm = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
        if norm < 1e-12 {
            break;
        }
        value = norm;
        v = w.map(|x| x / norm);
    }
    (value, v)
}

/// Inverse and determinant of a 3×3 matrix; None when it is (numerically) singular.
pub(super) fn invert3(m: [[f64; 3]; 3]) -> Option<([[f64; 3]; 3], f64)> {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    if !(det.is_finite() && det > 1e-9) {
        return None;
    }
    let inv = [
        [
            c00,
            m[0][2] * m[2][1] - m[0][1] * m[2][2],
            m[0][1] * m[1][2] - m[0][2] * m[1][1],
        ],
        [
            c01,
            m[0][0] * m[2][2] - m[0][2] * m[2][0],
            m[0][2] * m[1][0] - m[0][0] * m[1][2],
        ],
        [
            c02,
            m[0][1] * m[2][0] - m[0][0] * m[2][1],
            m[0][0] * m[1][1] - m[0][1] * m[1][0],
        ],
    ];
    Some((inv.map(|r| r.map(|v| v / det)), det))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_colour_clusters() {
        let mut samples = Vec::new();
        for i in 0..200 {
            let j = (i % 7) as f32;
            samples.push([200.0 + j, 30.0 - j, 20.0]);
            samples.push([20.0, 40.0 + j, 220.0 - j]);
        }
        let reds: Vec<[f32; 3]> = samples.iter().step_by(2).copied().collect();
        let red = Gmm::fit(&reds, 5).expect("fits");
        let both = Gmm::fit(&samples, 5).expect("fits");
        assert!(
            red.log_likelihood([203.0, 27.0, 20.0])
                > red.log_likelihood([20.0, 43.0, 217.0]) + 20.0
        );
        assert!(both.log_likelihood([20.0, 43.0, 217.0]) > -20.0);
        assert!(Gmm::fit(&[], 5).is_none());
    }
}
