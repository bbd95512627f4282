// utoipa's `#[utoipa::path]` expansion names parameter types by paths this lint flags.
#![allow(unused_qualifications)]
//! Operator endpoints: `/api/performance/summary`, `/api/performance/recommendations` and
//! `/api/gpu/status`, over the PostgreSQL ledger and the workers' Redis heartbeats.

use axum::Json;
use axum::extract::{Query, State};
use orfeas_shared::heartbeat::{self, WorkerHeartbeat};
use orfeas_shared::performance::{self, Facts, Recommendation, Summary, Trend};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct WindowQuery {
    /// How far back: `30m`, `6h`, `24h` (default), `7d`, or seconds; at most 90 days.
    pub window: Option<String>,
}

/// Parses `30m`, `6h`, `7d` or plain seconds.
pub fn parse_window(raw: Option<&str>) -> Result<i64, ApiError> {
    let raw = raw.unwrap_or("24h").trim();
    let (num, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c),
        _ => (raw, 's'),
    };
    let n: i64 = num.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`window` must look like 30m, 6h or 7d, not `{raw}`"
        ))
    })?;
    let secs = match unit {
        's' => n,
        'm' => n * 60,
        'h' => n * 3600,
        'd' => n * 86_400,
        _ => {
            return Err(ApiError::bad_request(format!(
                "unknown unit in `window={raw}` (s, m, h, d)"
            )));
        }
    };
    if !(60..=90 * 86_400).contains(&secs) {
        return Err(ApiError::bad_request(
            "`window` must be between 1 minute and 90 days",
        ));
    }
    Ok(secs)
}

async fn live_workers(state: &AppState) -> Result<Vec<WorkerHeartbeat>, ApiError> {
    let Some(mut conn) = state.redis.clone() else {
        return Err(ApiError::unavailable("Redis is not connected"));
    };
    heartbeat::list(&mut conn, &state.config.redis.key_prefix)
        .await
        .map_err(|e| ApiError::unavailable(format!("redis: {e}")))
}

