//! The consent ledger: append-only rows, read per customer in order.

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

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
}

const COLUMNS: &str =
    "id, customer_id, purpose, channel, action, notice_id, notice_version, method, \
                       source_channel, actor_sub, actor_role, at, expires_at";

/// Appends one event.
pub async fn insert(db: &Db, c: &ConsentRow) -> StoreResult<()> {
    let sql = format!("INSERT INTO consents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)");
    on_db!(db, pool => sqlx::query(&sql)
        .bind(c.id)
        .bind(c.customer_id)
        .bind(&c.purpose)
        .bind(&c.channel)
        .bind(&c.action)
        .bind(&c.notice_id)
        .bind(&c.notice_version)
        .bind(&c.method)
        .bind(&c.source_channel)
        .bind(&c.actor_sub)
        .bind(&c.actor_role)
        .bind(c.at)
        .bind(c.expires_at)
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// A customer's events, oldest first (ids are UUIDv7, so they break ties in order).
pub async fn for_customer(db: &Db, customer_id: Uuid) -> StoreResult<Vec<ConsentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM consents WHERE customer_id = $1 ORDER BY at, id");
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(&sql).bind(customer_id).fetch_all(pool).await?;
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
            });
        }
        out
    });
    Ok(rows)
}
