-- The record of completed retention sweeps (README, "Retention sweeper"),
-- so that "when did the sweeper last run, and what did it purge" has an
-- answer even when a sweep purged nothing (a sweep that purges nothing
-- writes no retention.purge audit entry). Mirrors
-- migrations/postgres/0015_retention_sweeps.sql.
--
-- One row per completed sweep that was not a dry run. `run_id` is the
-- request id its retention.purge entries carry; `as_of` the time it swept
-- for (its clock, or --now); `elapsed_ms` how long it took; `counts` a JSON
-- object of counts per channel, kind and purpose (never an id or a value).
-- The sweeper deletes rows older than 90 days. Timestamps are microseconds
-- since the Unix epoch.
CREATE TABLE retention_sweeps (
    run_id     TEXT    PRIMARY KEY,
    as_of      INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL,
    purged     INTEGER NOT NULL,
    customers  INTEGER NOT NULL,
    batches    INTEGER NOT NULL,
    counts     TEXT    NOT NULL
);
CREATE INDEX retention_sweeps_as_of ON retention_sweeps (as_of);
