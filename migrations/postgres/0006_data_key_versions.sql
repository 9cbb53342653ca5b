-- Key rotation (DESIGN.md §4): a data key must name a channel-key version that
-- exists. A rotation retires an old version only once no data key is wrapped
-- under it; the foreign key makes that check and a concurrent insert of a data
-- key under the same old version exclude each other, so a key can never be
-- left wrapped under a deleted channel key (which would shred its data).
-- The index serves the rotation's scan by version, the per-version counts of
-- `arkku keys status`, and the foreign-key check when a version is deleted.
ALTER TABLE data_keys ADD CONSTRAINT data_keys_channel_key
    FOREIGN KEY (channel, key_version) REFERENCES channel_keys (channel, version);
CREATE INDEX data_keys_by_version ON data_keys (channel, key_version, customer_id);
