-- Which weights the job's last attempt ran with (name and SHA-256 of the engine's checkpoint and
-- of the segmentation model; NULL for the weights-free engine and methods). The weights decide
-- the result, so the ledger keeps them beside it: figures before and after a roll of new weights
-- can be told apart by job. Written by the worker when the attempt's batch has run.
ALTER TABLE jobs
    ADD COLUMN engine_weights TEXT,
    ADD COLUMN engine_weights_sha256 TEXT CHECK (engine_weights_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN segmentation_weights TEXT,
    ADD COLUMN segmentation_weights_sha256 TEXT
        CHECK (segmentation_weights_sha256 ~ '^[0-9a-f]{64}$');
