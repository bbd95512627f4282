-- Submissions stay cheap however long the queue (bench/fleet.sh fell from 2,079 to 521 jobs/s
-- with events recorded at insert):
-- 1. a `queued` event counts its position up to 1,000 jobs ahead (past that it reads 1000 and
--    its ETA is a lower bound), a job's view up to 10,000: an unbounded count costs about 1 µs
--    per queued job ahead;
-- 2. the `queued` event of a new job (seq 1) is written when it is first read, not by the
--    submission (`orfeas_materialize_queued`, called before a follower reads the table): nobody
--    can follow a job before it exists, so nothing is missed, and the submission neither
--    counts the queue nor sends a NOTIFY — which serializes the commits of the transactions
--    that use it (PostgreSQL holds a global lock from pre-commit to the end of commit). The
--    position and ETA are then those at the first look, and null if the job had already
--    started by then.
DROP FUNCTION orfeas_queue_estimate(UUID);
CREATE FUNCTION orfeas_queue_estimate(job UUID, cap INTEGER DEFAULT 10000) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    WITH j AS (
        SELECT id, engine, priority, (spec ->> 'octree_resolution')::int AS res,
               COALESCE((spec ->> 'steps')::int, 0) AS steps
        FROM jobs WHERE id = job
    ), ahead AS (
        SELECT count(*) AS n FROM (
            SELECT 1 FROM jobs q, j
            WHERE q.status = 'queued' AND q.engine = j.engine
              AND (q.priority > j.priority OR (q.priority = j.priority AND q.id < j.id))
            LIMIT cap) capped
    ), own AS (
        SELECT COALESCE(
            (SELECT r.seconds FROM run_estimates r, j
             WHERE r.engine = j.engine AND r.octree_resolution = j.res AND r.steps = j.steps),
            (SELECT sum(r.seconds * r.runs) / NULLIF(sum(r.runs), 0)
             FROM run_estimates r, j WHERE r.engine = j.engine)) AS seconds
    ), rate AS (
        SELECT e.jobs_per_second FROM engine_rates e, j WHERE e.engine = j.engine
    )
    SELECT jsonb_build_object(
        'position', ahead.n,
        'eta_seconds', round((CASE
            WHEN (SELECT jobs_per_second FROM rate) > 0
                THEN ahead.n / (SELECT jobs_per_second FROM rate) + own.seconds
            ELSE (ahead.n + 1) * own.seconds END)::numeric, 1))
    FROM ahead, own;
$$;

CREATE OR REPLACE FUNCTION orfeas_record_event(job UUID, seq BIGINT, kind TEXT, data JSONB,
                                               announce BOOLEAN) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    at TIMESTAMPTZ := clock_timestamp();
    payload TEXT;
BEGIN
    INSERT INTO job_events (job_id, seq, kind, data, at) VALUES (job, seq, kind, data, at);
    IF NOT announce THEN
        RETURN;
    END IF;
    payload := jsonb_build_object('job', job, 'seq', seq, 'at', at, 'type', kind,
                                  'data', data)::text;
    IF octet_length(payload) > 7900 THEN
        payload := jsonb_build_object('job', job, 'seq', seq)::text;
    END IF;
    PERFORM pg_notify('orfeas_job_events', payload);
END $$;

CREATE OR REPLACE FUNCTION orfeas_record_event(job UUID, seq BIGINT, kind TEXT, data JSONB)
RETURNS void LANGUAGE sql AS $$
    SELECT orfeas_record_event(job, seq, kind, data, TRUE);
$$;

CREATE OR REPLACE FUNCTION orfeas_job_transition_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k TEXT;
    d JSONB;
BEGIN
    IF TG_OP = 'INSERT' THEN
        RETURN NULL;
    END IF;
    IF NEW.event_seq = OLD.event_seq THEN
        RETURN NULL;
    END IF;
    CASE NEW.status
        WHEN 'queued' THEN
            k := 'queued';
            d := jsonb_build_object('attempt', NEW.attempt) || orfeas_queue_estimate(NEW.id, 1000);
        WHEN 'running' THEN
            k := 'started';
            d := jsonb_build_object('attempt', NEW.attempt, 'worker', NEW.worker_id,
                                    'device', NEW.device, 'batch_size', NEW.batch_size);
        WHEN 'succeeded' THEN
            k := 'succeeded';
            d := jsonb_build_object('outputs', to_jsonb(NEW.outputs),
                                    'seconds', extract(epoch FROM NEW.finished_at - NEW.started_at));
        WHEN 'failed' THEN
            k := 'failed';
            d := jsonb_build_object('code', COALESCE(NEW.error_code, 'internal'),
                                    'message', COALESCE(NEW.error_message, ''),
                                    'stage', NEW.stage);
        ELSE
            k := 'canceled';
            d := jsonb_build_object('message', NEW.error_message);
    END CASE;
    PERFORM orfeas_record_event(NEW.id, NEW.event_seq, k, d, TRUE);
    RETURN NULL;
END $$;

-- 3. The owner indexes only index jobs that have an owner: jobs submitted without keys (a
--    deployment with auth off) pay nothing for them.
DROP INDEX jobs_owner_active;
DROP INDEX jobs_owner_created;
CREATE INDEX jobs_owner_active ON jobs (owner)
    WHERE owner IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX jobs_owner_created ON jobs (owner, created_at) WHERE owner IS NOT NULL;

-- The first `queued` event of a job, written on first read (see 2. above); a no-op once it
-- exists, or for a job that has none (inserted finished).
CREATE FUNCTION orfeas_materialize_queued(job UUID) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO job_events (job_id, seq, kind, data, at)
    SELECT id, 1, 'queued',
           jsonb_build_object('attempt', 0) || CASE WHEN status = 'queued'
               THEN orfeas_queue_estimate(id, 1000)
               ELSE '{"position": null, "eta_seconds": null}'::jsonb END,
           created_at
    FROM jobs WHERE id = job AND event_seq >= 1
    ON CONFLICT (job_id, seq) DO NOTHING;
$$;
