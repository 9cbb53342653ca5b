-- PostgreSQL's 0018 makes bumping profile_docs write fewer and cheaper row
-- versions, with a column naming the transaction that last bumped a row.
-- SQLite updates a row in place and its triggers run per row, so it has no
-- use for the column; it is added (and stays NULL) so that both backends keep
-- one schema. Adding a nullable column without a default rewrites nothing.
ALTER TABLE profile_docs ADD COLUMN bumped_by INTEGER;
