//! Prometheus metrics of the API and of the worker, each in a registry the process owns (passed
//! around, never global). Names follow Prometheus conventions: `orfeas_` prefix, base units,
//! `_seconds` / `_bytes` / `_total` suffixes.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets for stage and request durations (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Registration only fails on duplicate names, which the constructors below rule out.
    if let Err(e) = r.register(Box::new(c.clone())) {
        tracing::error!(error = %e, "metric not registered");
    }
    c
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// The API's metrics.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub jobs_submitted: IntCounter,
    pub jobs_by_status: IntGaugeVec,
    pub queue_depth: IntGaugeVec,
    pub workers_live: IntGauge,
    /// Requests whose key's rate limit could not be checked (Redis down): limits are off.
    pub rate_limit_unavailable: IntCounter,
    /// Live workers by engine: when an engine's workers have all gone (scaled to zero,
    /// crashed), none of its own is left to say so.
    pub engine_workers_live: IntGaugeVec,
    /// Jobs waiting to start by engine, and since when the oldest waits: while nothing starts,
    /// the workers' queue-wait histogram records nothing.
    pub jobs_queued: IntGaugeVec,
    pub jobs_queued_oldest: GaugeVec,
    /// The outboxes (`jobs`: messages the broker has not confirmed; `webhooks`: deliveries
    /// due): entries due now, and how long the oldest has been due.
    pub outbox_backlog: IntGaugeVec,
    pub outbox_oldest: GaugeVec,
}

impl ApiMetrics {
    pub fn new() -> Self {
        let r = Registry::new();
        ApiMetrics {
            http_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("orfeas_http_requests_total", "HTTP requests answered"),
                    &["route", "method", "status"],
                )
                .expect("valid metric"),
            ),
            http_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "orfeas_http_request_duration_seconds",
                        "HTTP request latency",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["route", "method"],
                )
                .expect("valid metric"),
            ),
            jobs_submitted: reg(
                &r,
                IntCounter::new(
                    "orfeas_jobs_submitted_total",
                    "Jobs accepted by this API process",
                )
                .expect("valid metric"),
            ),
            jobs_by_status: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_jobs",
                        "Jobs in the database by status (read at scrape time)",
                    ),
                    &["status"],
                )
                .expect("valid metric"),
            ),
            queue_depth: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_queue_depth",
                        "Messages ready in a RabbitMQ queue (jobs, retry, dead-letter), read at scrape time; jobs waiting in PostgreSQL are orfeas_jobs{status=\"queued\"}",
                    ),
                    &["queue"],
                )
                .expect("valid metric"),
            ),
            workers_live: reg(
                &r,
                IntGauge::new("orfeas_workers_live", "Workers with a live heartbeat")
                    .expect("valid metric"),
            ),
            rate_limit_unavailable: reg(
                &r,
                IntCounter::new(
                    "orfeas_rate_limit_unavailable_total",
                    "Requests let through unchecked because the rate limiter's Redis was unavailable",
                )
                .expect("valid metric"),
            ),
            engine_workers_live: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_engine_workers_live",
                        "Workers with a live heartbeat, by the engine they run (read at scrape time)",
                    ),
                    &["engine"],
                )
                .expect("valid metric"),
            ),
            jobs_queued: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_jobs_queued",
                        "Jobs waiting to start, by engine (PostgreSQL, read at scrape time)",
                    ),
                    &["engine"],
                )
                .expect("valid metric"),
            ),
            jobs_queued_oldest: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "orfeas_jobs_queued_oldest_seconds",
                        "Time since the oldest job waiting to start was accepted, by engine (0: none waits)",
                    ),
                    &["engine"],
                )
                .expect("valid metric"),
            ),
            outbox_backlog: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_outbox_backlog",
                        "Outbox entries due now: jobs whose queue message is unconfirmed, webhook deliveries due (read at scrape time)",
                    ),
                    &["outbox"],
                )
                .expect("valid metric"),
            ),
            outbox_oldest: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "orfeas_outbox_oldest_seconds",
                        "How long the oldest due outbox entry has waited (0: none)",
                    ),
                    &["outbox"],
                )
                .expect("valid metric"),
            ),
            registry: r,
        }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A worker's metrics.
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    pub registry: Registry,
    pub jobs_finished: IntCounterVec,
    pub job_retries: IntCounterVec,
    pub stage_duration: HistogramVec,
    /// Share of the image inside the object mask, by the method that found the mask.
    pub mask_share: HistogramVec,
    pub queue_wait: Histogram,
    pub batch_size: Histogram,
    pub optimizer_decisions: IntCounterVec,
    pub optimizer_batch_size: IntGauge,
    pub optimizer_per_job_bytes: IntGaugeVec,
    pub oom_splits: IntCounter,
    pub memory_used: IntGaugeVec,
    pub memory_total: IntGaugeVec,
    pub utilization: GaugeVec,
    pub in_flight: IntGauge,
    pub heartbeats: IntCounter,
    pub up: Gauge,
    /// 1, labelled with the worker's engine and device: joined onto its series that lack them.
    pub info: IntGaugeVec,
    /// `worker.target_utilization`, so alerts compare memory use with this worker's own target.
    pub optimizer_target: Gauge,
}

