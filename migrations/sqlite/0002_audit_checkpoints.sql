-- Signed audit checkpoints: {seq, hash, at} signed with the vault's Ed25519
-- key, so truncation and rewrites are detectable by anyone who kept one.
CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       BLOB    NOT NULL,
    at         INTEGER NOT NULL,
    signature  BLOB    NOT NULL,
    public_key BLOB    NOT NULL
);

-- Compliance queries filter by actor and time; both walk in seq order.
CREATE INDEX audit_log_actor ON audit_log (actor_sub, seq);
CREATE INDEX audit_log_at ON audit_log (at);
