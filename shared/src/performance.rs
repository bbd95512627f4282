//! The performance ledger read back for operators: the summary over a window (computed in SQL),
//! bottlenecks with severity, and data-driven recommendations derived from those figures and
//! from the workers' heartbeats (device memory, batch sizes, the optimizer's state).

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::{Db, DbError};
use crate::heartbeat::WorkerHeartbeat;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StageShare {
    #[schema(example = "shape_generation")]
    pub stage: String,
    pub jobs: i64,
    pub average_seconds: f64,
    /// Share of the summed pipeline time, in percent.
    #[schema(example = 48.7)]
    pub share_percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bottleneck {
    #[schema(example = "shape_generation")]
    pub stage: String,
    #[schema(example = 48.7)]
    pub avg_percent: f64,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Durations {
    pub average_seconds: f64,
    pub p50_seconds: f64,
    pub p95_seconds: f64,
}

/// `GET /api/performance/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub window_seconds: i64,
    /// Pipelines that succeeded in the window.
    #[schema(example = 1284)]
    pub pipelines: i64,
    pub failed: i64,
    pub canceled: i64,
    /// Pipeline time per job: the sum of its stages in the attempt that finished it.
    pub duration: Durations,
    /// From acceptance to the first attempt's start.
    pub queue_wait: Durations,
    pub stages: Vec<StageShare>,
    pub bottlenecks: Vec<Bottleneck>,
    /// Mean jobs per engine batch.
    pub average_batch_size: f64,
    /// Error codes of failed jobs, most frequent first.
    pub failures: Vec<(String, i64)>,
    /// Means of the succeeded jobs' options.
    pub average_octree_resolution: f64,
    pub average_steps: f64,
    pub average_input_bytes: f64,
}

/// Severity of a stage by its share of pipeline time: ≥ 40 % critical, ≥ 25 % warning,
/// ≥ 15 % info; smaller stages are no bottleneck.
pub fn severity(share_percent: f64) -> Option<Severity> {
    if share_percent >= 40.0 {
        Some(Severity::Critical)
    } else if share_percent >= 25.0 {
        Some(Severity::Warning)
    } else if share_percent >= 15.0 {
        Some(Severity::Info)
    } else {
        None
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Reads the ledger for the last `window_seconds`.
pub async fn summary(db: &Db, window_seconds: i64) -> Result<Summary, DbError> {
    let pool = db.pool();
    let secs = window_seconds as f64;
    let per_job = sqlx::query(
        "WITH runs AS (
             SELECT j.id, sum(s.duration_seconds) AS total,
                    EXTRACT(EPOCH FROM (j.started_at - j.created_at))::float8 AS wait,
                    max(s.batch_size) FILTER (WHERE s.stage = 'shape_generation') AS batch
             FROM jobs j JOIN stage_timings s ON s.job_id = j.id AND s.attempt = j.attempt
             WHERE j.status = 'succeeded' AND j.finished_at >= now() - make_interval(secs => $1)
             GROUP BY j.id, j.started_at, j.created_at)
         SELECT count(*) AS n,
                COALESCE(avg(total), 0)::float8 AS avg,
                COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY total), 0)::float8 AS p50,
                COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY total), 0)::float8 AS p95,
                COALESCE(avg(wait), 0)::float8 AS wavg,
                COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY wait), 0)::float8 AS w50,
                COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY wait), 0)::float8 AS w95,
                COALESCE(avg(batch), 0)::float8 AS batch
         FROM runs",
    )
    .bind(secs)
    .fetch_one(pool)
    .await?;
    let stage_rows = sqlx::query(
        "SELECT s.stage::text AS stage, count(*) AS n, avg(s.duration_seconds)::float8 AS avg,
                sum(s.duration_seconds)::float8 AS total
         FROM jobs j JOIN stage_timings s ON s.job_id = j.id AND s.attempt = j.attempt
         WHERE j.status = 'succeeded' AND j.finished_at >= now() - make_interval(secs => $1)
         GROUP BY s.stage ORDER BY s.stage",
    )
    .bind(secs)
    .fetch_all(pool)
    .await?;
    let ends = sqlx::query(
        "SELECT status::text AS status, COALESCE(error_code, '') AS code, count(*) AS n FROM jobs
         WHERE status IN ('failed', 'canceled') AND finished_at >= now() - make_interval(secs => $1)
         GROUP BY status, error_code ORDER BY n DESC",
    )
    .bind(secs)
    .fetch_all(pool)
    .await?;
    let options = sqlx::query(
        "SELECT COALESCE(avg((spec->>'octree_resolution')::float8), 0)::float8 AS res,
                COALESCE(avg((spec->>'steps')::float8), 0)::float8 AS steps,
                COALESCE(avg(input_bytes), 0)::float8 AS bytes
         FROM jobs WHERE status = 'succeeded' AND finished_at >= now() - make_interval(secs => $1)",
    )
    .bind(secs)
    .fetch_one(pool)
    .await?;

    let mut stages = Vec::new();
    let mut grand = 0.0;
    for r in &stage_rows {
        grand += r.try_get::<f64, _>("total")?;
    }
    for r in &stage_rows {
        let total: f64 = r.try_get("total")?;
        stages.push(StageShare {
            stage: r.try_get("stage")?,
            jobs: r.try_get("n")?,
            average_seconds: r.try_get("avg")?,
            share_percent: if grand > 0.0 {
                round2(100.0 * total / grand)
            } else {
                0.0
            },
        });
    }
    let mut bottlenecks: Vec<Bottleneck> = stages
        .iter()
        .filter_map(|s| {
            severity(s.share_percent).map(|severity| Bottleneck {
                stage: s.stage.clone(),
                avg_percent: s.share_percent,
                severity,
            })
        })
        .collect();
    bottlenecks.sort_by(|a, b| b.avg_percent.total_cmp(&a.avg_percent));
    let mut failed = 0;
    let mut canceled = 0;
    let mut failures = Vec::new();
    for r in &ends {
        let status: String = r.try_get("status")?;
        let n: i64 = r.try_get("n")?;
        if status == "failed" {
            failed += n;
            failures.push((r.try_get::<String, _>("code")?, n));
        } else {
            canceled += n;
        }
    }
    Ok(Summary {
        window_seconds,
        pipelines: per_job.try_get("n")?,
        failed,
        canceled,
        duration: Durations {
            average_seconds: per_job.try_get("avg")?,
            p50_seconds: per_job.try_get("p50")?,
            p95_seconds: per_job.try_get("p95")?,
        },
        queue_wait: Durations {
            average_seconds: per_job.try_get("wavg")?,
            p50_seconds: per_job.try_get("w50")?,
            p95_seconds: per_job.try_get("w95")?,
        },
        stages,
        bottlenecks,
        average_batch_size: per_job.try_get("batch")?,
        failures,
        average_octree_resolution: options.try_get("res")?,
        average_steps: options.try_get("steps")?,
        average_input_bytes: options.try_get("bytes")?,
    })
}

