-- The audit log's customer index leaves the writer's way
-- (docs/decisions.md, "The audit log's customer index in runs").
--
-- `audit_log_customer (customer_id, seq)` put every appended entry on a
-- random leaf of a large index, so every group commit wrote and synced a
-- handful of random pages besides the log's last ones: with it, the audit
-- writer's cycle, not the requests, bounded the audited reads.
--
-- The index is now written in runs. Once the log holds an eighth of
-- `--audit-index-run` entries past the last run (the watermark), the writer
-- files them, in the same transaction as the batch that crossed it, sorted
-- by customer, as one small run (level 0): rows keyed (run, customer_id,
-- seq), where `run` is the run's last seq. Each eighth small run is filed
-- instead as one merged run (level 1) of the whole stretch since the last
-- merged run, in place of the seven before it. Every run lands at the end of
-- the index, so a run of N entries writes about N small rows in order
-- instead of N random pages.
--
-- A customer-filtered compliance query seeks the customer once per run, and
-- scans the log past the watermark (fewer than an eighth of a run). The log
-- stays the record: the runs only say where to look, and are derived from it.
--
-- This migration files the whole existing log as one merged run, read in
-- order from the index it then drops. PostgreSQL keeps its per-entry index
-- (migrations/postgres/0020_audit_customer_runs.sql says why).
-- Mirrors migrations/postgres/0020_audit_customer_runs.sql.
CREATE TABLE audit_customer_runs (
    through_seq INTEGER PRIMARY KEY,
    level       INTEGER NOT NULL
);
CREATE TABLE audit_customer_seqs (
    run         INTEGER NOT NULL,
    customer_id BLOB    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (run, customer_id, seq)
) WITHOUT ROWID;
INSERT INTO audit_customer_seqs (run, customer_id, seq)
    SELECT (SELECT MAX(seq) FROM audit_log), customer_id, seq
    FROM audit_log
    WHERE customer_id IS NOT NULL
    ORDER BY customer_id, seq;
INSERT INTO audit_customer_runs (through_seq, level)
    SELECT MAX(seq), 1 FROM audit_log HAVING MAX(seq) IS NOT NULL;
DROP INDEX audit_log_customer;