/// Pipelines run, durations, per-stage breakdown and bottlenecks over a window of the ledger.
#[utoipa::path(
    get, path = "/api/performance/summary", params(WindowQuery),
    responses(
        (status = 200, body = Summary, example = json!({
            "window_seconds": 86400, "pipelines": 1284, "failed": 12, "canceled": 3,
            "duration": {"average_seconds": 21.4, "p50_seconds": 19.8, "p95_seconds": 34.2},
            "queue_wait": {"average_seconds": 2.1, "p50_seconds": 0.4, "p95_seconds": 9.7},
            "stages": [{"stage": "shape_generation", "jobs": 1284, "average_seconds": 10.4, "share_percent": 48.7}],
            "bottlenecks": [{"stage": "shape_generation", "avg_percent": 48.7, "severity": "critical"}],
            "average_batch_size": 3.2, "failures": [["no_foreground", 9]],
            "average_octree_resolution": 384.0, "average_steps": 50.0, "average_input_bytes": 812000.0
        })),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    tag = "performance"
)]
pub async fn summary(
    State(state): State<AppState>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Summary>, ApiError> {
    let window = parse_window(q.window.as_deref())?;
    Ok(Json(performance::summary(&state.db, window).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendations {
    pub window_seconds: i64,
    pub recommendations: Vec<Recommendation>,
}

/// Actionable advice derived from the summary and the workers' state, each with its evidence.
#[utoipa::path(
    get, path = "/api/performance/recommendations", params(WindowQuery),
    responses(
        (status = 200, body = Recommendations, example = json!({
            "window_seconds": 86400,
            "recommendations": [{
                "id": "add_workers", "severity": "critical",
                "advice": "Jobs wait 6.2× longer in the queue than they take to run; add workers (or GPUs) to cut the wait.",
                "evidence": {"average_queue_wait_seconds": 132.0, "average_pipeline_seconds": 21.4, "queued_now": 57, "live_workers": 2}
            }]
        })),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    tag = "performance"
)]
pub async fn recommendations(
    State(state): State<AppState>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Recommendations>, ApiError> {
    let window = parse_window(q.window.as_deref())?;
    let summary = performance::summary(&state.db, window).await?;
    // Without Redis the rules that need device state simply do not fire.
    let workers = live_workers(&state).await.unwrap_or_default();
    let queued = state.db.count_queued().await?;
    let recommendations = performance::recommendations(&Facts {
        summary: &summary,
        workers: &workers,
        queued,
    });
    Ok(Json(Recommendations {
        window_seconds: window,
        recommendations,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStatus {
    pub worker_id: String,
    pub host: String,
    #[schema(example = "cuda:0")]
    pub device: String,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub memory_used_percent: f64,
    /// Busy share over the last heartbeat interval, in percent.
    pub utilization_percent: f64,
    pub trend: Trend,
    pub batch_size: usize,
    pub current_batch: usize,
    pub optimizer_reasoning: Option<String>,
    pub advice: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetTotals {
    pub workers: usize,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub memory_used_percent: f64,
    pub mean_utilization_percent: f64,
    pub jobs_in_flight: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GpuStatus {
    pub devices: Vec<DeviceStatus>,
    pub fleet: FleetTotals,
}

fn pct(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (1000.0 * used as f64 / total as f64).round() / 10.0
    }
}

/// Per live worker: device memory, utilisation, trend, batch size and the optimizer's reasoning.
#[utoipa::path(
    get, path = "/api/gpu/status",
    responses(
        (status = 200, body = GpuStatus, example = json!({
            "devices": [{"worker_id": "gpu-node-1-4121", "host": "gpu-node-1", "device": "cuda:0",
                "memory_used_bytes": 61203283968u64, "memory_total_bytes": 85899345920u64, "memory_used_percent": 71.3,
                "utilization_percent": 93.0, "trend": "rising", "batch_size": 6, "current_batch": 6,
                "optimizer_reasoning": "available 24576 MB of 81920 MB, target 85 % → budget 12902 MB; 2150 MB per job (learned from 40 batches, +20 % head-room) → 6 fit; 14 waiting; max 8 → batch 6",
                "advice": null}],
            "fleet": {"workers": 1, "memory_used_bytes": 61203283968u64, "memory_total_bytes": 85899345920u64,
                "memory_used_percent": 71.3, "mean_utilization_percent": 93.0, "jobs_in_flight": 6}
        })),
        (status = 503, body = ErrorBody)
    ),
    tag = "performance"
)]
pub async fn gpu_status(State(state): State<AppState>) -> Result<Json<GpuStatus>, ApiError> {
    let workers = live_workers(&state).await?;
    let devices: Vec<DeviceStatus> = workers
        .iter()
        .map(|w| {
            let used: Vec<u64> = w.samples.iter().map(|s| s.memory_used_bytes).collect();
            let trend = performance::memory_trend(&used, w.memory_total_bytes);
            let used_pct = pct(w.memory_used_bytes, w.memory_total_bytes);
            let advice = if used_pct > 92.0 {
                Some("memory nearly full: lower worker.target_utilization or the jobs' octree_resolution".to_owned())
            } else if w.utilization < 0.3 && w.current_batch.is_empty() {
                Some("idle: this worker could take larger batches or be scaled in".to_owned())
            } else {
                None
            };
            DeviceStatus {
                worker_id: w.id.clone(),
                host: w.host.clone(),
                device: w.device.clone(),
                memory_used_bytes: w.memory_used_bytes,
                memory_total_bytes: w.memory_total_bytes,
                memory_used_percent: used_pct,
                utilization_percent: (w.utilization * 1000.0).round() / 10.0,
                trend,
                batch_size: w.batch_size,
                current_batch: w.current_batch.len(),
                optimizer_reasoning: w.optimizer_reasoning.clone(),
                advice,
            }
        })
        .collect();
    let used: u64 = workers.iter().map(|w| w.memory_used_bytes).sum();
    let total: u64 = workers.iter().map(|w| w.memory_total_bytes).sum();
    let fleet = FleetTotals {
        workers: workers.len(),
        memory_used_bytes: used,
        memory_total_bytes: total,
        memory_used_percent: pct(used, total),
        mean_utilization_percent: if workers.is_empty() {
            0.0
        } else {
            (1000.0 * workers.iter().map(|w| w.utilization).sum::<f64>() / workers.len() as f64)
                .round()
                / 10.0
        },
        jobs_in_flight: workers.iter().map(|w| w.current_batch.len()).sum(),
    };
    Ok(Json(GpuStatus { devices, fleet }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window(None).expect("default"), 86_400);
        assert_eq!(parse_window(Some("30m")).expect("m"), 1800);
        assert_eq!(parse_window(Some("6h")).expect("h"), 21_600);
        assert_eq!(parse_window(Some("7d")).expect("d"), 604_800);
        assert_eq!(parse_window(Some("600")).expect("s"), 600);
        for bad in ["", "x", "5y", "10s", "100d", "-1h"] {
            assert!(parse_window(Some(bad)).is_err(), "{bad}");
        }
    }
}
