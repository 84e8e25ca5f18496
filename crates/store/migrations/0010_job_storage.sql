-- What a review job keeps in the object store besides its outputs' rows (its
-- log, counted in the tenant's storage), and what was cut to keep the job
-- within the operator's caps on outputs and logs.
ALTER TABLE reviews ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0 CHECK (log_bytes >= 0);
ALTER TABLE reviews ADD COLUMN log_truncated INTEGER NOT NULL DEFAULT 0
    CHECK (log_truncated IN (0, 1));
ALTER TABLE reviews ADD COLUMN outputs_truncated INTEGER NOT NULL DEFAULT 0
    CHECK (outputs_truncated IN (0, 1));
