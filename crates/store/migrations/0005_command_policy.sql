-- Command policy: per-tenant rules every exec (and review command) passes
-- before it reaches a sandbox. One row per tenant that has a policy; no row
-- means no policy (everything allowed). `policy` is the JSON the server
-- keeps (deny and allow glob lists, whether the operator's hook is asked),
-- so new fields need no migration. Conventions as in 0001.

CREATE TABLE command_policies (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants (id),
    policy     TEXT NOT NULL, -- JSON
    updated_at INTEGER NOT NULL
) STRICT;
