//! Recommendations: data-driven rules over the ledger summary and the workers' heartbeats, each
//! firing with a severity, its advice and the figures behind it. No SQL here: the rules see
//! [`Facts`] only, so they are tested on figures alone.

use orfeas_vocab::Stage;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Severity, Summary};
use crate::heartbeat::WorkerHeartbeat;

/// Which rule fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    AddWorkers,
    LargerBatches,
    MemoryPressure,
    LowerResolution,
    FewerSteps,
    MixedPrecision,
    LargeInputs,
    FailingInputs,
}

/// One piece of advice with the figures that triggered it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Recommendation {
    pub id: RuleId,
    pub severity: Severity,
    pub advice: String,
    /// The measurements behind the advice, by name.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

/// What the rules look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<'a> {
    pub summary: &'a Summary,
    pub workers: &'a [WorkerHeartbeat],
    pub queued: i64,
}

impl Facts<'_> {
    fn memory_ratio(&self) -> Option<f64> {
        let total: u64 = self.workers.iter().map(|w| w.memory_total_bytes).sum();
        let used: u64 = self.workers.iter().map(|w| w.memory_used_bytes).sum();
        (total > 0).then(|| used as f64 / total as f64)
    }

    fn gpu_workers(&self) -> usize {
        self.workers.iter().filter(|w| w.device.is_gpu()).count()
    }
}

type Fired = (Severity, String, serde_json::Value);

