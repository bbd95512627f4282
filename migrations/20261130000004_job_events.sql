-- Job events: what a client watching a job sees, in order, durable so a reconnecting client (to
-- any API replica, after any restart) gets what it missed. Transitions of the job row (queued,
-- started, succeeded, failed, canceled) are recorded by triggers, so every path that moves a
-- job — API, worker, reaper, outbox — records them without knowing about events; the worker
-- adds stage and progress events through `orfeas_attempt_event`. Every event is announced with
-- NOTIFY on `orfeas_job_events` (a hint: the table is the source of truth).

ALTER TABLE jobs
    -- The last event's sequence number (1, 2, … per job).
    ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0,
    -- The running attempt's device and batch size (shown in its `started` event).
    ADD COLUMN device TEXT,
    ADD COLUMN batch_size INTEGER,
    -- The stage whose progress events are accepted now: set when a stage starts, cleared when
    -- it finishes, so a late progress report never lands after its stage's end.
    ADD COLUMN open_stage pipeline_stage;

CREATE TABLE job_events (
    job_id UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    -- orfeas_vocab::JobEventKind
    kind   TEXT NOT NULL,
    data   JSONB NOT NULL,
    at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (job_id, seq)
);

-- Queue position: the jobs of the same engine a worker takes before this one.
CREATE INDEX jobs_queue_order ON jobs (engine, priority DESC, id) WHERE status = 'queued';

-- Recent run times per engine and the options that decide them (steps 0: the engine's
-- default), and each engine's recent throughput: refreshed by the API from the ledger
-- (`orfeas_refresh_estimates`), read when a job is queued.
CREATE TABLE run_estimates (
    engine            TEXT NOT NULL,
    octree_resolution INTEGER NOT NULL,
    steps             INTEGER NOT NULL,
    seconds           DOUBLE PRECISION NOT NULL,
    runs              BIGINT NOT NULL,
    refreshed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (engine, octree_resolution, steps)
);

CREATE TABLE engine_rates (
    engine          TEXT PRIMARY KEY,
    jobs_per_second DOUBLE PRECISION NOT NULL,
    refreshed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Pipeline seconds of the succeeded jobs finished within `runs_window_s` (per engine and
-- options), and per engine the throughput of the jobs finished within `rate_window_s`: jobs
-- over the span from the first one's start to the last one's end, which is the fleet's rate
-- while it was busy (an idle hour does not dilute it).
CREATE FUNCTION orfeas_refresh_estimates(runs_window_s DOUBLE PRECISION,
                                         rate_window_s DOUBLE PRECISION) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO run_estimates (engine, octree_resolution, steps, seconds, runs, refreshed_at)
    SELECT j.engine, (j.spec ->> 'octree_resolution')::int,
           COALESCE((j.spec ->> 'steps')::int, 0), avg(t.total), count(*), now()
    FROM jobs j
    JOIN LATERAL (SELECT sum(s.duration_seconds) AS total FROM stage_timings s
                  WHERE s.job_id = j.id AND s.attempt = j.attempt) t ON t.total IS NOT NULL
    WHERE j.status = 'succeeded'
      AND j.finished_at > now() - make_interval(secs => runs_window_s)
    GROUP BY 1, 2, 3
    ON CONFLICT (engine, octree_resolution, steps) DO UPDATE
        SET seconds = EXCLUDED.seconds, runs = EXCLUDED.runs, refreshed_at = EXCLUDED.refreshed_at;

    INSERT INTO engine_rates (engine, jobs_per_second, refreshed_at)
    SELECT engine,
           count(*) / GREATEST(extract(epoch FROM max(finished_at) - min(started_at)), 0.001),
           now()
    FROM jobs
    WHERE status IN ('succeeded', 'failed') AND started_at IS NOT NULL
      AND finished_at > now() - make_interval(secs => rate_window_s)
    GROUP BY engine
    HAVING count(*) >= 2
    ON CONFLICT (engine) DO UPDATE
        SET jobs_per_second = EXCLUDED.jobs_per_second, refreshed_at = EXCLUDED.refreshed_at;
$$;

-- A queued job's place in its engine's queue and estimated seconds until it finishes: the
-- jobs ahead at the engine's recent rate (one at a time at its run time when no rate is
-- known), plus its own run time — for its options when they ran recently, else the engine's
-- average. NULL figures: no history. The jobs ahead are counted up to `cap` (about 1 µs each;
-- past the cap the position reads `cap` and the ETA is a lower bound).
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

-- Records an event with the next sequence number and announces it. The payload carries the
-- whole event when it fits NOTIFY's limit, else only the job and sequence number (listeners
-- read the event from the table).
CREATE FUNCTION orfeas_record_event(job UUID, seq BIGINT, kind TEXT, data JSONB) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    at TIMESTAMPTZ := clock_timestamp();
    payload TEXT;
