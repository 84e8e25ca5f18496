-- Volumes: a tenant's named persistent file systems (the bytes are on the
-- node, `<data>/volumes`; see the runtime's `volume.rs`). A volume's size
-- counts in its tenant's storage quota from its creation, as its space is
-- taken from the disk then. Names are unique per tenant. Conventions as
-- in 0001.

CREATE TABLE volumes (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
) STRICT;