/// A rule: its id and when it fires.
struct Rule {
    id: RuleId,
    check: fn(&Facts<'_>) -> Option<Fired>,
}

/// The rules, in the order their advice is listed (before sorting by severity).
const RULES: &[Rule] = &[
    Rule {
        id: RuleId::AddWorkers,
        check: add_workers,
    },
    Rule {
        id: RuleId::LargerBatches,
        check: larger_batches,
    },
    Rule {
        id: RuleId::MemoryPressure,
        check: memory_pressure,
    },
    Rule {
        id: RuleId::LowerResolution,
        check: lower_resolution,
    },
    Rule {
        id: RuleId::FewerSteps,
        check: fewer_steps,
    },
    Rule {
        id: RuleId::MixedPrecision,
        check: mixed_precision,
    },
    Rule {
        id: RuleId::LargeInputs,
        check: large_inputs,
    },
    Rule {
        id: RuleId::FailingInputs,
        check: failing_inputs,
    },
];

fn add_workers(f: &Facts<'_>) -> Option<Fired> {
    let s = f.summary;
    let run = s.duration.average_seconds.max(0.001);
    (s.pipelines >= 5 && s.queue_wait.average_seconds > run).then(|| {
        let ratio = s.queue_wait.average_seconds / run;
        (
            if ratio > 5.0 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            format!(
                "Jobs wait {ratio:.1}× longer in the queue than they take to run; add workers (or GPUs) to cut the wait."
            ),
            serde_json::json!({"average_queue_wait_seconds": s.queue_wait.average_seconds,
                "p95_queue_wait_seconds": s.queue_wait.p95_seconds,
                "average_pipeline_seconds": s.duration.average_seconds,
                "queued_now": f.queued, "live_workers": f.workers.len()}),
        )
    })
}

fn larger_batches(f: &Facts<'_>) -> Option<Fired> {
    let mem = f.memory_ratio()?;
    let s = f.summary;
    (s.pipelines >= 5 && s.average_batch_size < 2.0 && f.queued >= 2 && mem < 0.5).then(|| {
        (
            Severity::Warning,
            format!(
                "Batches average {:.1} jobs while {} jobs wait and devices use {:.0} % of their memory; raise worker.batch_size or worker.target_utilization so the optimizer batches more.",
                s.average_batch_size,
                f.queued,
                mem * 100.0
            ),
            serde_json::json!({"average_batch_size": s.average_batch_size, "queued_now": f.queued,
                "device_memory_used_ratio": mem}),
        )
    })
}

fn memory_pressure(f: &Facts<'_>) -> Option<Fired> {
    let mem = f.memory_ratio()?;
    (mem > 0.92).then(|| {
        (
            Severity::Critical,
            format!(
                "Devices are {:.0} % full; lower worker.target_utilization or octree_resolution to avoid out-of-memory splits.",
                mem * 100.0
            ),
            serde_json::json!({"device_memory_used_ratio": mem}),
        )
    })
}

fn lower_resolution(f: &Facts<'_>) -> Option<Fired> {
    let s = f.summary;
    let share = s.share(Stage::ShapeGeneration);
    (share >= 40.0 && s.average_octree_resolution >= 384.0).then(|| {
        (
            Severity::Warning,
            format!(
                "shape_generation takes {share:.1} % of pipeline time at an average octree_resolution of {:.0}; volume work grows with its cube, so 256 is about {:.1}× cheaper.",
                s.average_octree_resolution,
                (s.average_octree_resolution / 256.0).powi(3)
            ),
            serde_json::json!({"shape_generation_percent": share,
                "average_octree_resolution": s.average_octree_resolution}),
        )
    })
}

fn fewer_steps(f: &Facts<'_>) -> Option<Fired> {
    let s = f.summary;
    let share = s.share(Stage::ShapeGeneration);
    (share >= 40.0 && s.average_steps > 30.0 && f.gpu_workers() > 0).then(|| {
        (
            Severity::Warning,
            format!(
                "Jobs run {:.0} denoising steps on average and shape_generation takes {share:.1} % of the time; the fast (guidance-distilled) checkpoints need about 30 and turbo 5.",
                s.average_steps
            ),
            serde_json::json!({"average_steps": s.average_steps, "shape_generation_percent": share}),
        )
    })
}

fn mixed_precision(f: &Facts<'_>) -> Option<Fired> {
    let share = f.summary.share(Stage::ShapeGeneration);
    (share >= 40.0 && f.gpu_workers() > 0).then(|| {
        (
            Severity::Info,
            format!(
                "shape_generation dominates ({share:.1} %) on {} GPU workers; run the model in fp16/bf16 (worker.dtype, as the reference does) if it runs in fp32.",
                f.gpu_workers()
            ),
            serde_json::json!({"shape_generation_percent": share, "gpu_workers": f.gpu_workers()}),
        )
    })
}

fn large_inputs(f: &Facts<'_>) -> Option<Fired> {
    let s = f.summary;
    let share = s.share(Stage::ImagePreprocessing) + s.share(Stage::ImageLoading);
    (share >= 30.0 && s.average_input_bytes > 4.0 * 1024.0 * 1024.0).then(|| {
        (
            Severity::Info,
            format!(
                "Loading and preprocessing take {share:.1} % of the time with {:.1} MB inputs on average; the model sees 512², so clients can send ~1024² images.",
                s.average_input_bytes / 1e6
            ),
            serde_json::json!({"input_stages_percent": share, "average_input_bytes": s.average_input_bytes}),
        )
    })
}

fn failing_inputs(f: &Facts<'_>) -> Option<Fired> {
    let s = f.summary;
    let total = s.pipelines + s.failed;
    let (code, n) = s.failures.first()?;
    (total >= 10 && s.failed as f64 / total as f64 > 0.05).then(|| {
        (
            Severity::Warning,
            format!(
                "{:.0} % of jobs fail, most with `{code}` ({n}); see the error table for what clients should change.",
                100.0 * s.failed as f64 / total as f64
            ),
            serde_json::json!({"failed": s.failed, "succeeded": s.pipelines,
                "top_error_code": code, "top_error_count": n}),
        )
    })
}

/// Every rule that fires, most severe first.
pub fn recommendations(facts: &Facts<'_>) -> Vec<Recommendation> {
    let mut out: Vec<Recommendation> = RULES
        .iter()
        .filter_map(|r| {
            (r.check)(facts).map(|(severity, advice, evidence)| Recommendation {
                id: r.id,
                severity,
                advice,
                evidence,
            })
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.severity));
    out
}

#[cfg(test)]
mod tests {
    use orfeas_vocab::{Device, Engine, ErrorCode};

    use super::*;
    use crate::performance::{Durations, LedgerFigures, StageShare, Window};

