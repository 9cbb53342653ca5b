//! The consent ledger (`consents`): append-only rows, read per customer in
//! order, and appended only as an audit entry's effect (the insert for each
//! backend is below, side by side; see [`super::audit::Effect`]).

use std::collections::HashSet;

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, Db, Micros, StoreError, StoreResult};

/// One grant or withdrawal.
#[derive(Debug, Clone)]
pub struct ConsentRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub purpose: String,
    /// A channel name or `*`.
    pub channel: String,
    /// `grant` or `withdraw`.
    pub action: String,
    pub notice_id: Option<String>,
    pub notice_version: Option<String>,
    pub method: String,
    pub source_channel: Option<String>,
    pub actor_sub: String,
    pub actor_role: String,
    pub at: Micros,
    pub expires_at: Option<Micros>,
    /// [`EFFECTIVE`] or [`PENDING_CONFIRMATION`], as recorded (never updated:
    /// a confirmation is an event of its own).
    pub status: String,
    /// On a customer's confirmation: the pending grant it confirms.
    pub confirms: Option<Uuid>,
    /// Why compliance should review the event (`agent_recorded`), if at all.
    pub review: Option<String>,
}

/// An event that took effect when it was recorded.
pub const EFFECTIVE: &str = "effective";
/// An agent-recorded grant waiting for the customer's confirmation: it opens
/// nothing, and only [`EFFECTIVE`] events are facts for a decision.
pub const PENDING_CONFIRMATION: &str = "pending_confirmation";
/// The review flag of every grant an agent records.
pub const REVIEW_AGENT_RECORDED: &str = "agent_recorded";

/// What a policy decision needs of one ledger event (the hot read paths
/// load these, not whole rows).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConsentFact {
    pub purpose: String,
    /// A channel name or `*`.
    pub channel: String,
    /// `grant` (true) or `withdraw`.
    pub grant: bool,
    pub at: Micros,
    pub expires_at: Option<Micros>,
}

/// A customer's facts, oldest first, on a direct SQLite read transaction.
/// Pending grants are no facts: they open nothing until confirmed.
const FACTS_SQL: &str = "SELECT purpose, channel, action, at, expires_at FROM consents \
     WHERE customer_id = $1 AND status = 'effective' ORDER BY at, id";

