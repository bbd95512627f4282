-- Per-job peak memory in the ledger, and the batch optimizer's learned memory model.

ALTER TABLE stage_timings ADD COLUMN peak_memory_bytes BIGINT;

CREATE TABLE memory_model (
    engine            TEXT NOT NULL,
    -- octree_resolution rounded up to a multiple of 64.
    resolution_bucket INTEGER NOT NULL,
    device            TEXT NOT NULL,
    bytes_per_job     BIGINT NOT NULL CHECK (bytes_per_job > 0),
    samples           BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (engine, resolution_bucket, device)
);
