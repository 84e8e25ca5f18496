-- Warden metadata, SQLite. Ids are TEXT (generated, prefixed), timestamps are
-- INTEGER milliseconds since the Unix epoch, u64 values are INTEGER (i64),
-- structured values are JSON TEXT. Listings order by (created_at, id), hence
-- the (tenant_id, created_at, id) indexes.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    quotas     TEXT NOT NULL -- JSON of Quotas
) STRICT;
CREATE INDEX tenants_by_creation ON tenants (created_at, id);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at, id);

CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX files_by_tenant ON files (tenant_id, created_at, id);

-- Nonces of signed upload URLs already used; kept until the URL expires.
CREATE TABLE upload_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX upload_nonces_by_expiry ON upload_nonces (expires_at);

CREATE TABLE sandboxes (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    state             TEXT NOT NULL,
    spec              TEXT NOT NULL, -- JSON
    labels            TEXT NOT NULL, -- JSON object of strings
    memory_bytes      INTEGER NOT NULL CHECK (memory_bytes >= 0),
    owner             TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    end_reason        TEXT,
    -- Usage: all three NULL, or all three set.
    cpu_seconds       REAL,
    peak_memory_bytes INTEGER CHECK (peak_memory_bytes >= 0),
    wall_seconds      REAL
) STRICT;
CREATE INDEX sandboxes_by_tenant ON sandboxes (tenant_id, created_at, id);
CREATE INDEX sandboxes_by_state ON sandboxes (state, owner);
CREATE INDEX sandboxes_by_end ON sandboxes (tenant_id, ended_at);

-- The audit chains. No foreign key to tenants: a chain outlives its tenant.
CREATE TABLE audit (
    tenant_id TEXT NOT NULL,
    seq       INTEGER NOT NULL CHECK (seq >= 1),
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    at        INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) STRICT;
