//! Interactions (`interactions`) as ciphertext rows, and the open contact
//! requests past due. A new interaction is written only as an audit entry's
//! effect; its insert for each backend is below, side by side.

use std::collections::{BTreeMap, HashSet};

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
const INSERT_IF_LIVE: &str =
    "INSERT INTO interactions (id, customer_id, channel, kind, body, created_at, due_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7 \
     WHERE EXISTS (SELECT 1 FROM customers WHERE id = $2 AND erased_at IS NULL)";

/// After an insert, marks the customer's live contact points of the
/// interaction's channel active: the customer was in touch on that channel,
/// so their `contact_retention` starts again. (The unary `+` keeps SQLite's
/// planner off the retention index, whose range would scan every contact
/// point of the channel, and on the customer's own few rows.)
const TOUCH_CONTACTS: &str = "UPDATE contacts SET last_activity_at = $3 \
     WHERE customer_id = $1 AND channel = $2 AND +last_activity_at < $3 AND +last_activity_at > $4";

/// Inserts an interaction if its customer is live, and touches the
/// customer's contact points on its channel, on the audit writer's SQLite
/// transaction; whether it was inserted.
pub(super) fn insert_if_live_sqlite(
    tx: &rusqlite::Transaction<'_>,
    i: &NewInteraction,
) -> StoreResult<bool> {
    let n = tx
        .prepare_cached(INSERT_IF_LIVE)?
        .execute(rusqlite::named_params! {
            "$1": i.id, "$2": i.customer_id, "$3": i.channel, "$4": i.kind,
            "$5": i.body, "$6": i.created_at, "$7": i.due_at,
        })?;
    if n == 1 {
        tx.prepare_cached(TOUCH_CONTACTS)?
            .execute(rusqlite::named_params! {
                "$1": i.customer_id, "$2": i.channel, "$3": i.created_at,
                "$4": i.contacts_live_after,
            })?;
    }
    Ok(n == 1)
}

/// [`INSERT_IF_LIVE`] for many interactions in one statement.
const INSERT_IF_LIVE_PG: &str = "INSERT INTO interactions (id, customer_id, channel, kind, body, created_at, due_at) \
     SELECT u.* FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::bigint[], $7::bigint[]) \
     AS u(id, customer_id, channel, kind, body, created_at, due_at) \
     WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = u.customer_id AND c.erased_at IS NULL) \
     RETURNING id";

/// [`TOUCH_CONTACTS`] for many (customer, channel) pairs in one statement.
const TOUCH_CONTACTS_PG: &str = "UPDATE contacts c SET last_activity_at = u.at \
     FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) AS u(customer_id, channel, at, live_after) \
     WHERE c.customer_id = u.customer_id AND c.channel = u.channel \
       AND c.last_activity_at < u.at AND c.last_activity_at > u.live_after";

/// Inserts the interactions whose customer is live, and touches their
/// customers' contact points, on the audit writer's PostgreSQL transaction:
/// two statements for the whole batch. The ids of those inserted.
pub(super) async fn insert_if_live_postgres(
    tx: &mut sqlx::PgConnection,
    interactions: &[&NewInteraction],
) -> StoreResult<HashSet<Uuid>> {
    if interactions.is_empty() {
        return Ok(HashSet::new());
    }
    let col =
        |f: fn(&NewInteraction) -> &str| interactions.iter().map(|i| f(i)).collect::<Vec<_>>();
    let ids: Vec<Uuid> = sqlx::query_scalar(INSERT_IF_LIVE_PG)
        .bind(interactions.iter().map(|i| i.id).collect::<Vec<_>>())
        .bind(
            interactions
                .iter()
                .map(|i| i.customer_id)
                .collect::<Vec<_>>(),
        )
        .bind(col(|i| &i.channel))
        .bind(col(|i| &i.kind))
        .bind(
            interactions
                .iter()
                .map(|i| i.body.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(
            interactions
                .iter()
                .map(|i| i.created_at)
                .collect::<Vec<_>>(),
        )
        .bind(interactions.iter().map(|i| i.due_at).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
    let inserted: HashSet<Uuid> = ids.into_iter().collect();
    // One touch per (customer, channel): the latest interaction's time.
    let mut touch = BTreeMap::new();
    for i in interactions.iter().filter(|i| inserted.contains(&i.id)) {
        let t = touch
            .entry((i.customer_id, i.channel.as_str()))
            .or_insert((i.created_at, i.contacts_live_after));
        *t = (t.0.max(i.created_at), t.1.max(i.contacts_live_after));
    }
    if !touch.is_empty() {
        sqlx::query(TOUCH_CONTACTS_PG)
            .bind(touch.keys().map(|k| k.0).collect::<Vec<_>>())
            .bind(touch.keys().map(|k| k.1).collect::<Vec<_>>())
            .bind(touch.values().map(|v| v.0).collect::<Vec<_>>())
            .bind(touch.values().map(|v| v.1).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    Ok(inserted)
}

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
