-- Signed ties between the audit chains of several shards (docs/SCALING.md,
-- "The audit log, split"). When a vault is split by customer over several
-- databases, each keeps its own chain; `arkku audit tie` reads every
-- shard's head, signs one statement naming them all, and stores the same
-- statement in every shard. Ties are numbered from 1 and each names the
-- digest of the one before, so the ties form a chain of their own that
-- `arkku audit verify --shard …` checks against every shard's entries.
-- Mirrors migrations/postgres/0016_audit_ties.sql.
--
-- `body` is the tie as signed and exported (JSON, format arkku-audit-tie/1);
-- `digest` its SHA-256, which the next tie names.
CREATE TABLE audit_ties (
    n      INTEGER PRIMARY KEY,
    digest BLOB    NOT NULL,
    body   TEXT    NOT NULL
);
