-- Ownership by lease, attempts counted where crashes cannot hide them, outage budgets, outbox
-- claims, and the indexes the reaper and the operator summaries use.

ALTER TABLE jobs
    -- A running attempt owns its job until then; its worker renews it while it works.
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    -- Attempts charged against the limit: counted when an attempt starts (so a crash counts),
    -- given back when the attempt ended because a dependency was down.
    ADD COLUMN counted_attempts INTEGER NOT NULL DEFAULT 0,
    -- The limit the starting worker applies (worker.max_attempts), so the reaper in the API
    -- judges a lost attempt by the same rule.
    ADD COLUMN max_attempts INTEGER,
    -- When the job's current run of dependency outages began (NULL: none).
    ADD COLUMN outage_since TIMESTAMPTZ,
    -- An outbox relay publishing this job holds it until then (several API replicas).
    ADD COLUMN outbox_claimed_until TIMESTAMPTZ;

UPDATE jobs SET counted_attempts = attempt;

CREATE INDEX jobs_running_leases ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_queued_updated ON jobs (updated_at) WHERE status = 'queued';
