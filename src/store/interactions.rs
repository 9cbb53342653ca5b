//! Interactions as ciphertext rows, and the open contact requests past due.

use sqlx::Row;
use uuid::Uuid;

use super::{customers::wrapped, keys::WrappedDataKey, on_db, Db, Micros, StoreResult};

/// An interaction to insert; the body is already sealed. It is written as
/// an [`super::audit::Effect`], in its audit entry's transaction.
#[derive(Debug, Clone)]
pub struct NewInteraction {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub channel: String,
    pub kind: String,
    pub body: Vec<u8>,
    pub created_at: Micros,
    pub due_at: Option<Micros>,
    /// Contact points last active before this are past their retention: gone,
    /// so the interaction does not bring them back.
    pub contacts_live_after: Micros,
}

/// An interaction as stored, with the wrapped data key of its channel.
#[derive(Debug)]
pub struct InteractionRow {
    pub id: Uuid,
    pub channel: String,
    pub kind: String,
    pub body: Vec<u8>,
    pub created_at: Micros,
    pub due_at: Option<Micros>,
    pub resolved_at: Option<Micros>,
    pub key: Option<WrappedDataKey>,
}

/// What a resolve needs to know before it writes: no body.
#[derive(Debug)]
pub struct InteractionMeta {
    pub channel: String,
    pub kind: String,
    pub resolved_at: Option<Micros>,
}

/// An open contact request past its due date: no body.
#[derive(Debug)]
pub struct OverdueRow {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub channel: String,
    pub kind: String,
    pub created_at: Micros,
    pub due_at: Micros,
}

/// Inserts an interaction if its customer is live (true if it did).
pub(super) const INSERT_IF_LIVE: &str =
    "INSERT INTO interactions (id, customer_id, channel, kind, body, created_at, due_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7 \
     WHERE EXISTS (SELECT 1 FROM customers WHERE id = $2 AND erased_at IS NULL)";

/// After an insert, marks the customer's live contact points of the
/// interaction's channel active: the customer was in touch on that channel,
/// so their `contact_retention` starts again. (The unary `+` keeps SQLite's
/// planner off the retention index, whose range would scan every contact
/// point of the channel, and on the customer's own few rows.)
pub(super) const TOUCH_CONTACTS: &str = "UPDATE contacts SET last_activity_at = $3 \
     WHERE customer_id = $1 AND channel = $2 AND +last_activity_at < $3 AND +last_activity_at > $4";

/// A customer's interactions with their channels' data keys, oldest first,
/// in one query.
pub async fn for_customer(db: &Db, customer_id: Uuid) -> StoreResult<Vec<InteractionRow>> {
    const SQL: &str =
        "SELECT i.id, i.channel, i.kind, i.body, i.created_at, i.due_at, i.resolved_at, \
                dk.key_version, dk.wrapped \
         FROM interactions i \
         LEFT JOIN data_keys dk ON dk.customer_id = i.customer_id AND dk.channel = i.channel \
         WHERE i.customer_id = $1 ORDER BY i.id";
    let rows = match db {
        // Up to thousands of rows (exports): on sqlx each row would cross
        // threads; the direct reader steps through them in place.
        Db::Sqlite(_, reader) => reader
            .read(|tx| {
                let mut stmt = tx.prepare_cached(SQL)?;
                let rows = stmt.query_map(rusqlite::named_params! {"$1": customer_id}, |r| {
                    Ok((
                        InteractionRow {
                            id: r.get(0)?,
                            channel: r.get(1)?,
                            kind: r.get(2)?,
                            body: r.get(3)?,
                            created_at: r.get(4)?,
                            due_at: r.get(5)?,
                            resolved_at: r.get(6)?,
                            key: None,
                        },
                        r.get::<_, Option<i64>>(7)?,
                        r.get::<_, Option<Vec<u8>>>(8)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?
            .into_iter()
            .map(|(mut row, v, w)| {
                row.key = wrapped(&row.channel, v, w)?;
                Ok(row)
            })
            .collect::<StoreResult<Vec<_>>>()?,
        Db::Postgres(pool) => {
            let rows = sqlx::query(SQL).bind(customer_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let channel: String = r.try_get(1)?;
                let key = wrapped(&channel, r.try_get(7)?, r.try_get(8)?)?;
                out.push(InteractionRow {
                    id: r.try_get(0)?,
                    channel,
                    kind: r.try_get(2)?,
                    body: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    due_at: r.try_get(5)?,
                    resolved_at: r.try_get(6)?,
                    key,
                });
            }
            out
        }
    };
    Ok(rows)
}

/// Channel, kind and state of one of a customer's interactions.
pub async fn meta(db: &Db, customer_id: Uuid, id: Uuid) -> StoreResult<Option<InteractionMeta>> {
    const SQL: &str =
        "SELECT channel, kind, resolved_at FROM interactions WHERE id = $1 AND customer_id = $2";
    let row = on_db!(db, pool => match sqlx::query(SQL).bind(id).bind(customer_id).fetch_optional(pool).await? {
        Some(r) => Some(InteractionMeta { channel: r.try_get(0)?, kind: r.try_get(1)?, resolved_at: r.try_get(2)? }),
        None => None,
    });
    Ok(row)
}

/// Marks an interaction resolved at `now`; resolving twice keeps the first time.
/// False if the interaction does not exist.
pub async fn resolve(db: &Db, customer_id: Uuid, id: Uuid, now: Micros) -> StoreResult<bool> {
    const SQL: &str = "UPDATE interactions SET resolved_at = COALESCE(resolved_at, $3) \
                       WHERE id = $1 AND customer_id = $2";
    let done = on_db!(db, pool => sqlx::query(SQL).bind(id).bind(customer_id).bind(now).execute(pool).await?.rows_affected());
    Ok(done == 1)
}

/// Open contact requests of live customers whose due date is before `now`,
/// most overdue first; at most `limit`.
pub async fn overdue(db: &Db, now: Micros, limit: i64) -> StoreResult<Vec<OverdueRow>> {
    const SQL: &str = "SELECT i.id, i.customer_id, i.channel, i.kind, i.created_at, i.due_at \
         FROM interactions i JOIN customers c ON c.id = i.customer_id \
         WHERE i.resolved_at IS NULL AND i.kind = 'contact_request' AND i.due_at IS NOT NULL \
           AND i.due_at < $1 AND c.erased_at IS NULL \
         ORDER BY i.due_at, i.id LIMIT $2";
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(SQL).bind(now).bind(limit).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(OverdueRow {
                id: r.try_get(0)?,
                customer_id: r.try_get(1)?,
                channel: r.try_get(2)?,
                kind: r.try_get(3)?,
                created_at: r.try_get(4)?,
                due_at: r.try_get(5)?,
            });
        }
        out
    });
    Ok(rows)
}
