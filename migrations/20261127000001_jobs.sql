-- Jobs and their per-stage ledger.

CREATE TYPE job_status AS ENUM ('queued', 'running', 'succeeded', 'failed', 'canceled');

CREATE TYPE pipeline_stage AS ENUM (
    'image_loading', 'image_preprocessing', 'shape_generation', 'texture_synthesis', 'mesh_export'
);

CREATE TABLE jobs (
    -- UUIDv7: time-ordered, so it is also the keyset-pagination key.
    id               UUID PRIMARY KEY,
    status           job_status NOT NULL DEFAULT 'queued',
    engine           TEXT NOT NULL,
    -- The validated job options (shared::domain::JobSpec).
    spec             JSONB NOT NULL,
    input_key        TEXT NOT NULL,
    input_bytes      BIGINT NOT NULL,
    priority         SMALLINT NOT NULL DEFAULT 0,
    deadline         TIMESTAMPTZ,
    idempotency_key  TEXT UNIQUE,
    -- Hash of the request an idempotency key was first used with.
    request_hash     TEXT,
    stage            pipeline_stage,
    progress         SMALLINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempt          INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    error_code       TEXT,
    error_message    TEXT,
    -- Formats stored under outputs/{id}/mesh.{ext}.
    outputs          TEXT[] NOT NULL DEFAULT '{}',
    -- Outbox: NULL until the queue confirmed the message.
    enqueued_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_outbox ON jobs (created_at) WHERE enqueued_at IS NULL AND status = 'queued';

-- One row per job, stage and attempt, written in the transaction that ends the attempt.
CREATE TABLE stage_timings (
    job_id           UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    stage            pipeline_stage NOT NULL,
    attempt          INTEGER NOT NULL,
    worker_id        TEXT NOT NULL,
    device           TEXT NOT NULL,
    batch_size       INTEGER NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    duration_seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, stage, attempt)
);
