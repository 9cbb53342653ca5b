-- The profile projection (docs/decisions.md, "A profile read touches one
-- row"). A profile read needs the customer's row, its profile data key, every
-- contact point with its channel's wrapped data key, and the effective
-- consent facts. `doc` holds all of it in one row, as stored elsewhere:
-- ciphertexts and wrapped keys only, never a plaintext value (see
-- SECURITY.md). The tables it copies stay the record.
--
-- The triggers make a document stale in the same transaction as any change
-- to what it copies: `gen` counts the changes and `doc` becomes NULL. A
-- reader that finds no document reads the tables in one statement (one
-- snapshot, with `gen`) and hands the document it built to a writer that
-- stores it only if `gen` is still what the reader saw. Under READ COMMITTED
-- a change in flight holds the row lock its trigger took, so the writer's
-- conditional update waits for it and then finds `gen` moved.
--
-- Statement-level triggers with transition tables: a retention batch that
-- deletes thousands of rows marks each customer once, in customer order.
-- Mirrors migrations/sqlite/0017_profile_docs.sql.
CREATE TABLE profile_docs (
    customer_id UUID   PRIMARY KEY,
    gen         BIGINT NOT NULL,
    doc         BYTEA
);

CREATE FUNCTION profile_docs_stale_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc)
        SELECT DISTINCT customer_id, 1, NULL::bytea FROM new_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION profile_docs_stale_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc)
        SELECT DISTINCT customer_id, 1, NULL::bytea FROM old_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION profile_docs_stale_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc)
        SELECT DISTINCT id, 1, NULL::bytea FROM new_rows ORDER BY id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION profile_docs_drop_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM profile_docs WHERE customer_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER profile_docs_contact_insert AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_new();
CREATE TRIGGER profile_docs_contact_update AFTER UPDATE ON contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_new();
CREATE TRIGGER profile_docs_contact_delete AFTER DELETE ON contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_old();

CREATE TRIGGER profile_docs_data_key_insert AFTER INSERT ON data_keys
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_new();
CREATE TRIGGER profile_docs_data_key_update AFTER UPDATE ON data_keys
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_new();
CREATE TRIGGER profile_docs_data_key_delete AFTER DELETE ON data_keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_old();

CREATE TRIGGER profile_docs_consent_insert AFTER INSERT ON consents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_new();
CREATE TRIGGER profile_docs_consent_update AFTER UPDATE ON consents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_new();
CREATE TRIGGER profile_docs_consent_delete AFTER DELETE ON consents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_old();

CREATE TRIGGER profile_docs_customer_update AFTER UPDATE ON customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_stale_customer();
CREATE TRIGGER profile_docs_customer_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION profile_docs_drop_customer();
