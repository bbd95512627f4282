//! The arrival schedule: a Poisson process, homogeneous (`--rate`) or with a rate that ramps
//! linearly (`--ramp`), from a seeded generator so a run can be repeated arrival for arrival.
//!
//! Arrivals of a unit-rate process (exponential gaps of mean 1, by inverse transform) are
//! mapped through the inverse of the cumulative rate Λ(t) = ∫₀ᵗ λ: the time-rescaling theorem
//! makes the result a Poisson process of rate λ(t). For a constant rate that is a plain
//! division; for a ramp it is a quadratic, solved in closed form.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// The arrival rate over the run, in jobs per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Profile {
    Constant {
        rate: f64,
    },
    /// From `from` at the start to `to` at the end of the run, linearly.
    Ramp {
        from: f64,
        to: f64,
    },
}

impl Profile {
    /// λ(t) for a run of `length` seconds.
    pub fn rate_at(&self, t: f64, length: f64) -> f64 {
        match *self {
            Profile::Constant { rate } => rate,
            Profile::Ramp { from, to } => from + (to - from) * (t / length).clamp(0.0, 1.0),
        }
    }

    /// Expected arrivals in `[0, t]`: Λ(t).
    pub fn expected(&self, t: f64, length: f64) -> f64 {
        match *self {
            Profile::Constant { rate } => rate * t,
            Profile::Ramp { from, to } => from * t + (to - from) * t * t / (2.0 * length),
        }
    }

    /// Λ⁻¹(s): the time by which `s` arrivals are expected; `None` if not within the run.
    fn time_of(&self, s: f64, length: f64) -> Option<f64> {
        if s <= 0.0 {
            return Some(0.0);
        }
        let t = match *self {
            Profile::Constant { rate } if rate > 0.0 => s / rate,
            Profile::Constant { .. } => return None,
            Profile::Ramp { from, to } => {
                // a·t² + b·t = s with a = (to − from) / 2L, b = from; the root written as
                // 2s / (b + √(b² + 4as)) stays exact when a → 0 and when b = 0. A negative
                // discriminant means s lies past the vertex of a ramp down to zero, which is
                // at or after the run's end: clamped, the root lands there and is cut below.
                let a = (to - from) / (2.0 * length);
                let disc = (from * from + 4.0 * a * s).max(0.0);
                let denom = from + disc.sqrt();
                if denom <= 0.0 {
                    return None;
                }
                2.0 * s / denom
            }
        };
        (t.is_finite() && t <= length).then_some(t)
    }
}

/// Arrival times from the start of the run, in order, until its end.
#[derive(Debug)]
pub struct Schedule {
    profile: Profile,
    length: f64,
    rng: ChaCha8Rng,
    /// Time of the last arrival of the unit-rate process.
    unit_time: f64,
    done: bool,
}

impl Schedule {
    pub fn new(profile: Profile, duration: Duration, seed: u64) -> Schedule {
        Schedule {
            profile,
            length: duration.as_secs_f64(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            unit_time: 0.0,
            done: false,
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.done {
            return None;
        }
        // Exp(1) by inverse transform; 1 − U is in (0, 1], so the logarithm is finite.
        let u: f64 = self.rng.random();
        self.unit_time += -(1.0 - u).ln();
        match self.profile.time_of(self.unit_time, self.length) {
            Some(t) => Some(Duration::from_secs_f64(t)),
            None => {
                self.done = true;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(profile: Profile, seconds: u64, seed: u64) -> Vec<f64> {
        Schedule::new(profile, Duration::from_secs(seconds), seed)
            .map(|d| d.as_secs_f64())
            .collect()
    }

    /// Kolmogorov–Smirnov distance between the gaps and the exponential distribution of
    /// mean `1 / rate`.
    fn ks_exponential(gaps: &mut [f64], rate: f64) -> f64 {
        gaps.sort_by(f64::total_cmp);
        let n = gaps.len() as f64;
        gaps.iter()
            .enumerate()
            .map(|(i, &x)| {
                let cdf = 1.0 - (-rate * x).exp();
                (cdf - i as f64 / n)
                    .abs()
                    .max(((i + 1) as f64 / n - cdf).abs())
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn a_constant_rate_gives_exponential_gaps_at_that_mean() {
        let rate = 20.0;
        let seconds = 500;
        let t = times(Profile::Constant { rate }, seconds, 7);
        let n = t.len() as f64;
        let expected = rate * seconds as f64;
        // Poisson count: standard deviation √expected; 4σ.
        assert!(
            (n - expected).abs() < 4.0 * expected.sqrt(),
            "{n} arrivals, expected {expected}"
        );
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert!(t.iter().all(|&x| (0.0..=seconds as f64).contains(&x)));
        let mut gaps: Vec<f64> = std::iter::once(t[0])
            .chain(t.windows(2).map(|w| w[1] - w[0]))
            .collect();
        let mean = gaps.iter().sum::<f64>() / n;
        assert!(
            (mean * rate - 1.0).abs() < 0.05,
            "mean gap {mean}, expected {}",
            1.0 / rate
        );
        // The 1 % critical value of the one-sample KS test.
        let d = ks_exponential(&mut gaps, rate);
        assert!(d < 1.63 / n.sqrt(), "KS distance {d}");
    }

    #[test]
    fn the_same_seed_gives_the_same_arrivals_and_another_seed_others() {
        let p = Profile::Constant { rate: 5.0 };
        assert_eq!(times(p, 30, 42), times(p, 30, 42));
        assert_ne!(times(p, 30, 42), times(p, 30, 43));
    }

    #[test]
    fn a_ramp_follows_its_cumulative_rate() {
        let length = 400.0;
        for profile in [
            Profile::Ramp {
                from: 0.0,
                to: 40.0,
            },
            Profile::Ramp {
                from: 30.0,
                to: 5.0,
            },
            Profile::Ramp {
                from: 10.0,
                to: 10.0,
            },
        ] {
            let t = times(profile, length as u64, 3);
            for quarter in 1..=4 {
                let (lo, hi) = (
                    length * (quarter - 1) as f64 / 4.0,
                    length * quarter as f64 / 4.0,
                );
                let got = t.iter().filter(|&&x| x > lo && x <= hi).count() as f64;
                let expected = profile.expected(hi, length) - profile.expected(lo, length);
                assert!(
                    (got - expected).abs() < 4.0 * expected.sqrt(),
                    "{profile:?}, quarter {quarter}: {got} arrivals, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn the_ramp_inverse_undoes_the_cumulative_rate() {
        let length = 60.0;
        for profile in [
            Profile::Ramp { from: 0.0, to: 8.0 },
            Profile::Ramp { from: 8.0, to: 0.0 },
            Profile::Ramp { from: 2.0, to: 3.0 },
        ] {
            for i in 0..=60 {
                let t = f64::from(i);
                let back = profile
                    .time_of(profile.expected(t, length), length)
                    .unwrap_or(f64::NAN);
                assert!((back - t).abs() < 1e-9, "{profile:?} at {t}: {back}");
            }
        }
    }
}
