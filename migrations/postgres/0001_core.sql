-- arkku core schema (PostgreSQL). Mirrors migrations/sqlite/0001_core.sql; a test
-- checks that both folders hold the same migration names.
-- No column here ever holds a plaintext contact value, display name or external
-- reference: those are AES-256-GCM ciphertexts (see SECURITY.md).
-- Timestamps are microseconds since the Unix epoch (UTC).

-- Channel keys, one row per channel and version, wrapped by the root key.
CREATE TABLE channel_keys (
    channel     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    wrapped     BYTEA    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (channel, version)
);

CREATE TABLE customers (
    id                UUID    PRIMARY KEY,
    display_name      BYTEA,
    external_ref      BYTEA,
    preferred_channel TEXT,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    erased_at         BIGINT 
);

-- One data key per (customer, key domain), wrapped by the channel key of
-- `key_version`. Deleting these rows crypto-shreds the customer's data.
CREATE TABLE data_keys (
    customer_id UUID    NOT NULL REFERENCES customers (id),
    channel     TEXT    NOT NULL,
    key_version BIGINT  NOT NULL,
    wrapped     BYTEA    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (customer_id, channel)
);

CREATE TABLE contacts (
    id               UUID    PRIMARY KEY,
    customer_id      UUID    NOT NULL REFERENCES customers (id),
    channel          TEXT    NOT NULL,
    blind_index      BYTEA    NOT NULL,
    value            BYTEA    NOT NULL,
    label            BYTEA,
    created_at       BIGINT  NOT NULL,
    last_activity_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX contacts_unique_value ON contacts (customer_id, channel, blind_index);
CREATE INDEX contacts_lookup ON contacts (channel, blind_index);
CREATE INDEX contacts_customer ON contacts (customer_id);

-- Append-only audit log; each entry's hash chains to the one before.
CREATE TABLE audit_log (
    seq          BIGINT  PRIMARY KEY,
    at           BIGINT  NOT NULL,
    actor_sub    TEXT    NOT NULL,
    actor_role   TEXT    NOT NULL,
    actor_client TEXT,
    action       TEXT    NOT NULL,
    customer_id  UUID,
    channel      TEXT,
    purpose      TEXT,
    decision     TEXT    NOT NULL,
    reason       TEXT,
    request_id   TEXT    NOT NULL,
    detail       TEXT    NOT NULL,
    prev_hash    BYTEA    NOT NULL,
    hash         BYTEA    NOT NULL
);
CREATE INDEX audit_log_customer ON audit_log (customer_id, seq);
