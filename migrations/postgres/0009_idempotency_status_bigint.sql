-- The HTTP status of a kept answer (idempotency_keys.status) was a 32-bit
-- INTEGER here and a 64-bit INTEGER in migrations/sqlite; the test that
-- compares the two migrated schemas found it. Every other integer column is
-- BIGINT, so this one becomes BIGINT too, and the store reads it as i64 on
-- both engines. The table holds the answers of the last day only, so the
-- rewrite is short. A process older than this migration fails to replay a
-- kept answer (it expects a 32-bit column) until it is upgraded too.
ALTER TABLE idempotency_keys ALTER COLUMN status TYPE BIGINT;