BEGIN
    INSERT INTO job_events (job_id, seq, kind, data, at) VALUES (job, seq, kind, data, at);
    payload := jsonb_build_object('job', job, 'seq', seq, 'at', at, 'type', kind,
                                  'data', data)::text;
    IF octet_length(payload) > 7900 THEN
        payload := jsonb_build_object('job', job, 'seq', seq)::text;
    END IF;
    PERFORM pg_notify('orfeas_job_events', payload);
END $$;

-- A transition of the job row (status or attempt changed) takes the next sequence number.
CREATE FUNCTION orfeas_job_transition_seq() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = 'queued' THEN
            NEW.event_seq := NEW.event_seq + 1;
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status OR NEW.attempt IS DISTINCT FROM OLD.attempt THEN
        NEW.event_seq := OLD.event_seq + 1;
        NEW.open_stage := NULL;
    END IF;
    RETURN NEW;
END $$;

-- ... and is recorded once the row is written — except a new job's `queued` event (seq 1),
-- which its first reader writes (`orfeas_materialize_queued`): nobody can follow a job before
-- it exists, so nothing is missed, and a submission neither counts the queue nor sends a
-- NOTIFY, which serializes the commits of the transactions that use it (PostgreSQL holds a
-- global lock from pre-commit to the end of commit): bench/fleet.sh measured 521 jobs/s with
-- the event written at insert, 1,524 without. Its position and ETA are those at the first
-- look (null if the job had started by then). Rows inserted already finished (imports,
-- benchmarks' synthetic ledgers) have no events.
CREATE FUNCTION orfeas_job_transition_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k TEXT;
    d JSONB;
BEGIN
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
    PERFORM orfeas_record_event(NEW.id, NEW.event_seq, k, d);
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_transition_seq BEFORE INSERT OR UPDATE OF status, attempt ON jobs
    FOR EACH ROW EXECUTE FUNCTION orfeas_job_transition_seq();
CREATE TRIGGER jobs_transition_event AFTER UPDATE OF status, attempt ON jobs
    FOR EACH ROW EXECUTE FUNCTION orfeas_job_transition_event();

-- An event of a running attempt (stage_started, stage_finished, progress): recorded only while
-- that attempt owns the job, and a progress report only while its stage is open. Moves the
-- job's stage and progress along. Returns whether the attempt should stop (canceled, or no
-- longer the owner) — NULL when the event was not recorded because its stage had closed.
CREATE FUNCTION orfeas_attempt_event(job UUID, attempt_no INTEGER, k TEXT, d JSONB,
                                     st pipeline_stage, pct SMALLINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    s BIGINT;
    cancel BOOLEAN;
BEGIN
    UPDATE jobs SET event_seq = event_seq + 1,
                    stage = CASE WHEN k = 'stage_started' THEN st ELSE stage END,
                    open_stage = CASE WHEN k = 'stage_started' THEN st
                                      WHEN k = 'stage_finished' THEN NULL
                                      ELSE open_stage END,
                    progress = GREATEST(progress, pct),
                    updated_at = CASE WHEN k = 'progress' THEN updated_at ELSE now() END
    WHERE id = job AND attempt = attempt_no AND status = 'running'
      AND (k <> 'progress' OR open_stage = st)
    RETURNING event_seq, cancel_requested INTO s, cancel;
    IF NOT FOUND THEN
        -- Not the owner any more (stop), or a progress report after its stage closed.
        IF k = 'progress' AND EXISTS (SELECT 1 FROM jobs WHERE id = job AND attempt = attempt_no
                                      AND status = 'running') THEN
            RETURN NULL;
        END IF;
        RETURN TRUE;
    END IF;
    PERFORM orfeas_record_event(job, s, k, d);
    RETURN cancel;
END $$;

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

-- Jobs that existed before events: one event for where each stands now.
UPDATE jobs SET event_seq = 1;
INSERT INTO job_events (job_id, seq, kind, data, at)
SELECT id, 1,
       CASE status WHEN 'queued' THEN 'queued' WHEN 'running' THEN 'started'
                   ELSE status::text END,
       CASE status
           WHEN 'queued' THEN jsonb_build_object('attempt', attempt, 'position', NULL,
                                                 'eta_seconds', NULL)
           WHEN 'running' THEN jsonb_build_object('attempt', attempt, 'worker', worker_id,
                                                  'device', NULL, 'batch_size', NULL)
           WHEN 'succeeded' THEN jsonb_build_object('outputs', to_jsonb(outputs), 'seconds',
                                                    extract(epoch FROM finished_at - started_at))
           WHEN 'failed' THEN jsonb_build_object('code', COALESCE(error_code, 'internal'),
                                                 'message', COALESCE(error_message, ''),
                                                 'stage', stage)
           ELSE jsonb_build_object('message', error_message)
       END,
       COALESCE(finished_at, started_at, created_at)
FROM jobs;
