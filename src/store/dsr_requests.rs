//! The `dsr_requests` and `dsr_request_events` tables: the register of data
//! subject requests and its history (see [`crate::service::dsr_register`]
//! for what they mean, [`crate::domain::dsr`] for the state machine).
//!
//! A row changes only by a conditional update on the state it was read in,
//! in one transaction with the event that records the change, so two
//! officers acting at once cannot both move a request (the second is told it
//! did not apply) and no change is stored without its history line.

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreError, StoreResult};

/// The unique index on case references.
pub const CASE_UNIQUE: &str = "dsr_requests_case_reference";

/// One request as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: Uuid,
    pub case_reference: String,
    pub kind: String,
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub received_at: Micros,
    pub due_at: Micros,
    pub extension_months: i64,
    pub handled_by: String,
    pub handler_role: String,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub closed_at: Option<Micros>,
}

/// One line of a request's history. Its reason is the officer's text:
/// shown to staff, never logged (so `Debug` leaves it out).
#[derive(Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub at: Micros,
    pub actor_sub: String,
    pub actor_role: String,
    /// `create`, `extend` or `transition`.
    pub change: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub months: Option<i64>,
    pub reason: Option<String>,
}

impl std::fmt::Debug for EventRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRow")
            .field("id", &self.id)
            .field("request_id", &self.request_id)
            .field("change", &self.change)
            .field("to_status", &self.to_status)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, case_reference, kind, status, customer_id, received_at, due_at, \
     extension_months, handled_by, handler_role, created_at, updated_at, closed_at";

const EVENT_COLUMNS: &str =
    "id, request_id, at, actor_sub, actor_role, change, from_status, to_status, months, reason";

/// Inserts one event inside a transaction.
macro_rules! insert_event {
    ($tx:expr, $e:expr) => {
        sqlx::query(
            "INSERT INTO dsr_request_events (id, request_id, at, actor_sub, actor_role, change, \
             from_status, to_status, months, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind($e.id)
        .bind($e.request_id)
        .bind($e.at)
        .bind(&$e.actor_sub)
        .bind(&$e.actor_role)
        .bind(&$e.change)
        .bind(&$e.from_status)
        .bind(&$e.to_status)
        .bind($e.months)
        .bind(&$e.reason)
        .execute(&mut *$tx)
        .await?
    };
}

/// Inserts a new request with its first history line;
/// [`StoreError::Conflict`]`(`[`CASE_UNIQUE`]`)` if the case reference is taken.
pub async fn insert(db: &Db, row: &RequestRow, event: &EventRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO dsr_requests ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(&sql)
            .bind(row.id)
            .bind(&row.case_reference)
            .bind(&row.kind)
            .bind(&row.status)
            .bind(row.customer_id)
            .bind(row.received_at)
            .bind(row.due_at)
            .bind(row.extension_months)
            .bind(&row.handled_by)
            .bind(&row.handler_role)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(row.closed_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_unique(e, CASE_UNIQUE))?;
        insert_event!(tx, event);
        tx.commit().await?;
    });
    Ok(())
}

/// The request `id`, if any.
pub async fn by_id(db: &Db, id: Uuid) -> StoreResult<Option<RequestRow>> {
    let sql = format!("SELECT {COLUMNS} FROM dsr_requests WHERE id = $1");
    Ok(on_db!(db, pool => sqlx::query_as::<_, RequestRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

/// The request with this case reference, if any.
pub async fn by_case(db: &Db, case_reference: &str) -> StoreResult<Option<RequestRow>> {
    let sql = format!("SELECT {COLUMNS} FROM dsr_requests WHERE case_reference = $1");
    Ok(on_db!(db, pool => sqlx::query_as::<_, RequestRow>(&sql)
        .bind(case_reference)
        .fetch_optional(pool)
        .await?))
}

/// The history of request `id`, oldest first.
pub async fn events(db: &Db, id: Uuid) -> StoreResult<Vec<EventRow>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM dsr_request_events WHERE request_id = $1 ORDER BY at, id"
    );
    Ok(on_db!(db, pool => sqlx::query_as::<_, EventRow>(&sql)
        .bind(id)
        .fetch_all(pool)
        .await?))
}

/// Which requests a listing wants; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub customer_id: Option<Uuid>,
}

/// Requests matching `filter`, open ones first by due date (the overdue,
/// then those due soon: for open requests both follow the due date), then
/// closed ones, most recently due first; at most `limit`.
pub async fn list(db: &Db, filter: &Filter<'_>, limit: i64) -> StoreResult<Vec<RequestRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM dsr_requests \
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR kind = $2) \
           AND ($3 IS NULL OR customer_id = $3) \
         ORDER BY CASE WHEN closed_at IS NULL THEN 0 ELSE 1 END, \
           CASE WHEN closed_at IS NULL THEN due_at ELSE -due_at END, received_at, id \
         LIMIT $4"
    );
    Ok(on_db!(db, pool => sqlx::query_as::<_, RequestRow>(&sql)
        .bind(filter.status)
        .bind(filter.kind)
        .bind(filter.customer_id)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Replaces the changing columns of `row` (status, customer, due date,
/// extension, handler, times) if the stored row is still in the state
/// `expected` was read in, and records `event`; whether it applied.
pub async fn update(
    db: &Db,
    expected: &RequestRow,
    row: &RequestRow,
    event: &EventRow,
) -> StoreResult<bool> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE dsr_requests SET status = $2, customer_id = $3, due_at = $4, \
             extension_months = $5, handled_by = $6, handler_role = $7, updated_at = $8, \
             closed_at = $9 \
             WHERE id = $1 AND status = $10 AND extension_months = $11 AND updated_at = $12",
        )
        .bind(row.id)
        .bind(&row.status)
        .bind(row.customer_id)
        .bind(row.due_at)
        .bind(row.extension_months)
        .bind(&row.handled_by)
        .bind(&row.handler_role)
        .bind(row.updated_at)
        .bind(row.closed_at)
        .bind(&expected.status)
        .bind(expected.extension_months)
        .bind(expected.updated_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        insert_event!(tx, event);
        tx.commit().await?;
    });
    Ok(true)
}
