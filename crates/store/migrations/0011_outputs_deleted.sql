-- When a tenant deleted an ended job's outputs and stored log to free its
-- storage (the job's record stays, to say what ran and how it ended).
ALTER TABLE reviews ADD COLUMN outputs_deleted_at INTEGER;
