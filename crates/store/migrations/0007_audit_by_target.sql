-- A sandbox's own audit entries (the E2B control API's sandbox logs) are
-- read by target: `<id>` or `<id>:<detail>`.
CREATE INDEX audit_by_target ON audit (tenant_id, target, seq);
