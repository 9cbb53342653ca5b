-- Integration clients (README "Integrating a help desk"): support tools,
-- phone systems and CRM syncs that get tokens at POST /oauth/token with a
-- client id and secret.
--
-- `secret_phc` is the argon2id PHC string of the current secret (never the
-- secret); after a rotation `previous_secret_phc` keeps the old one until
-- `previous_valid_until`. `purposes` holds purpose names separated by single
-- spaces. Timestamps are microseconds since the Unix epoch.
CREATE TABLE clients (
    id                   BLOB    PRIMARY KEY,
    name                 TEXT    NOT NULL,
    role                 TEXT    NOT NULL,
    purposes             TEXT    NOT NULL,
    channel              TEXT,
    token_ttl_secs       INTEGER NOT NULL,
    secret_phc           TEXT    NOT NULL,
    previous_secret_phc  TEXT,
    previous_valid_until INTEGER,
    created_at           INTEGER NOT NULL,
    secret_rotated_at    INTEGER,
    revoked_at           INTEGER
);

-- Tokens revoked one by one at POST /oauth/revoke (RFC 7009), by their `jti`,
-- kept until they would have expired anyway.
CREATE TABLE client_revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    client_id  BLOB    NOT NULL REFERENCES clients (id),
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX client_revoked_tokens_expiry ON client_revoked_tokens (expires_at);

-- One row, one counter: raised in the same transaction as every change that
-- can refuse a token (a client added or revoked, a token revoked), so that
-- each `serve` process notices a change with one cheap read and reloads.
CREATE TABLE client_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO client_changes (id, version) VALUES (1, 0);
