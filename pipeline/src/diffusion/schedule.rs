//! The noise schedule: β over the training timesteps and the cumulative ᾱ, with diffusers'
//! arithmetic (torch `linspace` in f32, `cumprod` accumulated in f64 and rounded per element).

use super::config::{BetaSchedule, SchedulerConfig};

/// torch's f32 `linspace`: the first half counts up from `start`, the second down from `end`.
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((n - 1 - i) as f32, end)
            }
        })
        .collect()
}

fn cumprod(values: &[f32]) -> Vec<f32> {
    let mut acc = 1f64;
    values
        .iter()
        .map(|&v| {
            acc *= f64::from(v);
            acc as f32
        })
        .collect()
}

/// β per training timestep.
fn betas(cfg: &SchedulerConfig) -> Vec<f32> {
    let n = cfg.num_train_timesteps;
    match cfg.beta_schedule {
        BetaSchedule::Linear => linspace_f32(cfg.beta_start as f32, cfg.beta_end as f32, n),
        BetaSchedule::ScaledLinear => {
            linspace_f32(cfg.beta_start.sqrt() as f32, cfg.beta_end.sqrt() as f32, n)
                .into_iter()
                .map(|b| b * b)
                .collect()
        }
    }
}

/// Rescales β so the last timestep has zero signal (Lin et al. 2023, diffusers'
/// `rescale_zero_terminal_snr`).
fn zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let alphas: Vec<f32> = betas.iter().map(|b| 1.0 - b).collect();
    let mut s: Vec<f32> = cumprod(&alphas).into_iter().map(f32::sqrt).collect();
    let (s0, st) = (s[0], s[s.len() - 1]);
    for v in &mut s {
        *v -= st;
        *v *= s0 / (s0 - st);
    }
    let bar: Vec<f32> = s.iter().map(|v| v * v).collect();
    let mut out = Vec::with_capacity(bar.len());
    out.push(1.0 - bar[0]);
    for w in bar.windows(2) {
        out.push(1.0 - w[1] / w[0]);
    }
    out
}

/// ᾱ per training timestep.
pub fn alphas_cumprod(cfg: &SchedulerConfig) -> Vec<f32> {
    let mut b = betas(cfg);
    if cfg.rescale_betas_zero_snr {
        b = zero_terminal_snr(&b);
    }
    let alphas: Vec<f32> = b.iter().map(|b| 1.0 - b).collect();
    cumprod(&alphas)
}
