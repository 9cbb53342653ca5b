//! Customers and their contact points, as ciphertext rows: the `customers`
//! and `contacts` tables (and the data keys a new customer brings along).
//!
//! The writes and the tombstone check are here; the contact-point writes in
//! [`contacts`] (one of them runs inside an audit entry's transaction), and the
//! read hot paths (profile, lookup) in [`read`].

mod contacts;
pub mod projection;
mod read;

pub(in crate::store) use contacts::{add_contact_if_new_postgres, add_contact_if_new_sqlite};
pub use contacts::{contact_channel, has_contact_value, remove_contact};
pub use read::{lookup, profile, profile_read, LookupHit, Profile};

use sqlx::Row;
use uuid::Uuid;

use super::{keys::WrappedDataKey, on_db, sql::Sql, Db, Micros, StoreError, StoreResult};

/// Name of the unique index that makes one normalised value appear at most
/// once per customer and channel; a violation becomes 409 `contact_exists`.
pub const CONTACT_UNIQUE: &str = "contacts_unique_value";

/// A customer row to insert; the optional fields are already sealed.
pub struct NewCustomer<'a> {
    pub id: Uuid,
    pub display_name: Option<&'a [u8]>,
    pub external_ref: Option<&'a [u8]>,
    pub preferred_channel: Option<&'a str>,
    pub now: Micros,
}

/// A contact row to insert: sealed value and label, and the blind index
/// (ciphertext and a keyed hash only, so `Debug` shows no plaintext).
#[derive(Debug, Clone)]
pub struct NewContact {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub channel: String,
    pub blind_index: [u8; 32],
    pub value: Vec<u8>,
    pub label: Option<Vec<u8>>,
    pub now: Micros,
}

/// A customer as stored, with the wrapped key of its profile fields.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CustomerRow {
    pub id: Uuid,
    pub display_name: Option<Vec<u8>>,
    pub external_ref: Option<Vec<u8>>,
    pub preferred_channel: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub erased_at: Option<Micros>,
    pub profile_key: Option<WrappedDataKey>,
}

/// A contact point as stored, with the wrapped data key of its channel.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ContactRow {
    pub id: Uuid,
    pub channel: String,
    pub value: Vec<u8>,
    pub label: Option<Vec<u8>>,
    pub created_at: Micros,
    pub last_activity_at: Micros,
    pub key: Option<WrappedDataKey>,
}

pub(in crate::store) fn wrapped(
    channel: &str,
    version: Option<i64>,
    wrapped: Option<Vec<u8>>,
) -> StoreResult<Option<WrappedDataKey>> {
    match (version, wrapped) {
        (Some(v), Some(w)) => Ok(Some(WrappedDataKey {
            channel: channel.to_owned(),
            key_version: u32::try_from(v)
                .map_err(|_| StoreError::Corrupt("key version out of range"))?,
            wrapped: w,
        })),
        _ => Ok(None),
    }
}

/// Inserts a customer with its data keys and contacts in one transaction.
pub async fn create(
    db: &Db,
    customer: &NewCustomer<'_>,
    data_keys: &[WrappedDataKey],
    contacts: &[NewContact],
) -> StoreResult<()> {
    create_many(db, std::iter::once((customer, data_keys, contacts))).await
}

/// Customers per multi-row statement: each statement is one round trip to
/// the database worker, so a bulk load makes a few hundred, not millions.
const ROWS_PER_STATEMENT: usize = 100;

/// The customers, data keys and contact points of one chunk of a bulk load,
/// as multi-row inserts (no statement when there is nothing to insert).
type ChunkInserts<'a> = (Sql<'a>, Option<Sql<'a>>, Option<Sql<'a>>);

