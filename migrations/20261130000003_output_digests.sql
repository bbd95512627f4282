-- The SHA-256 of each stored output, in the order of `outputs`, written with the attempt that
-- finished the job: clients verify downloads against it, audits compare it with the store.
ALTER TABLE jobs ADD COLUMN output_sha256 TEXT[] NOT NULL DEFAULT '{}';
