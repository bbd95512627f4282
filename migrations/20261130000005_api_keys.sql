-- API keys, job ownership, per-owner idempotency keys, and jobs whose files their owner
-- deleted.

CREATE TABLE api_keys (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    -- orfeas_vocab::Scope
    scope           TEXT NOT NULL,
    -- SHA-256 of the whole key: the key itself is shown once and never stored.
    token_sha256    BYTEA NOT NULL,
    -- GCRA: `rate_count` requests per `rate_period_s` (NULL: unlimited).
    rate_count      INTEGER,
    rate_period_s   DOUBLE PRECISION,
    -- Jobs queued + running at once, and jobs submitted per UTC day (NULL: unlimited).
    max_concurrent  INTEGER,
    quota_daily     INTEGER,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at      TIMESTAMPTZ,
    last_used_at    TIMESTAMPTZ
);

ALTER TABLE jobs
    -- The key that submitted the job (NULL: submitted without keys).
    ADD COLUMN owner UUID REFERENCES api_keys (id),
    ADD COLUMN owner_key UUID GENERATED ALWAYS AS
        (COALESCE(owner, '00000000-0000-0000-0000-000000000000'::uuid)) STORED,
    -- When the owner deleted the job's input and outputs.
    ADD COLUMN purged_at TIMESTAMPTZ;

-- Idempotency keys are per owner.
ALTER TABLE jobs DROP CONSTRAINT jobs_idempotency_key_key;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner_key, idempotency_key);

-- The concurrency quota counts an owner's queued and running jobs; the daily quota its jobs
-- since midnight (UTC). Only owned jobs are indexed: jobs submitted without keys pay nothing.
CREATE INDEX jobs_owner_active ON jobs (owner)
    WHERE owner IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX jobs_owner_created ON jobs (owner, created_at) WHERE owner IS NOT NULL;
