//! Operator endpoints: `/api/performance/summary`, `/api/performance/recommendations` and
//! `/api/gpu/status`, over the PostgreSQL ledger and the workers' Redis heartbeats. Each
//! answers the product's documented fields (`total_pipelines`, `avg_duration`, `bottlenecks`,
//! `stage_breakdown`; `recommendations` as text; `memory.utilization_percent`, `trends`) beside
//! the richer ones.

// utoipa's `#[utoipa::path]` expansion names parameter types by paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::extract::{Query, State};
use orfeas_shared::performance::{
    Facts, GpuStatus, RecommendationsReport, Summary, Window, recommendations as advise,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct WindowQuery {
    /// How far back: `30m`, `6h`, `24h` (default), `30d`, or seconds; at most 400 days. Up to
    /// two days from the raw ledger, longer from the hourly rollups.
    pub window: Option<String>,
}

impl WindowQuery {
    fn parse(&self) -> Result<Window, ApiError> {
        self.window
            .as_deref()
            .map_or(Ok(Window::DEFAULT), str::parse)
            .map_err(ApiError::bad_request)
    }
}

/// Pipelines run, durations, per-stage breakdown and bottlenecks over a window of the ledger.
#[utoipa::path(
    get, path = "/api/performance/summary", params(WindowQuery),
    responses(
        (status = 200, body = Summary, example = json!({
            "total_pipelines": 1284, "avg_duration": 21.4,
            "bottlenecks": [{"stage": "shape_generation", "avg_percent": 48.7, "severity": "critical"}],
            "stage_breakdown": {
                "image_loading": {"avg_duration": 0.2, "avg_percent": 0.9, "count": 1284},
                "image_preprocessing": {"avg_duration": 1.9, "avg_percent": 8.9, "count": 1284},
                "shape_generation": {"avg_duration": 10.4, "avg_percent": 48.7, "count": 1284},
                "texture_synthesis": {"avg_duration": 5.1, "avg_percent": 23.8, "count": 1284},
                "mesh_export": {"avg_duration": 3.8, "avg_percent": 17.7, "count": 1284}
            },
            "window_seconds": 86400, "pipelines": 1284, "failed": 12, "canceled": 3,
            "duration": {"average_seconds": 21.4, "p50_seconds": 19.8, "p95_seconds": 34.2},
            "queue_wait": {"average_seconds": 2.1, "p50_seconds": 0.4, "p95_seconds": 9.7},
            "stages": [{"stage": "shape_generation", "jobs": 1284, "average_seconds": 10.4, "share_percent": 48.7}],
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
    Ok(Json(state.db.summary(q.parse()?).await?))
}

/// Actionable advice derived from the summary and the workers' state: the documented text list,
/// and each rule with its severity and evidence.
#[utoipa::path(
    get, path = "/api/performance/recommendations", params(WindowQuery),
    responses(
        (status = 200, body = RecommendationsReport, example = json!({
            "window_seconds": 86400,
            "recommendations": ["Jobs wait 6.2× longer in the queue than they take to run; add workers (or GPUs) to cut the wait."],
            "details": [{
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
) -> Result<Json<RecommendationsReport>, ApiError> {
    let window = q.parse()?;
    let summary = state.db.summary(window).await?;
    // Without Redis the rules that need device state simply do not fire.
    let workers = state.live_workers().await.unwrap_or_default();
    let queued = state.db.count_queued().await?;
    let details = advise(&Facts {
        summary: &summary,
        workers: &workers,
        queued,
    });
    Ok(Json(RecommendationsReport::new(window, details)))
}

/// The fleet's device memory (summed over live devices), mean utilisation and trend, with text
/// advice; per live worker: memory, utilisation, trend, batch size and the optimizer's reasoning.
#[utoipa::path(
    get, path = "/api/gpu/status",
    responses(
        (status = 200, body = GpuStatus, example = json!({
            "memory": {"used_bytes": 61203283968u64, "total_bytes": 85899345920u64, "utilization_percent": 71.3},
            "trends": {"trend": "rising", "avg_utilization": 93.0},
            "recommendations": [],
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
    Ok(Json(GpuStatus::of(&state.live_workers().await?)))
}
