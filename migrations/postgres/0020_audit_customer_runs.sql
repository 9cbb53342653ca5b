-- The tables of the audit log's customer index in runs
-- (docs/decisions.md, "The audit log's customer index in runs"), left empty
-- on PostgreSQL, which keeps its per-entry index `audit_log_customer`.
--
-- On SQLite every group commit synced a random page of that index for
-- almost every entry, and the audit writer's cycle bounds audited requests
-- there; migration sqlite/0020 files the index in runs behind the log
-- instead. PostgreSQL's write-ahead log records the index tuple rather than
-- its page, and the same change measured no gain for its reads, while its
-- planner scanned the small tables of a young log where the index serves a
-- customer's entries directly. The tables exist so that both engines have
-- the same tables.
-- Mirrors migrations/sqlite/0020_audit_customer_runs.sql.
CREATE TABLE audit_customer_runs (
    through_seq BIGINT PRIMARY KEY,
    level       BIGINT NOT NULL
);
CREATE TABLE audit_customer_seqs (
    run         BIGINT NOT NULL,
    customer_id UUID   NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (run, customer_id, seq)
);
