-- A customer's document is made stale once per transaction, not once per
-- statement (docs/decisions.md, "A profile read touches one row"; measured in
-- docs/PERFORMANCE.md, "Profile documents").
--
-- Every bump writes a new version of the customer's `profile_docs` row. A
-- transaction that changes several of a customer's tables bumped it once per
-- statement: the retention sweep's erasure of an empty customer (its data
-- keys, contact points, consents and then the customer row, four statements)
-- wrote four versions of each row, and a sweep measured 38 % slower than
-- before the documents. One bump per transaction is enough: a reader's
-- document is stored only while `gen` is what the reader saw, and the first
-- bump already moved it for the whole transaction (its row lock holds any
-- store until the transaction ends). A row whose `xmin` is the current
-- transaction was written by it — only these triggers write `profile_docs`
-- in a transaction that changes data (the projector's and the start-up
-- build's transactions change nothing else) — so the triggers skip it.
-- Mirrors migrations/sqlite/0018_profile_docs_once_per_transaction.sql.

CREATE OR REPLACE FUNCTION profile_docs_stale_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc)
        SELECT DISTINCT customer_id, 1, NULL::bytea FROM new_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL
            WHERE profile_docs.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION profile_docs_stale_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc)
        SELECT DISTINCT customer_id, 1, NULL::bytea FROM old_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL
            WHERE profile_docs.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION profile_docs_stale_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc)
        SELECT DISTINCT id, 1, NULL::bytea FROM new_rows ORDER BY id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL
            WHERE profile_docs.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;
