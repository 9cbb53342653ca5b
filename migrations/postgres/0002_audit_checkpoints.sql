-- Signed audit checkpoints: {seq, hash, at} signed with the vault's Ed25519
-- key, so truncation and rewrites are detectable by anyone who kept one.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       BYTEA    NOT NULL,
    at         BIGINT NOT NULL,
    signature  BYTEA    NOT NULL,
    public_key BYTEA    NOT NULL
);

-- No index on actor or time: every request pays for audit-log indexes, while
-- compliance queries by actor or time are rare and walk the log in seq order.
