-- The W3C trace context of the request that accepted a job, so a job published later by the
-- outbox relay still continues the request's trace.
ALTER TABLE jobs ADD COLUMN trace_context JSONB NOT NULL DEFAULT '{}';
