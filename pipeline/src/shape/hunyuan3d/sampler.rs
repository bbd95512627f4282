//! The samplers: flow-matching Euler (σ from 0 = noise to 1 = data), its guidance-distilled use
//! ("fast": no CFG, guidance fed to `guidance_in`) and the turbo consistency schedule.
//!
//! Schedules are computed in closed form with the reference's arithmetic (numpy `linspace` in
//! float64, PyTorch float32 tensors) so the timesteps the model sees are the reference's bits.
//! Noise is an input: tests inject the reference's; production draws it from [`seeded_noise`],
//! one independent stream per image so an image's result does not depend on its batch.

use burn::tensor::{DType, Tensor, backend::Backend};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use super::ModelError;
use super::config::SchedulerConfig;
use super::dit::Hunyuan3dDit;

/// One model evaluation: the timestep the model sees and the Euler step that follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// `t` in [0, 1] as passed to the DiT (`timestep.to(dtype) / num_train_timesteps`).
    pub t: f32,
    /// `σ_{i+1} − σ_i`.
    pub dt: f32,
}

/// numpy `linspace(start, stop, num, endpoint)` (float64, same rounding).
fn linspace(start: f64, stop: f64, num: usize, endpoint: bool) -> Vec<f64> {
    let div = if endpoint { num.saturating_sub(1) } else { num };
    if num == 0 {
        return Vec::new();
    }
    if div == 0 {
        return vec![start];
    }
    let step = (stop - start) / div as f64;
    let mut out: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if endpoint {
        out[num - 1] = stop;
    }
    out
}

/// The σ schedule (N + 1 values, ending in 1.0) of `steps` model evaluations.
pub fn sigmas(cfg: SchedulerConfig, steps: usize) -> Vec<f64> {
    match cfg {
        SchedulerConfig::FlowMatchEuler { shift, .. } => {
            let mut s: Vec<f64> = linspace(0.0, 1.0, steps, true)
                .into_iter()
                .map(|s| (shift * s / (1.0 + (shift - 1.0) * s)) as f32 as f64)
                .collect();
            s.push(1.0);
            s
        }
        SchedulerConfig::Consistency {
            num_train_timesteps,
            pcm_timesteps,
        } => {
            let base = linspace(0.0, 1.0, num_train_timesteps, true);
            let ratio = (num_train_timesteps / pcm_timesteps) as f64;
            let euler: Vec<usize> = std::iter::once(0)
                .chain(
                    (1..pcm_timesteps)
                        .map(|i| ((i as f64 * ratio).round() as usize).saturating_sub(1)),
                )
                .collect();
            let mut s: Vec<f64> = linspace(0.0, pcm_timesteps as f64, steps, false)
                .into_iter()
                .map(|i| base[euler[(i.floor() as usize).min(euler.len() - 1)]])
                .collect();
            s.push(1.0);
            s
        }
    }
}

/// The evaluation plan for `steps` model calls. The flow-matching schedule's last evaluation has
/// dt = 0 (σ goes 1 → 1) and is dropped: the result is bit-identical with one call fewer.
/// `half` reproduces the fp16 rounding of the timestep when the model runs in fp16.
pub fn plan(cfg: SchedulerConfig, steps: usize, half: bool) -> Result<Vec<Step>, ModelError> {
    if steps == 0 {
        return Err(ModelError::Input(
            "at least one sampling step is needed".into(),
        ));
    }
    let s = sigmas(cfg, steps);
    let (train, flow) = match cfg {
        SchedulerConfig::FlowMatchEuler {
            num_train_timesteps,
            ..
        } => (num_train_timesteps, true),
        SchedulerConfig::Consistency {
            num_train_timesteps,
            ..
        } => (num_train_timesteps, false),
    };
    let train = train as f32;
    Ok((0..steps)
        .map(|i| {
            // Flow-matching keeps σ in a float32 tensor; the consistency scheduler in float64.
            let (timestep, dt) = if flow {
                (s[i] as f32 * train, s[i + 1] as f32 - s[i] as f32)
            } else {
                ((s[i] * train as f64) as f32, (s[i + 1] - s[i]) as f32)
            };
            let t = if half {
                half::f16::from_f32(half::f16::from_f32(timestep).to_f32() / train).to_f32()
            } else {
                timestep / train
            };
            Step { t, dt }
        })
        .filter(|s| s.dt != 0.0)
        .collect())
}

/// How the condition steers the sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guidance {
    /// Classifier-free guidance: the batch is doubled with all-zeros condition tokens and
    /// `v = v_u + s·(v_c − v_u)` (the reference enables it for any scale ≥ 0).
    Cfg(f32),
    /// Guidance-distilled model: the scale is embedded, one pass per step.
    Distilled(f32),
    /// Neither (a negative scale on a non-distilled model): conditional pass only.
    None,
}