fn chunk_inserts<'a, 'c: 'a>(
    chunk: &[(&'a NewCustomer<'c>, &'a [WrappedDataKey], &'a [NewContact])],
) -> ChunkInserts<'a> {
    let mut customers = Sql::new(
        "INSERT INTO customers (id, display_name, external_ref, preferred_channel, created_at, updated_at) VALUES ",
    );
    customers.values(chunk.iter(), |t, (c, _, _)| {
        t.bind(c.id)
            .bind(c.display_name)
            .bind(c.external_ref)
            .bind(c.preferred_channel)
            .bind(c.now)
            .bind(c.now);
    });
    let keys = chunk
        .iter()
        .flat_map(|(c, ks, _)| ks.iter().map(move |k| (*c, k)));
    let keys = (chunk.iter().any(|(_, ks, _)| !ks.is_empty())).then(|| {
        let mut sql = Sql::new(
            "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) VALUES ",
        );
        sql.values(keys, |t, (c, k)| {
            t.bind(c.id)
                .bind(k.channel.as_str())
                .bind(i64::from(k.key_version))
                .bind(k.wrapped.as_slice())
                .bind(c.now);
        });
        sql
    });
    let contacts = (chunk.iter().any(|(_, _, cs)| !cs.is_empty())).then(|| {
        let mut sql = Sql::new(
            "INSERT INTO contacts (id, customer_id, channel, blind_index, value, label, created_at, last_activity_at) VALUES ",
        );
        sql.values(chunk.iter().flat_map(|(_, _, cs)| cs.iter()), |t, c| {
            t.bind(c.id)
                .bind(c.customer_id)
                .bind(c.channel.as_str())
                .bind(&c.blind_index[..])
                .bind(c.value.as_slice())
                .bind(c.label.as_deref())
                .bind(c.now)
                .bind(c.now);
        });
        sql
    });
    (customers, keys, contacts)
}

/// Inserts many customers in one transaction (bulk loads, benchmarks), with
/// multi-row statements.
pub async fn create_many<'a, 'c: 'a>(
    db: &Db,
    items: impl IntoIterator<Item = (&'a NewCustomer<'c>, &'a [WrappedDataKey], &'a [NewContact])>,
) -> StoreResult<()> {
    let items: Vec<_> = items.into_iter().collect();
    let statements: Vec<ChunkInserts<'_>> = items
        .chunks(ROWS_PER_STATEMENT)
        .map(chunk_inserts)
        .collect();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        for (customers, keys, contacts) in &statements {
            customers.query().execute(&mut *tx).await?;
            if let Some(keys) = keys {
                keys.query().execute(&mut *tx).await.map_err(StoreError::from_data_key_insert)?;
            }
            if let Some(contacts) = contacts {
                contacts
                    .query()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_unique(e, CONTACT_UNIQUE))?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Whether a customer exists: `None` if never, `Some(erased_at)` otherwise.
pub async fn state(db: &Db, id: Uuid) -> StoreResult<Option<Option<Micros>>> {
    const SQL: &str = "SELECT erased_at FROM customers WHERE id = $1";
    let row = match db {
        // Checked before every write: the direct reader, as the hot reads.
        Db::Sqlite(_, reader) => reader.read(|tx| {
            use rusqlite::OptionalExtension;
            tx.prepare_cached(SQL)?
                .query_row(rusqlite::named_params! {"$1": id}, |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .optional()
        })?,
        Db::Postgres(pool) => match sqlx::query(SQL).bind(id).fetch_optional(pool).await? {
            Some(r) => Some(r.try_get::<Option<i64>, _>(0)?),
            None => None,
        },
    };
    Ok(row)
}

/// Field changes of a PATCH: `None` leaves a field alone, `Some(None)` clears it.
pub struct CustomerPatch<'a> {
    pub display_name: Option<Option<&'a [u8]>>,
    pub preferred_channel: Option<Option<&'a str>>,
    pub now: Micros,
}

/// Applies a patch to a live (not erased) customer; false if there is none.
pub async fn update(db: &Db, id: Uuid, patch: &CustomerPatch<'_>) -> StoreResult<bool> {
    const SQL: &str = "UPDATE customers SET \
           display_name = CASE WHEN $2 THEN $3 ELSE display_name END, \
           preferred_channel = CASE WHEN $4 THEN $5 ELSE preferred_channel END, \
           updated_at = $6 \
         WHERE id = $1 AND erased_at IS NULL";
    let done = on_db!(db, pool => sqlx::query(SQL)
        .bind(id)
        .bind(patch.display_name.is_some())
        .bind(patch.display_name.flatten())
        .bind(patch.preferred_channel.is_some())
        .bind(patch.preferred_channel.flatten())
        .bind(patch.now)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}
