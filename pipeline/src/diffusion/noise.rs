//! Where a diffusion pipeline's random draws come from. Each sample (one image to delight, one
//! mesh's views) draws from its own source, in the order the reference draws, so a sample's
//! result does not depend on the batch it ran in, and a test can replay the reference's draws.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Standard-normal draws for one sample.
pub trait Noise: Send {
    /// `len` independent N(0, 1) values (a tensor's elements in row-major order).
    fn draw(&mut self, len: usize) -> Vec<f32>;
}

/// Production noise: a seeded ChaCha stream, so a job's seed fixes its texture.
#[derive(Debug, Clone)]
pub struct SeededNoise(ChaCha8Rng);

impl SeededNoise {
    /// The stream of `seed` for the model `stream` names (the delight and multiview models of one
    /// job draw from different streams of the same seed).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        SeededNoise(rng)
    }
}

impl Noise for SeededNoise {
    fn draw(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| StandardNormal.sample(&mut self.0))
            .collect()
    }
}

/// Draws that were recorded elsewhere (the reference's), replayed in order.
#[derive(Debug, Clone, Default)]
pub struct RecordedNoise {
    draws: std::collections::VecDeque<Vec<f32>>,
}

impl RecordedNoise {
    pub fn new(draws: impl IntoIterator<Item = Vec<f32>>) -> Self {
        RecordedNoise {
            draws: draws.into_iter().collect(),
        }
    }

    /// Draws not yet used.
    pub fn remaining(&self) -> usize {
        self.draws.len()
    }
}

impl Noise for RecordedNoise {
    /// # Panics
    /// When the recording is used up or the next draw has another size: the replay no longer
    /// follows the reference, which a test must see at once.
    fn draw(&mut self, len: usize) -> Vec<f32> {
        let next = self
            .draws
            .pop_front()
            .expect("the recorded draws are used up");
        assert_eq!(next.len(), len, "the recorded draw has another size");
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_fixes_the_stream_and_streams_differ() {
        let a = SeededNoise::new(7, 0).draw(1000);
        assert_eq!(a, SeededNoise::new(7, 0).draw(1000));
        assert_ne!(a, SeededNoise::new(7, 1).draw(1000));
        assert_ne!(a, SeededNoise::new(8, 0).draw(1000));
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / 1000.0;
        let var = a
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 999.0;
        assert!(
            mean.abs() < 0.15 && (var - 1.0).abs() < 0.15,
            "{mean} {var}"
        );
    }

    #[test]
    fn recorded_draws_replay_in_order() {
        let mut r = RecordedNoise::new([vec![1.0, 2.0], vec![3.0]]);
        assert_eq!(r.draw(2), [1.0, 2.0]);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.draw(1), [3.0]);
    }
}