impl WorkerMetrics {
    pub fn new() -> Self {
        let r = Registry::new();
        WorkerMetrics {
            jobs_finished: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "orfeas_jobs_finished_total",
                        "Jobs this worker took to a terminal state",
                    ),
                    &["status", "error_code", "engine"],
                )
                .expect("valid metric"),
            ),
            job_retries: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "orfeas_job_retries_total",
                        "Transient failures sent to the retry queue",
                    ),
                    &["error_code"],
                )
                .expect("valid metric"),
            ),
            stage_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "orfeas_stage_duration_seconds",
                        "Wall time of a pipeline stage per job",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["stage", "engine"],
                )
                .expect("valid metric"),
            ),
            mask_share: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "orfeas_segmentation_mask_share",
                        "Share of the input image inside the object mask, by segmentation method",
                    )
                    .buckets(vec![0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99]),
                    &["method"],
                )
                .expect("valid metric"),
            ),
            queue_wait: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "orfeas_queue_wait_seconds",
                        "From acceptance to the start of the job's first attempt",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            batch_size: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("orfeas_batch_size", "Jobs per pipeline batch")
                        .buckets(vec![1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]),
                )
                .expect("valid metric"),
            ),
            optimizer_decisions: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("orfeas_optimizer_decisions_total", "Batch-size decisions"),
                    &["engine", "outcome"],
                )
                .expect("valid metric"),
            ),
            optimizer_batch_size: reg(
                &r,
                IntGauge::new("orfeas_optimizer_batch_size", "The last decided batch size")
                    .expect("valid metric"),
            ),
            optimizer_per_job_bytes: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_optimizer_per_job_bytes",
                        "The memory model's per-job estimate",
                    ),
                    &["engine", "resolution_bucket"],
                )
                .expect("valid metric"),
            ),
            oom_splits: reg(
                &r,
                IntCounter::new(
                    "orfeas_oom_splits_total",
                    "Batches split after running out of device memory",
                )
                .expect("valid metric"),
            ),
            memory_used: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("orfeas_device_memory_used_bytes", "Device memory in use"),
                    &["device"],
                )
                .expect("valid metric"),
            ),
            memory_total: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("orfeas_device_memory_total_bytes", "Device memory"),
                    &["device"],
                )
                .expect("valid metric"),
            ),
            utilization: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "orfeas_device_utilization_ratio",
                        "Device busy share since the last sample (0-1)",
                    ),
                    &["device"],
                )
                .expect("valid metric"),
            ),
            in_flight: reg(
                &r,
                IntGauge::new("orfeas_jobs_in_flight", "Jobs in the batch being processed")
                    .expect("valid metric"),
            ),
            heartbeats: reg(
                &r,
                IntCounter::new(
                    "orfeas_worker_heartbeats_total",
                    "Heartbeats written to Redis",
                )
                .expect("valid metric"),
            ),
            up: reg(
                &r,
                Gauge::new("orfeas_worker_up", "1 while the worker consumes")
                    .expect("valid metric"),
            ),
            info: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "orfeas_worker_info",
                        "1, labelled with the engine and device this worker runs and its weights \
                         (`name@sha256-prefix`, `none` for the weights-free engine and methods)",
                    ),
                    &["engine", "device", "weights", "segmentation_weights"],
                )
                .expect("valid metric"),
            ),
            optimizer_target: reg(
                &r,
                Gauge::new(
                    "orfeas_optimizer_target_utilization_ratio",
                    "Share of device memory the batch optimizer fills (worker.target_utilization)",
                )
                .expect("valid metric"),
            ),
            registry: r,
        }
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        let api = ApiMetrics::new();
        api.jobs_submitted.inc();
        api.http_requests
            .with_label_values(&["/api/jobs", "POST", "202"])
            .inc();
        let w = WorkerMetrics::new();
        w.stage_duration
            .with_label_values(&["shape_generation", "inflate"])
            .observe(0.2);
        w.jobs_finished
            .with_label_values(&["succeeded", "", "inflate"])
            .inc();
        for text in [render(&api.registry), render(&w.registry)] {
            for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
                let name = line.split_whitespace().nth(2).unwrap_or("");
                assert!(name.starts_with("orfeas_"), "{name}");
                let kind = line.split_whitespace().nth(3).unwrap_or("");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
            }
        }
        assert!(render(&w.registry).contains(
            "orfeas_stage_duration_seconds_count{engine=\"inflate\",stage=\"shape_generation\"} 1"
        ));
    }
}
