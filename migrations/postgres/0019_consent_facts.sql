-- The consent facts leave the profile document for a row of their own
-- (docs/decisions.md, "Consent facts beside the document"): a consent grant,
-- the most frequent write, marks a small row stale in a small table instead
-- of bumping the customer's profile document, and the next read rebuilds only
-- the facts, from the ledger alone. The ledger (`consents`) stays the record.
--
-- Same rules as profile_docs (migrations 0017 and 0018): every change to the
-- ledger moves `gen` and clears `facts` in the same transaction; a reader
-- that finds no facts reads the ledger in one statement with `gen`, and its
-- facts are stored only if `gen` has not moved since (under READ COMMITTED
-- the conditional update waits for the row lock a change in flight took).
-- Only effective events are facts, so a grant waiting for the customer's
-- confirmation changes nothing here. Room on each page for the next version
-- of its rows, as for profile_docs.
--
-- The documents written before this migration still hold consent facts;
-- their format is no longer read, so each is rebuilt without them.
-- Mirrors migrations/sqlite/0019_consent_facts.sql.
CREATE TABLE consent_facts (
    customer_id UUID   PRIMARY KEY,
    gen         BIGINT NOT NULL,
    facts       BYTEA
) WITH (fillfactor = 50);

DROP TRIGGER profile_docs_consent_insert ON consents;
DROP TRIGGER profile_docs_consent_update ON consents;
DROP TRIGGER profile_docs_consent_delete ON consents;

-- Inserts: only effective events are facts.
CREATE FUNCTION consent_facts_stale_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO consent_facts (customer_id, gen, facts)
        SELECT DISTINCT customer_id, 1, NULL::bytea FROM new_rows
        WHERE status = 'effective' ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = consent_facts.gen + 1, facts = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION consent_facts_stale_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO consent_facts (customer_id, gen, facts)
        SELECT DISTINCT customer_id, 1, NULL::bytea FROM old_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = consent_facts.gen + 1, facts = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION consent_facts_stale_both() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO consent_facts (customer_id, gen, facts)
        SELECT customer_id, 1, NULL::bytea
        FROM (SELECT customer_id FROM new_rows UNION SELECT customer_id FROM old_rows) AS changed
        ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = consent_facts.gen + 1, facts = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION consent_facts_drop_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM consent_facts WHERE customer_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER consent_facts_insert AFTER INSERT ON consents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_facts_stale_new();
CREATE TRIGGER consent_facts_update AFTER UPDATE ON consents
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION consent_facts_stale_both();
CREATE TRIGGER consent_facts_delete AFTER DELETE ON consents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_facts_stale_old();
CREATE TRIGGER consent_facts_customer_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION consent_facts_drop_customer();
