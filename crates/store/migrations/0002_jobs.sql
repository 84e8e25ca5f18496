-- Review jobs: the queue, the jobs' output files, webhook deliveries, and
-- each tenant's webhook signing secret. Conventions as in 0001.

CREATE TABLE reviews (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    status            TEXT NOT NULL CHECK (status IN
        ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
    spec              TEXT NOT NULL, -- JSON
    files             TEXT NOT NULL, -- JSON array of file ids
    idempotency_key   TEXT,
    webhook_url       TEXT,
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    attempts          INTEGER NOT NULL CHECK (attempts >= 0),
    max_attempts      INTEGER NOT NULL CHECK (max_attempts >= 0),
    exit_code         INTEGER,
    signal            INTEGER,
    error             TEXT,
    -- Usage: all three NULL, or all three set.
    cpu_seconds       REAL,
    peak_memory_bytes INTEGER CHECK (peak_memory_bytes >= 0),
    wall_seconds      REAL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires     INTEGER,
    not_before        INTEGER NOT NULL,
    -- A running job always has a lease, and only a running job has one: the
    -- claim query relies on it to tell live jobs from abandoned ones.
    CHECK ((status = 'running') = (lease_owner IS NOT NULL AND lease_expires IS NOT NULL)),
    -- NULLs are distinct in a UNIQUE constraint, so jobs without a key never
    -- collide. A table constraint rather than a partial index, so that
    -- `ON CONFLICT (tenant_id, idempotency_key)` can name it as it is.
    UNIQUE (tenant_id, idempotency_key),
    -- The parent key of the outputs' and deliveries' (tenant_id, review_id)
    -- foreign keys, which keep a row from pointing at another tenant's job.
    UNIQUE (tenant_id, id)
) STRICT;
-- Listings (newest first) and per-status counts and listings.
CREATE INDEX reviews_by_tenant ON reviews (tenant_id, created_at, id);
CREATE INDEX reviews_by_tenant_status ON reviews (tenant_id, status, created_at, id);
-- The claim query: pending jobs by readiness, running jobs by lease (both
-- to find expired leases and to count each tenant's live ones).
CREATE INDEX reviews_pending ON reviews (status, not_before, created_at);
CREATE INDEX reviews_leases ON reviews (status, lease_expires, tenant_id);

CREATE TABLE review_outputs (
    review_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    path      TEXT NOT NULL, -- relative, '/'-separated
    object_id TEXT NOT NULL,
    size      INTEGER NOT NULL CHECK (size >= 0),
    sha256    TEXT NOT NULL,
    PRIMARY KEY (review_id, path),
    FOREIGN KEY (tenant_id, review_id) REFERENCES reviews (tenant_id, id)
) STRICT;
CREATE INDEX review_outputs_by_tenant ON review_outputs (tenant_id, review_id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    review_id        TEXT NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    last_status_code INTEGER CHECK (last_status_code BETWEEN 0 AND 65535),
    last_error       TEXT,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    FOREIGN KEY (tenant_id, review_id) REFERENCES reviews (tenant_id, id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_review
    ON webhook_deliveries (tenant_id, review_id, created_at, id);

-- One row per tenant that has used webhooks; lower-case hex of 32 bytes.
CREATE TABLE tenant_secrets (
    tenant_id      TEXT PRIMARY KEY REFERENCES tenants (id),
    webhook_secret TEXT NOT NULL
) STRICT;
