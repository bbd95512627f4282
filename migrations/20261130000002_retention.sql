-- Performance history that outlives raw rows: hourly rollups of the ledger, kept far longer
-- than finished jobs (which retention deletes with their stage rows, inputs and outputs).

-- One row per hour, engine, stage, device and batch size: how many stage runs and how long.
CREATE TABLE ledger_hourly (
    hour         TIMESTAMPTZ NOT NULL,
    engine       TEXT NOT NULL,
    stage        pipeline_stage NOT NULL,
    device       TEXT NOT NULL,
    batch_size   INTEGER NOT NULL,
    runs         BIGINT NOT NULL,
    seconds_sum  DOUBLE PRECISION NOT NULL,
    seconds_max  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, engine, stage, device, batch_size)
);

-- One row per hour, engine, terminal status and error code ('' for none): jobs, their pipeline
-- time and queue wait (sums, and counts per histogram bucket for percentiles), and the
-- succeeded jobs' option sums for the recommendations.
CREATE TABLE jobs_hourly (
    hour               TIMESTAMPTZ NOT NULL,
    engine             TEXT NOT NULL,
    status             job_status NOT NULL,
    error_code         TEXT NOT NULL,
    jobs               BIGINT NOT NULL,
    pipeline_sum       DOUBLE PRECISION NOT NULL,
    pipeline_buckets   BIGINT[] NOT NULL,
    wait_sum           DOUBLE PRECISION NOT NULL,
    wait_buckets       BIGINT[] NOT NULL,
    batch_size_sum     DOUBLE PRECISION NOT NULL,
    resolution_sum     DOUBLE PRECISION NOT NULL,
    steps_sum          DOUBLE PRECISION NOT NULL,
    steps_jobs         BIGINT NOT NULL,
    input_bytes_sum    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, engine, status, error_code)
);

-- Hours before this one are rolled up (retention deletes only rolled-up jobs).
CREATE TABLE rollup_state (
    id           BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    rolled_until TIMESTAMPTZ NOT NULL
);
INSERT INTO rollup_state (rolled_until)
    SELECT COALESCE(date_trunc('hour', min(finished_at)), date_trunc('hour', now())) FROM jobs;

-- The summary scans succeeded jobs by finish time.
CREATE INDEX jobs_status_finished ON jobs (status, finished_at);