    fn summary_with(shares: [f64; 5]) -> Summary {
        let totals: Vec<(Stage, i64, f64, f64)> = Stage::ALL
            .into_iter()
            .zip(shares)
            .map(|(s, share)| (s, 100, share / 10.0, share))
            .collect();
        Summary::from(LedgerFigures {
            window: Window::DEFAULT,
            pipelines: 100,
            failed: 0,
            canceled: 0,
            duration: Durations::new(10.0, 9.0, 15.0),
            queue_wait: Durations::new(1.0, 0.5, 3.0),
            stages: StageShare::from_totals(&totals),
            average_batch_size: 4.0,
            failures: vec![],
            average_octree_resolution: 256.0,
            average_steps: 50.0,
            average_input_bytes: 500_000.0,
        })
    }

    fn summary() -> Summary {
        summary_with([1.0, 10.0, 70.0, 10.0, 9.0])
    }

    fn worker(device: Device, used: u64, total: u64) -> WorkerHeartbeat {
        let now = chrono::Utc::now();
        WorkerHeartbeat {
            id: "w".into(),
            host: "h".into(),
            device,
            engine: Engine::Inflate,
            current_batch: vec![],
            healthy: true,
            jobs_done: 0,
            started_at: now,
            last_seen: now,
            memory_total_bytes: total,
            memory_used_bytes: used,
            utilization: 0.5,
            samples: vec![],
            batch_size: 1,
            optimizer_reasoning: None,
        }
    }

    fn ids(r: &[Recommendation]) -> Vec<RuleId> {
        r.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_healthy_cpu_fleet_gets_no_advice() {
        let s = summary();
        let w = [worker(Device::Cpu, 10, 100)];
        let facts = Facts {
            summary: &s,
            workers: &w,
            queued: 0,
        };
        assert!(recommendations(&facts).is_empty());
    }

    #[test]
    fn queue_wait_dominating_asks_for_workers() {
        let mut s = summary();
        s.queue_wait.average_seconds = 80.0;
        let r = recommendations(&Facts {
            summary: &s,
            workers: &[],
            queued: 40,
        });
        assert_eq!(ids(&r), vec![RuleId::AddWorkers]);
        assert_eq!(r[0].severity, Severity::Critical);
        assert_eq!(r[0].evidence["average_queue_wait_seconds"], 80.0);
    }

    #[test]
    fn idle_memory_and_small_batches_ask_for_larger_batches() {
        let mut s = summary();
        s.average_batch_size = 1.1;
        let w = [worker(Device::Cpu, 20, 100)];
        let r = recommendations(&Facts {
            summary: &s,
            workers: &w,
            queued: 12,
        });
        assert_eq!(ids(&r), vec![RuleId::LargerBatches]);
        // Not when the queue is empty: nothing to batch.
        let idle = Facts {
            summary: &s,
            workers: &w,
            queued: 0,
        };
        assert!(recommendations(&idle).is_empty());
    }

    #[test]
    fn gpu_fleets_get_model_advice_and_pressure_warnings() {
        let mut s = summary();
        s.average_octree_resolution = 512.0;
        let w = [worker(Device::Cuda(0), 95, 100)];
        let r = recommendations(&Facts {
            summary: &s,
            workers: &w,
            queued: 0,
        });
        assert_eq!(
            ids(&r),
            vec![
                RuleId::MemoryPressure,
                RuleId::LowerResolution,
                RuleId::FewerSteps,
                RuleId::MixedPrecision
            ]
        );
        assert!(r[1].advice.contains("8.0×"), "{}", r[1].advice);
    }

    #[test]
    fn failures_and_large_inputs() {
        let mut s = summary_with([1.0, 35.0, 45.0, 10.0, 9.0]);
        s.failed = 20;
        s.failures = vec![
            (ErrorCode::NoForeground, 15),
            (ErrorCode::TruncatedImage, 5),
        ];
        s.average_input_bytes = 12e6;
        let r = recommendations(&Facts {
            summary: &s,
            workers: &[],
            queued: 0,
        });
        // Warning before info.
        assert_eq!(ids(&r), vec![RuleId::FailingInputs, RuleId::LargeInputs]);
        assert!(r[0].advice.contains("no_foreground"), "{}", r[0].advice);
        assert_eq!(r[0].evidence["top_error_code"], "no_foreground");
    }
}
