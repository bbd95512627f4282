//! A diffusers scheduler configuration (`scheduler/scheduler_config.json`), the keys the two
//! schedulers read. Unknown keys are ignored: a diffusers config carries every key of its class
//! and the class it was saved from (`_class_name`, `clip_sample`, …), which do not change
//! these schedulers.

use serde::Deserialize;

/// How β grows over the training timesteps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    Linear,
    ScaledLinear,
}

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    Epsilon,
    VPrediction,
}

/// How inference timesteps are spread over the training ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    Linspace,
    Leading,
    Trailing,
}

/// The keys both schedulers read, with diffusers' defaults for those a file leaves out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: BetaSchedule,
    pub prediction_type: PredictionType,
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: usize,
    pub rescale_betas_zero_snr: bool,
    /// LCM: the schedule its timesteps are drawn from.
    pub original_inference_steps: usize,
    /// LCM: the boundary conditions' timestep scale.
    pub timestep_scaling: f64,
    /// LCM: whether the step after the last uses ᾱ = 1 (else ᾱ₀).
    pub set_alpha_to_one: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            prediction_type: PredictionType::Epsilon,
            timestep_spacing: TimestepSpacing::Linspace,
            steps_offset: 0,
            rescale_betas_zero_snr: false,
            original_inference_steps: 50,
            timestep_scaling: 10.0,
            set_alpha_to_one: true,
        }
    }
}

/// Why a scheduler configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerConfigError {
    #[error("scheduler_config.json: {0}")]
    Parse(String),
    #[error("scheduler_config.json: {field} {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl SchedulerConfig {
    /// Parses and checks a `scheduler_config.json`.
    pub fn from_json(text: &str) -> Result<SchedulerConfig, SchedulerConfigError> {
        let cfg: SchedulerConfig =
            serde_json::from_str(text).map_err(|e| SchedulerConfigError::Parse(e.to_string()))?;
        cfg.checked()
    }

    /// The configuration, if its values can define a schedule.
    pub fn checked(self) -> Result<SchedulerConfig, SchedulerConfigError> {
        let invalid = |field, reason: &str| {
            Err(SchedulerConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.num_train_timesteps < 2 {
            return invalid("num_train_timesteps", "must be at least 2");
        }
        if !(self.beta_start > 0.0 && self.beta_end < 1.0 && self.beta_start <= self.beta_end) {
            return invalid("beta_start/beta_end", "must satisfy 0 < start <= end < 1");
        }
        if self.original_inference_steps == 0
            || self.original_inference_steps > self.num_train_timesteps
        {
            return invalid(
                "original_inference_steps",
                "must lie in 1..=num_train_timesteps",
            );
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_config_reads_and_bad_ones_are_named() {
        // The keys of a diffusers DDIM config, as checkpoints save them; extra keys are ignored.
        let cfg = SchedulerConfig::from_json(
            r#"{"_class_name": "DDIMScheduler", "_diffusers_version": "0.23.1",
                "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                "clip_sample": false, "num_train_timesteps": 1000,
                "prediction_type": "v_prediction", "rescale_betas_zero_snr": true,
                "set_alpha_to_one": true, "steps_offset": 1, "timestep_spacing": "trailing"}"#,
        )
        .expect("valid");
        assert_eq!(cfg.prediction_type, PredictionType::VPrediction);
        assert_eq!(cfg.timestep_spacing, TimestepSpacing::Trailing);
        assert_eq!(cfg.original_inference_steps, 50, "diffusers' default");
        let e = SchedulerConfig::from_json(r#"{"beta_schedule": "cosine"}"#).expect_err("unknown");
        assert!(e.to_string().contains("cosine"), "{e}");
        let e = SchedulerConfig::from_json(r#"{"beta_start": 0.5, "beta_end": 0.1}"#)
            .expect_err("decreasing");
        assert!(e.to_string().contains("beta_start"), "{e}");
    }
}
