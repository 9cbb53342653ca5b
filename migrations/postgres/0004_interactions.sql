-- Interactions (DESIGN.md §8): contact requests, complaints, feedback and
-- transcripts, one channel each. The body is AES-256-GCM ciphertext under the
-- customer's data key of that channel, like a contact value.
-- Timestamps are microseconds since the Unix epoch (UTC).
CREATE TABLE interactions (
    id          UUID    PRIMARY KEY,
    customer_id UUID    NOT NULL REFERENCES customers (id),
    channel     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    body        BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL,
    due_at      BIGINT,
    resolved_at BIGINT
);
CREATE INDEX interactions_customer ON interactions (customer_id, id);
-- The promises not yet kept: open contact requests by due date.
CREATE INDEX interactions_open_due ON interactions (due_at)
    WHERE resolved_at IS NULL AND kind = 'contact_request' AND due_at IS NOT NULL;
