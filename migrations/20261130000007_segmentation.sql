-- How the object mask of a job's last preprocessed attempt was found and how much of the image
-- it covers: the mask decides the shape, so the job view shows it (a user can tell a bad mask
-- from a bad shape). Written by the attempt that preprocessed the image, before it ends.
ALTER TABLE jobs
    ADD COLUMN segmentation_method TEXT
        CHECK (segmentation_method IN ('alpha', 'u2net', 'plain_background', 'classic', 'whole_image')),
    ADD COLUMN mask_share REAL CHECK (mask_share >= 0 AND mask_share <= 1);
