-- Schedules: a review job submitted on a cron schedule. `next_run_at` is
-- the next slot to submit; whichever node submits a slot moves it on with
-- a compare-and-set, and the slot's review carries an idempotency key made
-- from the schedule and the slot, so each slot is submitted once however
-- many nodes race for it or restart in between. Conventions as in 0001.

CREATE TABLE schedules (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    name           TEXT NOT NULL,
    cron           TEXT NOT NULL,
    -- The review to submit (`SubmitReview` as JSON).
    review         TEXT NOT NULL,
    paused         INTEGER NOT NULL DEFAULT 0,
    next_run_at    INTEGER NOT NULL,
    last_run_at    INTEGER,
    last_review_id TEXT,
    -- Why the last slot's submit was refused, if it was.
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;

CREATE INDEX schedules_due ON schedules (next_run_at) WHERE paused = 0;
