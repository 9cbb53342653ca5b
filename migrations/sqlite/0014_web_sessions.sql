-- Sessions of the web pages (README, "Staff console"): the staff console's,
-- and later the customer privacy page's. Mirrors
-- migrations/postgres/0014_web_sessions.sql.
--
-- `id_hash` is the SHA-256 of the session id the browser holds in its
-- cookie, never the id itself: a copy of this table lets no one in.
-- `subject_kind` says whose session it is ('staff' or 'customer') and
-- `subject_id` which account or customer. `epoch` is the staff account's
-- epoch when the session began (0 for customers): the session ends once the
-- account's epoch moves (disable, password or TOTP reset). Idle (15 minutes
-- since `last_seen_at`) and absolute (8 hours since `created_at`) expiry are
-- checked by the application on every request; a sign-out deletes the row.
-- Timestamps are microseconds since the Unix epoch.
CREATE TABLE web_sessions (
    id_hash      BLOB  PRIMARY KEY,
    subject_kind TEXT    NOT NULL,
    subject_id   BLOB    NOT NULL,
    epoch        INTEGER  NOT NULL,
    created_at   INTEGER  NOT NULL,
    last_seen_at INTEGER  NOT NULL
);
CREATE INDEX web_sessions_subject ON web_sessions (subject_kind, subject_id);
CREATE INDEX web_sessions_created ON web_sessions (created_at);