impl Guidance {
    /// What the reference pipeline does for this model and scale.
    pub fn for_model<B: Backend>(dit: &Hunyuan3dDit<B>, scale: f32) -> Self {
        if dit.has_guidance_embed() {
            Guidance::Distilled(scale)
        } else if scale >= 0.0 {
            Guidance::Cfg(scale)
        } else {
            Guidance::None
        }
    }
}

/// Sampling was stopped by the step callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Runs the sampling loop from `noise` `[B, L, C]` with condition tokens `cond` `[B, Lc, Cc]`.
/// `on_step(done, total)` runs after each evaluation; returning false stops the loop.
pub fn denoise<B: Backend>(
    dit: &Hunyuan3dDit<B>,
    cond: Tensor<B, 3>,
    noise: Tensor<B, 3>,
    plan: &[Step],
    guidance: Guidance,
    mut on_step: impl FnMut(usize, usize) -> bool,
) -> Result<Tensor<B, 3>, Stopped> {
    let dtype = dit.latent_in.weight.val().dtype();
    let batch = noise.dims()[0];
    let cond = cond.cast(dtype);
    let cond = match guidance {
        Guidance::Cfg(_) => Tensor::cat(vec![cond.clone(), cond.zeros_like()], 0),
        _ => cond,
    };
    let scales: Vec<f32> = match guidance {
        Guidance::Distilled(s) => vec![s; batch],
        _ => Vec::new(),
    };
    let mut x = noise.cast(dtype);
    for (i, step) in plan.iter().enumerate() {
        let v = match guidance {
            Guidance::Cfg(s) => {
                let input = Tensor::cat(vec![x.clone(), x.clone()], 0);
                let out = dit.forward(input, &vec![step.t; 2 * batch], cond.clone(), None);
                let mut halves = out.chunk(2, 0);
                let v_u = halves.pop().expect("two halves");
                let v_c = halves.pop().expect("two halves");
                v_u.clone() + (v_c - v_u) * s
            }
            Guidance::Distilled(_) => {
                dit.forward(x.clone(), &vec![step.t; batch], cond.clone(), Some(&scales))
            }
            Guidance::None => dit.forward(x.clone(), &vec![step.t; batch], cond.clone(), None),
        };
        // The scheduler's update, in fp32 and cast back to the model's dtype.
        x = (super::nn::to_f32(x) + super::nn::to_f32(v) * step.dt).cast(dtype);
        if !on_step(i + 1, plan.len()) {
            return Err(Stopped);
        }
    }
    Ok(if dtype == DType::F32 {
        x
    } else {
        x.cast(DType::F32)
    })
}

/// Standard-normal noise for one image, reproducible from its seed (ChaCha8, stable across
/// platforms and crate versions).
pub fn seeded_noise(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| StandardNormal.sample(&mut rng)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const TURBO: SchedulerConfig = SchedulerConfig::Consistency {
        num_train_timesteps: 1000,
        pcm_timesteps: 100,
    };
    const FLOW: SchedulerConfig = SchedulerConfig::FlowMatchEuler {
        num_train_timesteps: 1000,
        shift: 1.0,
    };

    #[test]
    fn turbo_sigmas_match_the_reference_notes() {
        // docs/hunyuan3d.md, sampling (derived values).
        let five = sigmas(TURBO, 5);
        for (g, w) in five
            .iter()
            .zip([0.0, 0.199199, 0.399399, 0.5996, 0.7998, 1.0])
        {
            assert!((g - w).abs() < 1e-6, "{five:?}");
        }
        let eight = sigmas(TURBO, 8);
        for (g, w) in eight.iter().zip([
            0.0, 0.119119, 0.249249, 0.369369, 0.499499, 0.61962, 0.74975, 0.86987, 1.0,
        ]) {
            assert!((g - w).abs() < 1e-5, "{eight:?}");
        }
    }

    #[test]
    fn flow_plan_drops_the_zero_step() {
        let p = plan(FLOW, 4, false).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].t, 0.0);
        let total: f32 = p.iter().map(|s| s.dt).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(plan(FLOW, 0, false).is_err());
        // One evaluation: σ = [0, 1].
        assert_eq!(
            plan(FLOW, 1, false).unwrap(),
            vec![Step { t: 0.0, dt: 1.0 }]
        );
    }

    #[test]
    fn seeded_noise_is_reproducible_and_standard() {
        let a = seeded_noise(7, 20000);
        assert_eq!(a, seeded_noise(7, 20000));
        assert_ne!(a[..8], seeded_noise(8, 20000)[..8]);
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / a.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
