-- Customer sign-in by one-time code (DESIGN.md §12.3) and the notifier's
-- outbox. Mirrors migrations/sqlite/0011_customer_sign_in.sql.
--
-- A challenge holds no code: `code_hash` is HMAC-SHA256 over the challenge id
-- and the code, under a key derived from the vault's `_index` key (see
-- src/identity/sign_in/code.rs). `customer_id` is NULL for a value that
-- matched nobody: such a challenge exists so that /verify answers it like any
-- other, and never verifies. `attempts` counts checks (the sixth fails even
-- with the right code); `used_at` is set by the one check that succeeded.
--
-- An outbox row is a message the notifier still has to deliver. `message`
-- (where to send it and the code) is AES-256-GCM sealed under a second
-- derived key, bound to the row id, customer and channel; the row is deleted
-- once delivered or expired. `claimed_by`/`claimed_until` are a node's lease,
-- so that several nodes do not deliver one message twice.
-- Timestamps are microseconds since the Unix epoch.
CREATE TABLE sign_in_challenges (
    id          UUID    PRIMARY KEY,
    customer_id UUID,
    channel     TEXT    NOT NULL,
    code_hash   BYTEA   NOT NULL,
    attempts    BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);
CREATE INDEX sign_in_challenges_expires ON sign_in_challenges (expires_at);
CREATE INDEX sign_in_challenges_customer ON sign_in_challenges (customer_id);

CREATE TABLE notifier_outbox (
    id              UUID    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    customer_id     UUID    NOT NULL,
    channel         TEXT    NOT NULL,
    message         BYTEA   NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    claimed_by      UUID,
    claimed_until   BIGINT
);
CREATE INDEX notifier_outbox_due ON notifier_outbox (next_attempt_at);
CREATE INDEX notifier_outbox_customer ON notifier_outbox (customer_id);
