-- Egress log: every connection attempt a sandbox made through its egress
-- proxy, allowed or denied, with the rule or reason that decided it and
-- the bytes that crossed. Append-only; read per sandbox in `seq` order.

CREATE TABLE egress_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    sandbox_id  TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    method      TEXT NOT NULL,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    addr        TEXT,
    outcome     TEXT NOT NULL,
    rule        TEXT,
    reason      TEXT,
    detail      TEXT,
    bytes_up    INTEGER NOT NULL,
    bytes_down  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL
);

CREATE INDEX egress_events_by_sandbox ON egress_events (tenant_id, sandbox_id, seq);
