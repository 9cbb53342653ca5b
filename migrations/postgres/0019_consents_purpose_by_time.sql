-- Mirrors migrations/sqlite/0019_consents_purpose_by_time.sql.
-- The retention sweep finds a purpose's consent events through this index.
-- Ordered by customer, it put every grant on a random leaf page: one more
-- page for the WAL to carry and the checkpointer to copy back, on top of
-- the ledger's own customer index, the audit log's and the profile
-- document's. Ordered by time, a new event lands on the last page of its
-- purpose, which every grant keeps warm. The sweep reads a purpose's events
-- either way; in time order the oldest, the ones that lapse, come first.
DROP INDEX consents_purpose;
CREATE INDEX consents_purpose_at ON consents (purpose, at);
