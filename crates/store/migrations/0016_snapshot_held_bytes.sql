-- Bytes a snapshot holds outside the blob store: a memory pause's
-- checkpoint (processes and memory, on this node's disk). Counted in the
-- tenant's storage quota like blobs and manifests: reserved at the
-- memory limit when the pause begins, the checkpoint's size once taken.
-- Conventions as in 0001.

ALTER TABLE snapshots ADD COLUMN held_bytes INTEGER NOT NULL DEFAULT 0;
