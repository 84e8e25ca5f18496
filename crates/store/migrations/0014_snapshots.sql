-- Snapshots: a sandbox's files, kept by its tenant. The manifest (every
-- path, mode, time and blob) is an object of kind `snapshots`; file
-- contents are blobs (objects of kind `blobs`) found by their SHA-256, each
-- stored once per tenant however many snapshots hold it. A blob's object
-- key is chosen when its row is made, so a blob deleted and stored again
-- never shares a key with its former self (see sqlite/snapshots.rs).
-- Conventions as in 0001.

CREATE TABLE snapshots (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    -- Unique per tenant when set.
    name           TEXT,
    source_sandbox TEXT NOT NULL,
    -- 'making' while its files are taken, then 'ready'.
    state          TEXT NOT NULL,
    -- 'user' (asked for, listed) or 'pause' (what a paused sandbox keeps
    -- of itself until it resumes; never listed).
    purpose        TEXT NOT NULL DEFAULT 'user',
    -- What a sandbox made from it starts as (image, tier, user, root).
    spec           TEXT NOT NULL,
    files          INTEGER NOT NULL DEFAULT 0,
    bytes          INTEGER NOT NULL DEFAULT 0,
    manifest_bytes INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX snapshots_by_source ON snapshots (tenant_id, source_sandbox);

CREATE UNIQUE INDEX snapshots_by_name ON snapshots (tenant_id, name) WHERE name IS NOT NULL;

CREATE TABLE snapshot_blobs (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    digest     TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, digest)
) STRICT;

CREATE TABLE snapshot_refs (
    snapshot_id TEXT NOT NULL REFERENCES snapshots (id),
    tenant_id   TEXT NOT NULL,
    digest      TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, digest)
) STRICT;

CREATE INDEX snapshot_refs_by_digest ON snapshot_refs (tenant_id, digest);