/// One piece of advice with the figures that triggered it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Recommendation {
    #[schema(example = "add_workers")]
    pub id: &'static str,
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
    fn share(&self, stage: &str) -> f64 {
        self.summary
            .stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| s.share_percent)
            .unwrap_or(0.0)
    }

    fn memory_ratio(&self) -> Option<f64> {
        let total: u64 = self.workers.iter().map(|w| w.memory_total_bytes).sum();
        let used: u64 = self.workers.iter().map(|w| w.memory_used_bytes).sum();
        (total > 0).then(|| used as f64 / total as f64)
    }

    fn gpu_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| w.device.starts_with("cuda"))
            .count()
    }
}

/// A rule: its id, when it fires, and what it says.
pub struct Rule {
    pub id: &'static str,
    pub check: fn(&Facts<'_>) -> Option<(Severity, String, serde_json::Value)>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

/// The rules, in the order their advice is listed.
pub const RULES: &[Rule] = &[
    Rule {
        id: "add_workers",
        check: |f| {
            let s = f.summary;
            (s.pipelines >= 5 && s.queue_wait.average_seconds > s.duration.average_seconds.max(0.001)).then(|| {
                let ratio = s.queue_wait.average_seconds / s.duration.average_seconds.max(0.001);
                (
                    if ratio > 5.0 { Severity::Critical } else { Severity::Warning },
                    format!(
                        "Jobs wait {:.1}× longer in the queue than they take to run; add workers (or GPUs) to cut the wait.",
                        ratio
                    ),
                    serde_json::json!({"average_queue_wait_seconds": s.queue_wait.average_seconds,
                        "p95_queue_wait_seconds": s.queue_wait.p95_seconds,
                        "average_pipeline_seconds": s.duration.average_seconds,
                        "queued_now": f.queued, "live_workers": f.workers.len()}),
                )
            })
        },
    },
    Rule {
        id: "larger_batches",
        check: |f| {
            let mem = f.memory_ratio()?;
            let s = f.summary;
            (s.pipelines >= 5 && s.average_batch_size < 2.0 && f.queued >= 2 && mem < 0.5).then(|| {
                (
                    Severity::Warning,
                    format!(
                        "Batches average {:.1} jobs while {} jobs wait and devices use {:.0} % of their memory; raise worker.batch_size or worker.target_utilization so the optimizer batches more.",
                        s.average_batch_size, f.queued, mem * 100.0
                    ),
                    serde_json::json!({"average_batch_size": s.average_batch_size, "queued_now": f.queued,
                        "device_memory_used_ratio": mem}),
                )
            })
        },
    },
    Rule {
        id: "memory_pressure",
        check: |f| {
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
        },
    },
    Rule {
        id: "lower_resolution",
        check: |f| {
            let s = f.summary;
            let share = f.share("shape_generation");
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
        },
    },
    Rule {
        id: "fewer_steps",
        check: |f| {
            let s = f.summary;
            let share = f.share("shape_generation");
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
        },
    },
    Rule {
        id: "mixed_precision",
        check: |f| {
            let share = f.share("shape_generation");
            (share >= 40.0 && f.gpu_workers() > 0).then(|| {
                (
                    Severity::Info,
                    format!(
                        "shape_generation dominates ({share:.1} %) on {} GPU workers; run the model in fp16/bf16 (as the reference does) if it runs in fp32.",
                        f.gpu_workers()
                    ),
                    serde_json::json!({"shape_generation_percent": share, "gpu_workers": f.gpu_workers()}),
                )
            })
        },
    },
    Rule {
        id: "large_inputs",
        check: |f| {
            let s = f.summary;
            let share = f.share("image_preprocessing") + f.share("image_loading");
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
        },
    },
    Rule {
        id: "failing_inputs",
        check: |f| {
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
                    serde_json::json!({"failed": s.failed, "succeeded": s.pipelines, "top_error_code": code, "top_error_count": n}),
                )
            })
        },
    },
];

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
    out.sort_by_key(|r| std::cmp::Reverse(r.severity as u8));
    out
}

