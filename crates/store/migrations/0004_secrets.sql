-- Tenant secrets: values encrypted by the server (XChaCha20-Poly1305, its
-- own key); the store never sees a plaintext. Names are environment
-- variable names, unique per tenant. Conventions as in 0001.

CREATE TABLE secrets (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    -- Set when a value replaced an earlier one (`?replace=true`).
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;
