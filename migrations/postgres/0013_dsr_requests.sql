-- The register of data subject requests (README, "Data subject request
-- register"). Mirrors migrations/sqlite/0013_dsr_requests.sql.
--
-- One row per request: its `kind` (access, erasure, rectification), its
-- `status` (src/domain/dsr.rs holds the state machine), the `case_reference`
-- that erasure and export audit entries record (unique), the customer once
-- identified (NULL until then), when it was received and when it falls due
-- (`due_at`: the end of the due date, UTC; one calendar month from receipt
-- plus `extension_months`, at most 2), who last handled it (`handled_by`,
-- `handler_role`: the actor's token subject and role) and `closed_at` once
-- final. `dsr_request_events` is its history: every creation, extension and
-- transition, by whom, when, and the reason given (bounded text, never
-- logged or audited). Timestamps are microseconds since the Unix epoch.
CREATE TABLE dsr_requests (
    id               UUID    PRIMARY KEY,
    case_reference   TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    customer_id      UUID    REFERENCES customers (id),
    received_at      BIGINT  NOT NULL,
    due_at           BIGINT  NOT NULL,
    extension_months BIGINT  NOT NULL,
    handled_by       TEXT    NOT NULL,
    handler_role     TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    closed_at        BIGINT
);
CREATE UNIQUE INDEX dsr_requests_case_reference ON dsr_requests (case_reference);
CREATE INDEX dsr_requests_due ON dsr_requests (closed_at, due_at);
CREATE INDEX dsr_requests_customer ON dsr_requests (customer_id);

CREATE TABLE dsr_request_events (
    id          UUID    PRIMARY KEY,
    request_id  UUID    NOT NULL REFERENCES dsr_requests (id),
    at          BIGINT  NOT NULL,
    actor_sub   TEXT    NOT NULL,
    actor_role  TEXT    NOT NULL,
    change      TEXT    NOT NULL,
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    months      BIGINT,
    reason      TEXT
);
CREATE INDEX dsr_request_events_request ON dsr_request_events (request_id, at);
