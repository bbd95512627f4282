-- Webhook deliveries (an outbox): one row per job event a job's webhook asked for, written by
-- a trigger in the transaction that records the event, so no event is lost between the two;
-- delivered, retried and logged by the API's dispatcher.

-- The class of a job event, as orfeas_vocab::WebhookEvent::of says (a test checks they agree).
CREATE FUNCTION orfeas_webhook_class(kind TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE kind
        WHEN 'started' THEN 'started'
        WHEN 'stage_started' THEN 'progress'
        WHEN 'stage_finished' THEN 'progress'
        WHEN 'progress' THEN 'progress'
        WHEN 'succeeded' THEN 'completed'
        WHEN 'failed' THEN 'completed'
        WHEN 'canceled' THEN 'completed'
    END;
$$;

CREATE TABLE webhook_deliveries (
    -- The `webhook-id`: the same on every retry, so receivers can de-duplicate.
    id             TEXT PRIMARY KEY,
    job_id         UUID NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    url            TEXT NOT NULL,
    -- The body, exactly as signed and sent: {type, timestamp, data}.
    payload        JSONB NOT NULL,
    -- pending, delivered, failed (retries used up), disabled (the endpoint answered 410)
    status         TEXT NOT NULL DEFAULT 'pending',
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until  TIMESTAMPTZ,
    last_status    INTEGER,
    last_error     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at   TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, seq);

-- Endpoints that answered 410 Gone: nothing more is sent to them.
CREATE TABLE webhook_endpoints (
    url          TEXT PRIMARY KEY,
    disabled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason       TEXT NOT NULL
);

CREATE FUNCTION orfeas_enqueue_webhook() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hook JSONB;
    class TEXT := orfeas_webhook_class(NEW.kind);
BEGIN
    IF class IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT spec -> 'webhook' INTO hook FROM jobs WHERE id = NEW.job_id;
    IF hook IS NULL OR jsonb_typeof(hook) <> 'object' OR NOT (hook -> 'events') ? class THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (id, job_id, seq, kind, url, payload, status)
    VALUES ('msg_' || replace(NEW.job_id::text, '-', '') || '_' || NEW.seq, NEW.job_id, NEW.seq,
            NEW.kind, hook ->> 'url',
            jsonb_build_object('type', 'job.' || NEW.kind, 'timestamp', NEW.at,
                               'data', jsonb_build_object('job', NEW.job_id, 'seq', NEW.seq,
                                                          'at', NEW.at, 'type', NEW.kind,
                                                          'data', NEW.data)),
            CASE WHEN EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.url = hook ->> 'url')
                 THEN 'disabled' ELSE 'pending' END)
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER job_events_webhooks AFTER INSERT ON job_events
    FOR EACH ROW EXECUTE FUNCTION orfeas_enqueue_webhook();
