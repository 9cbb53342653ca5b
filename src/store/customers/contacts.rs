//! Contact points of a customer: the checks and removals the API makes, and
//! the insert that runs as an audit entry's effect (see
//! [`crate::store::audit::Effect`]), written once per backend side by side.

use sqlx::Row;
use uuid::Uuid;

use super::NewContact;
use crate::store::{on_db, Db, StoreResult};

/// Adds one contact point if its customer is live and does not hold the same
/// value on the channel yet; applied as an [`crate::store::audit::Effect`] in
/// its audit entry's transaction, so an add and a duplicate cost the same commit.
const INSERT_CONTACT_IF_NEW: &str =
    "INSERT INTO contacts (id, customer_id, channel, blind_index, value, label, created_at, last_activity_at) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
     WHERE EXISTS (SELECT 1 FROM customers WHERE id = $2 AND erased_at IS NULL) \
     ON CONFLICT (customer_id, channel, blind_index) DO NOTHING";

/// Whether the customer already holds the value with this blind index on
/// the channel.
pub async fn has_contact_value(
    db: &Db,
    customer_id: Uuid,
    channel: &str,
    blind_index: &[u8; 32],
) -> StoreResult<bool> {
    let sql = "SELECT COUNT(*) FROM contacts WHERE customer_id = $1 AND channel = $2 AND blind_index = $3";
    let n: i64 = on_db!(db, pool => sqlx::query_scalar(sql)
        .bind(customer_id)
        .bind(channel)
        .bind(&blind_index[..])
        .fetch_one(pool)
        .await?);
    Ok(n > 0)
}

/// Removes a contact point; returns its channel if it existed on that customer.
pub async fn remove_contact(
    db: &Db,
    customer_id: Uuid,
    contact_id: Uuid,
) -> StoreResult<Option<String>> {
    channel_of(
        db,
        "DELETE FROM contacts WHERE id = $1 AND customer_id = $2 RETURNING channel",
        customer_id,
        contact_id,
    )
    .await
}

/// The channel of one of a customer's contact points, if it exists.
pub async fn contact_channel(
    db: &Db,
    customer_id: Uuid,
    contact_id: Uuid,
) -> StoreResult<Option<String>> {
    channel_of(
        db,
        "SELECT channel FROM contacts WHERE id = $1 AND customer_id = $2",
        customer_id,
        contact_id,
    )
    .await
}

/// Runs `sql` (binding contact id, customer id) and returns the `channel` it yields.
async fn channel_of(
    db: &Db,
    sql: &str,
    customer_id: Uuid,
    contact_id: Uuid,
) -> StoreResult<Option<String>> {
    let channel = on_db!(db, pool => match sqlx::query(sql).bind(contact_id).bind(customer_id).fetch_optional(pool).await? {
        Some(r) => Some(r.try_get::<String, _>(0)?),
        None => None,
    });
    Ok(channel)
}

/// [`INSERT_CONTACT_IF_NEW`] on the audit writer's SQLite transaction;
/// whether the contact point was added.
pub(in crate::store) fn add_contact_if_new_sqlite(
    tx: &rusqlite::Transaction<'_>,
    c: &NewContact,
) -> StoreResult<bool> {
    let n = tx
        .prepare_cached(INSERT_CONTACT_IF_NEW)?
        .execute(rusqlite::named_params! {
            "$1": c.id, "$2": c.customer_id, "$3": c.channel, "$4": &c.blind_index[..],
            "$5": c.value, "$6": c.label, "$7": c.now,
        })?;
    Ok(n == 1)
}

/// [`INSERT_CONTACT_IF_NEW`] on the audit writer's PostgreSQL transaction;
/// whether the contact point was added. One at a time: adds are rare beside
/// consents and interactions, and each must report whether it was new.
pub(in crate::store) async fn add_contact_if_new_postgres(
    tx: &mut sqlx::PgConnection,
    c: &NewContact,
) -> StoreResult<bool> {
    let n = sqlx::query(INSERT_CONTACT_IF_NEW)
        .bind(c.id)
        .bind(c.customer_id)
        .bind(&c.channel)
        .bind(&c.blind_index[..])
        .bind(&c.value)
        .bind(&c.label)
        .bind(c.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}
