-- Tenants' images built in steps (issue 19, item 4). Each step's result
-- is a layer: a snapshot (purpose 'layer') of what the step changed,
-- found again by the step's key, the SHA-256 of everything the step
-- depends on (the layer below, the step itself, the content of the files
-- it copies). An image names its layers, first step first; a layer no
-- image names is deleted after the next build or delete. Conventions as
-- in 0001.

CREATE TABLE images (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    name           TEXT NOT NULL,
    -- The operator's image at the bottom (`python-data`, ...).
    base           TEXT NOT NULL,
    -- The steps as asked (JSON).
    steps          TEXT NOT NULL,
    -- The layers' keys, first step first (JSON array).
    layers         TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    -- `name=version` of every Debian and Python package (JSON array).
    packages       TEXT NOT NULL,
    built_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

CREATE TABLE image_layers (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    key            TEXT NOT NULL,
    -- The layer below; NULL for the first step (on `base`).
    parent         TEXT,
    base           TEXT NOT NULL,
    snapshot_id    TEXT NOT NULL REFERENCES snapshots (id),
    -- The content digest of the image up to and with this layer.
    content_sha256 TEXT NOT NULL,
    packages       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) STRICT;
