-- The consent ledger (DESIGN.md §6): append-only, one row per grant or
-- withdrawal. The current state of (purpose, channel) is its latest event; a
-- channel-specific event wins over "*". Evidence names the notice the customer
-- saw (an id and version, not personal data), enough to demonstrate the
-- consent later (GDPR Art. 7(1)).
CREATE TABLE consents (
    id               BLOB PRIMARY KEY,
    customer_id      BLOB NOT NULL REFERENCES customers (id),
    purpose          TEXT NOT NULL,
    channel          TEXT NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('grant', 'withdraw')),
    notice_id        TEXT,
    notice_version   TEXT,
    method           TEXT NOT NULL,
    source_channel   TEXT,
    actor_sub        TEXT NOT NULL,
    actor_role       TEXT NOT NULL,
    at               INTEGER NOT NULL,
    expires_at       INTEGER
);
CREATE INDEX consents_customer ON consents (customer_id, at);
