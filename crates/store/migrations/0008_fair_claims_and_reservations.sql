-- Fair claims of review jobs: which tenant was handed a job least
-- recently. `last_claim` is a counter over all claims rather than a time,
-- so two claims in the same millisecond still have an order.
CREATE TABLE review_turns (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id),
    last_claim INTEGER NOT NULL
) STRICT;

-- Storage being written (an upload streaming in): counted against the
-- tenant's storage quota with its files, so parallel uploads cannot each
-- see the same free space. Removed when the file row is inserted (same
-- transaction) or the upload fails; rows of a dead process are swept at
-- start-up.
CREATE TABLE storage_reservations (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    bytes      INTEGER NOT NULL CHECK (bytes >= 0),
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX storage_reservations_by_tenant ON storage_reservations (tenant_id);