pub(in crate::store) fn facts_sqlite(
    conn: &rusqlite::Connection,
    customer_id: Uuid,
) -> rusqlite::Result<Vec<ConsentFact>> {
    let mut stmt = conn.prepare_cached(FACTS_SQL)?;
    let rows = stmt.query_map(rusqlite::named_params! {"$1": customer_id}, |r| {
        Ok(ConsentFact {
            purpose: r.get(0)?,
            channel: r.get(1)?,
            grant: r.get_ref(2)?.as_str()? == "grant",
            at: r.get(3)?,
            expires_at: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A PostgreSQL column that folds the facts of the customer `$customer` (an
/// SQL expression, a literal) into one JSON array, so they come in the same
/// round trip as the rows they decide on. Read with [`facts_from_json`].
macro_rules! facts_json_pg {
    ($customer:literal) => {
        concat!(
            "(SELECT json_agg(json_build_array(f.purpose, f.channel, f.action, f.at, f.expires_at) \
             ORDER BY f.at, f.id) FROM consents f WHERE f.customer_id = ",
            $customer,
            " AND f.status = 'effective')::text"
        )
    };
}
pub(in crate::store) use facts_json_pg;

pub(in crate::store) fn facts_from_json(json: Option<&str>) -> StoreResult<Vec<ConsentFact>> {
    type Raw = (String, String, String, i64, Option<i64>);
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let raw: Vec<Raw> =
        serde_json::from_str(json).map_err(|_| StoreError::Corrupt("consent facts"))?;
    Ok(raw
        .into_iter()
        .map(|(purpose, channel, action, at, expires_at)| ConsentFact {
            purpose,
            channel,
            grant: action == "grant",
            at,
            expires_at,
        })
        .collect())
}

/// The columns of a ledger row, in [`ConsentRow`]'s order.
macro_rules! columns {
    () => {
        "id, customer_id, purpose, channel, action, notice_id, notice_version, method, \
         source_channel, actor_sub, actor_role, at, expires_at, status, confirms, review"
    };
}

/// A customer's events, oldest first (ids are UUIDv7, so they break ties in order).
pub async fn for_customer(db: &Db, customer_id: Uuid) -> StoreResult<Vec<ConsentRow>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM consents WHERE customer_id = $1 ORDER BY at, id"
    );
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(SQL).bind(customer_id).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(ConsentRow {
                id: r.try_get(0)?,
                customer_id: r.try_get(1)?,
                purpose: r.try_get(2)?,
                channel: r.try_get(3)?,
                action: r.try_get(4)?,
                notice_id: r.try_get(5)?,
                notice_version: r.try_get(6)?,
                method: r.try_get(7)?,
                source_channel: r.try_get(8)?,
                actor_sub: r.try_get(9)?,
                actor_role: r.try_get(10)?,
                at: r.try_get(11)?,
                expires_at: r.try_get(12)?,
                status: r.try_get(13)?,
                confirms: r.try_get(14)?,
                review: r.try_get(15)?,
            });
        }
        out
    });
    Ok(rows)
}

/// Appends one event if its customer is live, on the audit writer's SQLite
/// transaction; whether it did.
pub(in crate::store) fn insert_if_live_sqlite(
    tx: &rusqlite::Transaction<'_>,
    c: &ConsentRow,
) -> StoreResult<bool> {
    const SQL: &str = concat!(
        "INSERT INTO consents (",
        columns!(),
        ") SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 \
         WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?2 AND erased_at IS NULL)"
    );
    let n = tx.prepare_cached(SQL)?.execute(rusqlite::params![
        c.id,
        c.customer_id,
        c.purpose,
        c.channel,
        c.action,
        c.notice_id,
        c.notice_version,
        c.method,
        c.source_channel,
        c.actor_sub,
        c.actor_role,
        c.at,
        c.expires_at,
        c.status,
        c.confirms,
        c.review,
    ])?;
    Ok(n == 1)
}

/// Appends the events whose customer is live, on the audit writer's
/// PostgreSQL transaction, in one statement; the ids of those appended.
pub(in crate::store) async fn insert_if_live_postgres(
    tx: &mut sqlx::PgConnection,
    consents: &[&ConsentRow],
) -> StoreResult<HashSet<Uuid>> {
    const SQL: &str = concat!(
        "INSERT INTO consents (",
        columns!(),
        ") SELECT u.* FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], \
         $14::text[], $15::uuid[], $16::text[]) AS u(",
        columns!(),
        ") WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = u.customer_id AND c.erased_at IS NULL) \
         RETURNING id"
    );
    if consents.is_empty() {
        return Ok(HashSet::new());
    }
    let text =
        |f: fn(&ConsentRow) -> Option<&str>| consents.iter().map(|c| f(c)).collect::<Vec<_>>();
    let ids: Vec<Uuid> = sqlx::query_scalar(SQL)
        .bind(consents.iter().map(|c| c.id).collect::<Vec<_>>())
        .bind(consents.iter().map(|c| c.customer_id).collect::<Vec<_>>())
        .bind(text(|c| Some(c.purpose.as_str())))
        .bind(text(|c| Some(c.channel.as_str())))
        .bind(text(|c| Some(c.action.as_str())))
        .bind(text(|c| c.notice_id.as_deref()))
        .bind(text(|c| c.notice_version.as_deref()))
        .bind(text(|c| Some(c.method.as_str())))
        .bind(text(|c| c.source_channel.as_deref()))
        .bind(text(|c| Some(c.actor_sub.as_str())))
        .bind(text(|c| Some(c.actor_role.as_str())))
        .bind(consents.iter().map(|c| c.at).collect::<Vec<_>>())
        .bind(consents.iter().map(|c| c.expires_at).collect::<Vec<_>>())
        .bind(text(|c| Some(c.status.as_str())))
        .bind(consents.iter().map(|c| c.confirms).collect::<Vec<_>>())
        .bind(text(|c| c.review.as_deref()))
        .fetch_all(&mut *tx)
        .await?;
    Ok(ids.into_iter().collect())
}
