-- Consent an agent records waits for the customer (DESIGN.md §6): the reader
-- must not be able to attest a consent and then use it unchecked. The ledger
-- stays append-only, so nothing here is ever updated:
--
-- status   'effective' (takes effect when recorded, as every event did before)
--          or 'pending_confirmation' (an agent-recorded grant: opens nothing)
-- confirms on the customer's confirmation event, the id of the pending grant
--          it confirms; the confirmation is a grant of its own, effective from
--          the moment the customer confirmed
-- review   why compliance should look at the event ('agent_recorded' on every
--          grant an agent records), or NULL
ALTER TABLE consents ADD COLUMN status TEXT NOT NULL DEFAULT 'effective'
    CHECK (status IN ('effective', 'pending_confirmation'));
ALTER TABLE consents ADD COLUMN confirms UUID;
ALTER TABLE consents ADD COLUMN review TEXT;
CREATE INDEX consents_review ON consents (review) WHERE review IS NOT NULL;
