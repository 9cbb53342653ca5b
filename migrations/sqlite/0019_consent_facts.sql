-- The consent facts leave the profile document for a row of their own
-- (docs/decisions.md, "Consent facts beside the document").
--
-- A consent grant is the most frequent write, and it made the customer's
-- document stale: each grant rewrote a page of the large profile_docs table
-- and threw away a document that the next read had to rebuild from five
-- tables, although only the consent facts had changed. `consent_facts` holds
-- just a customer's effective consent facts, encoded as one small value, so
-- that a grant marks a small row stale in a small table and the next read
-- rebuilds only the facts, from the ledger alone. The ledger (`consents`)
-- stays the record; a profile read takes the document and the facts in one
-- statement.
--
-- Same rules as profile_docs (migration 0017): every change to the ledger
-- moves `gen` and clears `facts` in the same transaction; a reader that finds
-- no facts reads the ledger in one snapshot with `gen`, and its facts are
-- stored only if `gen` has not moved since. Only effective events are facts,
-- so inserting a grant that waits for the customer's confirmation changes
-- nothing here (ledger rows are never updated to become effective: a
-- confirmation is an event of its own).
--
-- The documents written before this migration still hold consent facts;
-- their format is no longer read, so each is rebuilt (by `serve`'s start-up
-- build, or by its customer's next read) without them.
-- Mirrors migrations/postgres/0019_consent_facts.sql.
CREATE TABLE consent_facts (
    customer_id BLOB    PRIMARY KEY,
    gen         INTEGER NOT NULL,
    facts       BLOB
) WITHOUT ROWID;

DROP TRIGGER profile_docs_consent_insert;
DROP TRIGGER profile_docs_consent_update;
DROP TRIGGER profile_docs_consent_delete;

CREATE TRIGGER consent_facts_insert AFTER INSERT ON consents
WHEN NEW.status = 'effective' BEGIN
    INSERT INTO consent_facts (customer_id, gen, facts) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, facts = NULL;
END;
CREATE TRIGGER consent_facts_update AFTER UPDATE ON consents BEGIN
    INSERT INTO consent_facts (customer_id, gen, facts) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, facts = NULL;
    INSERT INTO consent_facts (customer_id, gen, facts) VALUES (OLD.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, facts = NULL;
END;
CREATE TRIGGER consent_facts_delete AFTER DELETE ON consents BEGIN
    INSERT INTO consent_facts (customer_id, gen, facts) VALUES (OLD.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, facts = NULL;
END;

CREATE TRIGGER consent_facts_customer_delete AFTER DELETE ON customers BEGIN
    DELETE FROM consent_facts WHERE customer_id = OLD.id;
END;
