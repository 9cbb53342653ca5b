-- Fewer and cheaper new row versions of profile_docs (docs/PERFORMANCE.md,
-- "What a bump costs on PostgreSQL").
--
-- Every change to what a document copies bumps its row (migration 0017), and
-- in PostgreSQL every update writes a new row version: a retention batch or a
-- key rotation writes one for each customer it touches, per statement.
--
-- 1. Room on each page for the next version of its rows. On a full page the
--    new version goes to another page and the primary key gets a new entry
--    too; with room it stays on its page (a heap-only tuple) and the index is
--    not touched. A batch bumps every row of a page once, so each row needs
--    room for one more version of itself: half of each page is left free.
--    Pages written before this migration keep their fill until rewritten
--    (`VACUUM FULL profile_docs` at a quiet time does it at once).
--
-- 2. One bump per customer per transaction. A row this transaction has
--    already bumped (`bumped_by` names it) already tells every reader that
--    its document changed: the row stays locked until the transaction ends,
--    and the rest of the transaction's changes commit together with that
--    bump. An erasure, which deletes data keys and then clears the
--    customer's row, now writes one version, not two. A row counts as
--    bumped by this transaction only if both say so: `bumped_by`, the
--    64-bit id (`pg_current_xact_id()`, as a bigint) of the transaction that
--    last bumped it, and `xmin`, the transaction that wrote the row version.
--    Either alone can be fooled: a frozen row keeps its 32-bit `xmin`, which
--    a transaction 2^32 later would match, and a row restored from another
--    cluster's dump carries that cluster's ids in `bumped_by`.
ALTER TABLE profile_docs SET (fillfactor = 50);
ALTER TABLE profile_docs ADD COLUMN bumped_by BIGINT;

CREATE OR REPLACE FUNCTION profile_docs_stale_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc, bumped_by)
        SELECT DISTINCT customer_id, 1, NULL::bytea, pg_current_xact_id()::text::bigint FROM new_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL, bumped_by = EXCLUDED.bumped_by
        WHERE profile_docs.bumped_by IS DISTINCT FROM EXCLUDED.bumped_by
           OR profile_docs.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION profile_docs_stale_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc, bumped_by)
        SELECT DISTINCT customer_id, 1, NULL::bytea, pg_current_xact_id()::text::bigint FROM old_rows ORDER BY customer_id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL, bumped_by = EXCLUDED.bumped_by
        WHERE profile_docs.bumped_by IS DISTINCT FROM EXCLUDED.bumped_by
           OR profile_docs.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION profile_docs_stale_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profile_docs (customer_id, gen, doc, bumped_by)
        SELECT DISTINCT id, 1, NULL::bytea, pg_current_xact_id()::text::bigint FROM new_rows ORDER BY id
        ON CONFLICT (customer_id) DO UPDATE SET gen = profile_docs.gen + 1, doc = NULL, bumped_by = EXCLUDED.bumped_by
        WHERE profile_docs.bumped_by IS DISTINCT FROM EXCLUDED.bumped_by
           OR profile_docs.xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;
