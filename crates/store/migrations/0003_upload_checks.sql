-- Upload checks: the verdict of the operator's scanner hook on each file.
-- NULL when no scanner was configured at upload time (and for files stored
-- before this migration); otherwise `clean` or `error: <why>` (a scanner
-- that failed while the server accepts unscanned files). Files a scanner
-- flagged are never recorded, so there is no `infected` value.

ALTER TABLE files ADD COLUMN scan TEXT;
