//! The audit table: append and read. Chaining lives in [`crate::audit`].

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, Db, Micros, StoreError, StoreResult};

/// One stored audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Micros,
    pub actor_sub: String,
    pub actor_role: String,
    pub actor_client: Option<String>,
    pub action: String,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    pub request_id: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The last entry's seq and hash, if any.
pub async fn head(db: &Db) -> StoreResult<Option<(i64, Vec<u8>)>> {
    const SQL: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
    let row = on_db!(db, pool => match sqlx::query(SQL).fetch_optional(pool).await? {
        Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)),
        None => None,
    });
    Ok(row)
}

/// Inserts one entry. A primary-key conflict (another process appended the
/// same seq first) comes back as [`StoreError::Conflict`].
pub async fn insert(db: &Db, e: &AuditRow) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO audit_log (seq, at, actor_sub, actor_role, actor_client, action, customer_id, \
                       channel, purpose, decision, reason, request_id, detail, prev_hash, hash) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
    on_db!(db, pool => sqlx::query(SQL)
        .bind(e.seq)
        .bind(e.at)
        .bind(&e.actor_sub)
        .bind(&e.actor_role)
        .bind(&e.actor_client)
        .bind(&e.action)
        .bind(e.customer_id)
        .bind(&e.channel)
        .bind(&e.purpose)
        .bind(&e.decision)
        .bind(&e.reason)
        .bind(&e.request_id)
        .bind(&e.detail)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(pool)
        .await
        .map_err(|err| StoreError::from_unique(err, "audit_log_pkey"))
        .map(drop)?);
    Ok(())
}

/// Entries with `seq > after`, oldest first, at most `limit`.
pub async fn entries_after(db: &Db, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
    const SQL: &str = "SELECT seq, at, actor_sub, actor_role, actor_client, action, customer_id, channel, purpose, \
                       decision, reason, request_id, detail, prev_hash, hash FROM audit_log \
                       WHERE seq > $1 ORDER BY seq LIMIT $2";
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(SQL).bind(after).bind(limit).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(AuditRow {
                seq: r.try_get(0)?,
                at: r.try_get(1)?,
                actor_sub: r.try_get(2)?,
                actor_role: r.try_get(3)?,
                actor_client: r.try_get(4)?,
                action: r.try_get(5)?,
                customer_id: r.try_get(6)?,
                channel: r.try_get(7)?,
                purpose: r.try_get(8)?,
                decision: r.try_get(9)?,
                reason: r.try_get(10)?,
                request_id: r.try_get(11)?,
                detail: r.try_get(12)?,
                prev_hash: r.try_get(13)?,
                hash: r.try_get(14)?,
            });
        }
        out
    });
    Ok(rows)
}
