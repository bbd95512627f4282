//! Summaries of latency samples. Every sample is kept (a run holds thousands, not millions),
//! so percentiles are exact: the nearest-rank definition, the smallest sample such that at
//! least p % of the samples are at or below it — always a value that was observed, and
//! computable by hand.

use serde::Serialize;

/// Samples of one quantity, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<f64>,
    sorted: bool,
}

impl Samples {
    pub fn push(&mut self, v: f64) {
        if v.is_finite() {
            self.values.push(v);
            self.sorted = false;
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.values.sort_by(f64::total_cmp);
            self.sorted = true;
        }
    }

    /// The nearest-rank `p`-th percentile (0 < p ≤ 100); `None` without samples.
    pub fn percentile(&mut self, p: f64) -> Option<f64> {
        if self.values.is_empty() || !(p > 0.0 && p <= 100.0) {
            return None;
        }
        self.sort();
        let n = self.values.len();
        // p·n/100 is exact for whole p; the small allowance keeps a p written in decimal
        // (99.9 is not exact in binary) from rounding up past the rank it names.
        let rank = (p * n as f64 / 100.0 - 1e-9).ceil() as usize;
        Some(self.values[rank.clamp(1, n) - 1])
    }

    pub fn min(&mut self) -> Option<f64> {
        self.sort();
        self.values.first().copied()
    }

    pub fn max(&mut self) -> Option<f64> {
        self.sort();
        self.values.last().copied()
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.values.is_empty()).then(|| self.values.iter().sum::<f64>() / self.len() as f64)
    }

    pub fn summary(&mut self) -> Option<Summary> {
        Some(Summary {
            count: self.len(),
            min: self.min()?,
            mean: self.mean()?,
            p50: self.percentile(50.0)?,
            p90: self.percentile(90.0)?,
            p95: self.percentile(95.0)?,
            p99: self.percentile(99.0)?,
            max: self.max()?,
        })
    }
}

impl FromIterator<f64> for Samples {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        let mut s = Samples::default();
        for v in iter {
            s.push(v);
        }
        s
    }
}

/// The figures reported for each latency, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_a_hand_computed_set() {
        // 1..=20 shuffled: the p-th percentile is the ⌈p·20/100⌉-th smallest.
        let mut s: Samples = [
            7.0, 3.0, 20.0, 1.0, 14.0, 9.0, 18.0, 2.0, 11.0, 5.0, 16.0, 4.0, 13.0, 8.0, 19.0, 6.0,
            12.0, 10.0, 17.0, 15.0,
        ]
        .into_iter()
        .collect();
        assert_eq!(s.percentile(50.0), Some(10.0));
        assert_eq!(s.percentile(90.0), Some(18.0));
        assert_eq!(s.percentile(95.0), Some(19.0));
        assert_eq!(s.percentile(99.0), Some(20.0));
        assert_eq!(s.percentile(100.0), Some(20.0));
        assert_eq!(s.percentile(5.0), Some(1.0));
        assert_eq!(s.percentile(5.1), Some(2.0));
        assert_eq!(s.percentile(0.0), None);
        let sum = s.summary().expect("samples");
        assert_eq!(
            (sum.count, sum.min, sum.max, sum.mean),
            (20, 1.0, 20.0, 10.5)
        );
    }

    #[test]
    fn small_sets_take_observed_values() {
        let mut s: Samples = [0.4, 0.1, 0.3, 0.2].into_iter().collect();
        assert_eq!(s.percentile(50.0), Some(0.2));
        assert_eq!(s.percentile(75.0), Some(0.3));
        assert_eq!(s.percentile(76.0), Some(0.4));
        let mut one: Samples = [2.5].into_iter().collect();
        assert_eq!(one.percentile(1.0), Some(2.5));
        assert_eq!(one.percentile(99.0), Some(2.5));
        let mut thousand: Samples = (1..=1000).map(f64::from).collect();
        assert_eq!(thousand.percentile(99.9), Some(999.0));
    }

    #[test]
    fn no_samples_no_figures_and_non_finite_values_are_ignored() {
        let mut s: Samples = [f64::NAN, f64::INFINITY].into_iter().collect();
        assert!(s.is_empty());
        assert_eq!(s.summary(), None);
        assert_eq!(s.percentile(50.0), None);
        s.push(1.0);
        s.push(3.0);
        assert_eq!(s.percentile(50.0), Some(1.0));
        s.push(0.5);
        assert_eq!(s.min(), Some(0.5), "sorted again after a push");
    }
}
