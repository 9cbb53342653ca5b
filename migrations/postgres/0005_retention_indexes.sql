-- Indexes for the retention sweeper (and read-time retention): expired rows
-- are found by channel and age without scanning the tables.
CREATE INDEX contacts_retention ON contacts (channel, last_activity_at);
CREATE INDEX interactions_retention ON interactions (channel, kind, (COALESCE(resolved_at, created_at)));
CREATE INDEX consents_purpose ON consents (purpose, customer_id);
-- contacts_unique_value (customer_id, channel, blind_index) already serves
-- lookups by customer; a second index on customer_id only costs every write.
DROP INDEX contacts_customer;
