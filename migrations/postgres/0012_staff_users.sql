-- Staff accounts (README, "Staff accounts"): the compliance officers and operators
-- who sign in to the console with a password and a TOTP code. Mirrors
-- migrations/sqlite/0012_staff_users.sql.
--
-- `name` is lower-cased by the application, so its unique index is a
-- case-insensitive one. `password_hash` is an argon2id PHC string, never a
-- password. `totp_secret` is the TOTP secret sealed (AES-256-GCM, bound to
-- the row's id) under a key derived from the root-wrapped `_index` key
-- (src/crypto/secret_seal.rs): the database alone opens nothing.
-- `disabled_at` is NULL while the account may sign in. `failed_attempts` and
-- `locked_until` hold the lockout (ten failures lock for 15 minutes);
-- `last_totp_step` the last 30-second step whose code signed in, so that no
-- code is accepted twice. `epoch` grows on every disable and every password
-- or TOTP reset: a console session remembers the epoch it began in and ends
-- when it changes. Timestamps are microseconds since the Unix epoch.
CREATE TABLE staff_users (
    id              UUID    PRIMARY KEY,
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    totp_secret     BYTEA   NOT NULL,
    disabled_at     BIGINT,
    failed_attempts BIGINT  NOT NULL,
    locked_until    BIGINT,
    last_totp_step  BIGINT,
    epoch           BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE UNIQUE INDEX staff_users_name ON staff_users (name);
