-- Signed audit checkpoints: {seq, hash, at} signed with the vault's Ed25519
-- key, so truncation and rewrites are detectable by anyone who kept one.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       BYTEA    NOT NULL,
    at         BIGINT NOT NULL,
    signature  BYTEA    NOT NULL,
    public_key BYTEA    NOT NULL
);

-- Compliance queries filter by actor and time; both walk in seq order.
CREATE INDEX audit_log_actor ON audit_log (actor_sub, seq);
CREATE INDEX audit_log_at ON audit_log (at);
