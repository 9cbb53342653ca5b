-- The profile projection (docs/decisions.md, "A profile read touches one
-- row"). A profile read needs the customer's row, its profile data key, every
-- contact point with its channel's wrapped data key, and the effective
-- consent facts: before this table, a dozen B-tree descents over five tables.
-- `doc` holds all of it in one row, as stored elsewhere: ciphertexts and
-- wrapped keys only, never a plaintext value (see SECURITY.md). The tables it
-- copies stay the record; the document is rebuilt from them, never the other
-- way round.
--
-- The triggers below make a document stale in the same transaction as any
-- change to what it copies: `gen` counts the changes and `doc` becomes NULL.
-- A reader that finds no document reads the tables (one snapshot, with
-- `gen`) and hands the document it built to a writer that stores it only if
-- `gen` is still what the reader saw (`doc IS NULL AND gen = ?`, or an
-- insert that yields to any row already there). No write path has to
-- remember the projection, and a stale document can never be read.
-- Mirrors migrations/postgres/0017_profile_docs.sql.
CREATE TABLE profile_docs (
    customer_id BLOB    PRIMARY KEY,
    gen         INTEGER NOT NULL,
    doc         BLOB
) WITHOUT ROWID;

CREATE TRIGGER profile_docs_contact_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_contact_update AFTER UPDATE ON contacts BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_contact_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (OLD.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;

CREATE TRIGGER profile_docs_data_key_insert AFTER INSERT ON data_keys BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_data_key_update AFTER UPDATE ON data_keys BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_data_key_delete AFTER DELETE ON data_keys BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (OLD.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;

CREATE TRIGGER profile_docs_consent_insert AFTER INSERT ON consents BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_consent_update AFTER UPDATE ON consents BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_consent_delete AFTER DELETE ON consents BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (OLD.customer_id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;

CREATE TRIGGER profile_docs_customer_update AFTER UPDATE ON customers BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc) VALUES (NEW.id, 1, NULL)
        ON CONFLICT (customer_id) DO UPDATE SET gen = gen + 1, doc = NULL;
END;
CREATE TRIGGER profile_docs_customer_delete AFTER DELETE ON customers BEGIN
    DELETE FROM profile_docs WHERE customer_id = OLD.id;
END;
