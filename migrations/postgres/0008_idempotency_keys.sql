-- Idempotency-Key on POST (DESIGN.md §11): the first answer to a key is kept
-- so that a retry gets the same answer instead of doing the write twice.
-- `actor` is a SHA-256 of the caller's role, sub and client (no identity in
-- clear); `fingerprint` a SHA-256 of the method, path and body; `response`
-- the answer's body sealed under the customer's profile data key, so erasure
-- (crypto-shredding) makes it unreadable. `status` is NULL while the first
-- request is in flight. Timestamps are microseconds since the Unix epoch.
CREATE TABLE idempotency_keys (
    actor       BYTEA   NOT NULL,
    idem_key    TEXT    NOT NULL,
    record_id   UUID    NOT NULL,
    fingerprint BYTEA   NOT NULL,
    customer_id UUID,
    status      INTEGER,
    response    BYTEA,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (actor, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_customer ON idempotency_keys (customer_id);
