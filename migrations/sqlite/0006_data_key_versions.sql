-- Key rotation (DESIGN.md §4): a data key must name a channel-key version that
-- exists. A rotation retires an old version only once no data key is wrapped
-- under it; the foreign key makes that check and a concurrent insert of a data
-- key under the same old version exclude each other, so a key can never be
-- left wrapped under a deleted channel key (which would shred its data).
-- The index serves the rotation's scan by version, the per-version counts of
-- `arkku keys status`, and the foreign-key check when a version is deleted.
--
-- SQLite cannot add a constraint to an existing table: the table is rebuilt.
-- Nothing references data_keys, so dropping it is safe with foreign keys on.
CREATE TABLE data_keys_new (
    customer_id BLOB    NOT NULL REFERENCES customers (id),
    channel     TEXT    NOT NULL,
    key_version INTEGER NOT NULL,
    wrapped     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, channel),
    CONSTRAINT data_keys_channel_key FOREIGN KEY (channel, key_version)
        REFERENCES channel_keys (channel, version)
);
INSERT INTO data_keys_new (customer_id, channel, key_version, wrapped, created_at)
    SELECT customer_id, channel, key_version, wrapped, created_at FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_new RENAME TO data_keys;
CREATE INDEX data_keys_by_version ON data_keys (channel, key_version, customer_id);