/// Rising, stable or falling, from the last samples' memory use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Rising,
    Stable,
    Falling,
}

/// Compares the mean of the newer half of the samples with the older half; a change of more
/// than 5 % of the device's memory is a trend.
pub fn memory_trend(samples: &[u64], total: u64) -> Trend {
    if samples.len() < 2 || total == 0 {
        return Trend::Stable;
    }
    let half = samples.len() / 2;
    let mean = |s: &[u64]| s.iter().map(|&v| v as f64).sum::<f64>() / s.len().max(1) as f64;
    let older = mean(&samples[..half]);
    let newer = mean(&samples[samples.len() - half..]);
    let delta = (newer - older) / total as f64;
    if delta > 0.05 {
        Trend::Rising
    } else if delta < -0.05 {
        Trend::Falling
    } else {
        Trend::Stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            window_seconds: 3600,
            pipelines: 100,
            failed: 0,
            canceled: 0,
            duration: Durations {
                average_seconds: 10.0,
                p50_seconds: 9.0,
                p95_seconds: 15.0,
            },
            queue_wait: Durations {
                average_seconds: 1.0,
                p50_seconds: 0.5,
                p95_seconds: 3.0,
            },
            stages: vec![
                StageShare {
                    stage: "image_loading".into(),
                    jobs: 100,
                    average_seconds: 0.1,
                    share_percent: 1.0,
                },
                StageShare {
                    stage: "image_preprocessing".into(),
                    jobs: 100,
                    average_seconds: 1.0,
                    share_percent: 10.0,
                },
                StageShare {
                    stage: "shape_generation".into(),
                    jobs: 100,
                    average_seconds: 7.0,
                    share_percent: 70.0,
                },
                StageShare {
                    stage: "texture_synthesis".into(),
                    jobs: 100,
                    average_seconds: 1.0,
                    share_percent: 10.0,
                },
                StageShare {
                    stage: "mesh_export".into(),
                    jobs: 100,
                    average_seconds: 0.9,
                    share_percent: 9.0,
                },
            ],
            bottlenecks: vec![],
            average_batch_size: 4.0,
            failures: vec![],
            average_octree_resolution: 256.0,
            average_steps: 50.0,
            average_input_bytes: 500_000.0,
        }
    }

    fn worker(device: &str, used: u64, total: u64) -> WorkerHeartbeat {
        let now = chrono::Utc::now();
        WorkerHeartbeat {
            id: "w".into(),
            host: "h".into(),
            device: device.into(),
            engine: "inflate".into(),
            current_batch: vec![],
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

    fn ids(r: &[Recommendation]) -> Vec<&'static str> {
        r.iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_healthy_cpu_fleet_gets_no_advice() {
        let s = summary();
        let w = [worker("cpu", 10, 100)];
        assert!(
            recommendations(&Facts {
                summary: &s,
                workers: &w,
                queued: 0
            })
            .is_empty()
        );
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
        assert_eq!(ids(&r), vec!["add_workers"]);
        assert_eq!(r[0].severity, Severity::Critical);
        assert_eq!(r[0].evidence["average_queue_wait_seconds"], 80.0);
    }

    #[test]
    fn idle_memory_and_small_batches_ask_for_larger_batches() {
        let mut s = summary();
        s.average_batch_size = 1.1;
        let w = [worker("cpu", 20, 100)];
        let r = recommendations(&Facts {
            summary: &s,
            workers: &w,
            queued: 12,
        });
        assert_eq!(ids(&r), vec!["larger_batches"]);
        // Not when the queue is empty: nothing to batch.
        assert!(
            recommendations(&Facts {
                summary: &s,
                workers: &w,
                queued: 0
            })
            .is_empty()
        );
    }

    #[test]
    fn gpu_fleets_get_model_advice_and_pressure_warnings() {
        let mut s = summary();
        s.average_octree_resolution = 512.0;
        let w = [worker("cuda:0", 95, 100)];
        let r = recommendations(&Facts {
            summary: &s,
            workers: &w,
            queued: 0,
        });
        assert_eq!(
            ids(&r),
            vec![
                "memory_pressure",
                "lower_resolution",
                "fewer_steps",
                "mixed_precision"
            ]
        );
        assert!(r[1].advice.contains("8.0×"), "{}", r[1].advice);
    }

    #[test]
    fn failures_and_large_inputs() {
        let mut s = summary();
        s.failed = 20;
        s.failures = vec![("no_foreground".into(), 15), ("truncated_image".into(), 5)];
        s.stages[1].share_percent = 35.0;
        s.stages[2].share_percent = 45.0;
        s.average_input_bytes = 12e6;
        let r = recommendations(&Facts {
            summary: &s,
            workers: &[],
            queued: 0,
        });
        // Warning before info.
        assert_eq!(ids(&r), vec!["failing_inputs", "large_inputs"]);
        let f = r.iter().find(|x| x.id == "failing_inputs").expect("rule");
        assert!(f.advice.contains("no_foreground"));
    }

    #[test]
    fn severity_thresholds_and_trends() {
        assert_eq!(severity(48.7), Some(Severity::Critical));
        assert_eq!(severity(30.0), Some(Severity::Warning));
        assert_eq!(severity(16.0), Some(Severity::Info));
        assert_eq!(severity(5.0), None);
        assert_eq!(memory_trend(&[10, 10, 30, 30], 100), Trend::Rising);
        assert_eq!(memory_trend(&[30, 30, 10, 10], 100), Trend::Falling);
        assert_eq!(memory_trend(&[10, 12, 11, 12], 100), Trend::Stable);
        assert_eq!(memory_trend(&[10], 100), Trend::Stable);
    }
}
