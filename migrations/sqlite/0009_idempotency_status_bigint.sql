-- Nothing to change on SQLite: idempotency_keys.status is already a 64-bit
-- INTEGER here. migrations/postgres/0009 widens PostgreSQL's 32-bit column to
-- match; both folders hold the same migration names.
SELECT 1;
