//! Customers and their contact points, as ciphertext rows.

use sqlx::Row;
use uuid::Uuid;

use super::{
    consents::ConsentFact, keys::WrappedDataKey, on_db, Db, Micros, StoreError, StoreResult,
};

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
#[derive(Debug)]
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
#[derive(Debug)]
pub struct ContactRow {
    pub id: Uuid,
    pub channel: String,
    pub value: Vec<u8>,
    pub label: Option<Vec<u8>>,
    pub created_at: Micros,
    pub last_activity_at: Micros,
    pub key: Option<WrappedDataKey>,
}

pub(super) fn wrapped(
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

/// `($1, …, $n), ($n+1, …)`: `rows` groups, each from `group(first_param)`.
fn value_groups(rows: usize, per_row: usize, group: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|r| group(r * per_row + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts many customers in one transaction (bulk loads, benchmarks), with
/// multi-row statements.
pub async fn create_many<'a, 'c: 'a>(
    db: &Db,
    items: impl IntoIterator<Item = (&'a NewCustomer<'c>, &'a [WrappedDataKey], &'a [NewContact])>,
) -> StoreResult<()> {
    let items: Vec<_> = items.into_iter().collect();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO customers (id, display_name, external_ref, preferred_channel, created_at, updated_at) VALUES {}",
                value_groups(chunk.len(), 5, |p| format!("(${p}, ${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 4))
            );
            let mut q = sqlx::query(&sql);
            for (c, _, _) in chunk {
                q = q.bind(c.id).bind(c.display_name).bind(c.external_ref).bind(c.preferred_channel).bind(c.now);
            }
            q.execute(&mut *tx).await?;

            let keys: Vec<(&NewCustomer<'_>, &WrappedDataKey)> =
                chunk.iter().flat_map(|(c, ks, _)| ks.iter().map(move |k| (*c, k))).collect();
            if !keys.is_empty() {
                let sql = format!(
                    "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) VALUES {}",
                    value_groups(keys.len(), 5, |p| format!("(${p}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4))
                );
                let mut q = sqlx::query(&sql);
                for (c, k) in &keys {
                    q = q.bind(c.id).bind(&k.channel).bind(i64::from(k.key_version)).bind(&k.wrapped).bind(c.now);
                }
                q.execute(&mut *tx).await.map_err(StoreError::from_data_key_insert)?;
            }

            let contacts: Vec<&NewContact> = chunk.iter().flat_map(|(_, _, cs)| cs.iter()).collect();
            if !contacts.is_empty() {
                let sql = format!(
                    "INSERT INTO contacts (id, customer_id, channel, blind_index, value, label, created_at, last_activity_at) VALUES {}",
                    value_groups(contacts.len(), 7, |p| format!("(${p}, ${}, ${}, ${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 6))
                );
                let mut q = sqlx::query(&sql);
                for c in &contacts {
                    q = q.bind(c.id).bind(c.customer_id).bind(&c.channel).bind(&c.blind_index[..]).bind(&c.value).bind(&c.label).bind(c.now);
                }
                q.execute(&mut *tx).await.map_err(|e| StoreError::from_unique(e, CONTACT_UNIQUE))?;
            }
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Adds one contact point if its customer is live and does not hold the same
/// value on the channel yet; applied as an [`super::audit::Effect`] in its
/// audit entry's transaction, so an add and a duplicate cost the same commit.
pub(super) const INSERT_CONTACT_IF_NEW: &str =
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

/// A customer as read for a request: the row, its contact points and the
/// consent facts that decide which of them may be shown.
#[derive(Debug)]
pub struct Profile {
    pub customer: CustomerRow,
    pub contacts: Vec<ContactRow>,
    pub consents: Vec<ConsentFact>,
}

/// The customer, all contact points with their wrapped keys, and the consent
/// facts (the read hot path). One statement for the rows; on SQLite the facts
/// come from a second statement in the same read transaction, on PostgreSQL
/// from a subquery column of the same statement: one round trip either way.
pub async fn profile(db: &Db, id: Uuid) -> StoreResult<Option<Profile>> {
    const SQL: &str = "SELECT c.display_name, c.external_ref, c.preferred_channel, c.created_at, c.updated_at, c.erased_at, \
                pk.key_version, pk.wrapped, \
                ct.id, ct.channel, ct.value, ct.label, ct.created_at, ct.last_activity_at, dk.key_version, dk.wrapped";
    const FROM: &str = " FROM customers c \
         LEFT JOIN data_keys pk ON pk.customer_id = c.id AND pk.channel = $2 \
         LEFT JOIN contacts ct ON ct.customer_id = c.id \
         LEFT JOIN data_keys dk ON dk.customer_id = c.id AND dk.channel = ct.channel \
         WHERE c.id = $1 ORDER BY ct.created_at, ct.id";
    let domain = crate::vault::PROFILE_DOMAIN;
    let (rows, consents): (Vec<ProfileRaw>, Vec<ConsentFact>) = match db {
        Db::Sqlite(_, reader) => reader.read(|tx| {
            let mut stmt = tx.prepare_cached(&[SQL, FROM].concat())?;
            let rows = stmt
                .query_map(rusqlite::named_params! {"$1": id, "$2": domain}, |r| {
                    let head = (
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    );
                    let contact = match r.get::<_, Option<Uuid>>(8)? {
                        Some(cid) => Some((
                            cid,
                            r.get(9)?,
                            r.get(10)?,
                            r.get(11)?,
                            r.get(12)?,
                            r.get(13)?,
                            r.get(14)?,
                            r.get(15)?,
                        )),
                        None => None,
                    };
                    Ok((head, contact))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let consents = if rows.is_empty() {
                Vec::new()
            } else {
                super::consents::facts_sqlite(tx, id)?
            };
            Ok((rows, consents))
        })?,
        Db::Postgres(pool) => {
            let sql = [SQL, ", ", &super::consents::facts_json_pg("$1"), FROM].concat();
            let rows = sqlx::query(&sql)
                .bind(id)
                .bind(domain)
                .fetch_all(pool)
                .await?;
            let consents = match rows.first() {
                Some(r) => super::consents::facts_from_json(r.try_get::<Option<&str>, _>(16)?)?,
                None => Vec::new(),
            };
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let head = (
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                    r.try_get(7)?,
                );
                let contact = match r.try_get::<Option<Uuid>, _>(8)? {
                    Some(cid) => Some((
                        cid,
                        r.try_get(9)?,
                        r.try_get(10)?,
                        r.try_get(11)?,
                        r.try_get(12)?,
                        r.try_get(13)?,
                        r.try_get(14)?,
                        r.try_get(15)?,
                    )),
                    None => None,
                };
                out.push((head, contact));
            }
            (out, consents)
        }
    };
    let mut iter = rows.into_iter();
    let Some((head, first)) = iter.next() else {
        return Ok(None);
    };
    let (
        display_name,
        external_ref,
        preferred_channel,
        created_at,
        updated_at,
        erased_at,
        pk_version,
        pk_wrapped,
    ) = head;
    let customer = CustomerRow {
        id,
        display_name,
        external_ref,
        preferred_channel,
        created_at,
        updated_at,
        erased_at,
        profile_key: wrapped(domain, pk_version, pk_wrapped)?,
    };
    let mut contacts = Vec::new();
    for raw in std::iter::once(first).chain(iter.map(|(_, c)| c)).flatten() {
        let (cid, channel, value, label, created_at, last_activity_at, v, w) = raw;
        let key = wrapped(&channel, v, w)?;
        contacts.push(ContactRow {
            id: cid,
            channel,
            value,
            label,
            created_at,
            last_activity_at,
            key,
        });
    }
    Ok(Some(Profile {
        customer,
        contacts,
        consents,
    }))
}

/// One row of the profile statement: the customer's columns, then one
/// contact point's (none if the customer has no contact points).
type ProfileRaw = (
    (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<Vec<u8>>,
    ),
    Option<(
        Uuid,
        String,
        Vec<u8>,
        Option<Vec<u8>>,
        i64,
        i64,
        Option<i64>,
        Option<Vec<u8>>,
    )>,
);

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

/// A lookup hit: which customer holds the value, on which contact point,
/// and the customer's consent facts that decide whether it may be shown.
#[derive(Debug, Clone)]
pub struct LookupHit {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
    pub last_activity_at: Micros,
    pub consents: Vec<ConsentFact>,
}

/// Contact points whose blind index matches, on live customers; at most
/// `limit`. One round trip, as [`profile`].
pub async fn lookup(
    db: &Db,
    channel: &str,
    blind_index: &[u8; 32],
    limit: i64,
) -> StoreResult<Vec<LookupHit>> {
    const SQL: &str = "SELECT ct.customer_id, ct.id, ct.last_activity_at";
    const FROM: &str = " FROM contacts ct JOIN customers c ON c.id = ct.customer_id \
                       WHERE ct.channel = $1 AND ct.blind_index = $2 AND c.erased_at IS NULL \
                       ORDER BY ct.customer_id, ct.id LIMIT $3";
    let hits = match db {
        Db::Sqlite(_, reader) => {
            reader.read(|tx| {
                let mut stmt = tx.prepare_cached(&[SQL, FROM].concat())?;
                let rows = stmt
                .query_map(
                    rusqlite::named_params! {"$1": channel, "$2": &blind_index[..], "$3": limit},
                    |r| Ok((r.get::<_, Uuid>(0)?, r.get::<_, Uuid>(1)?, r.get::<_, i64>(2)?)),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut out = Vec::with_capacity(rows.len());
                for (customer_id, contact_id, last_activity_at) in rows {
                    let consents = super::consents::facts_sqlite(tx, customer_id)?;
                    out.push(LookupHit {
                        customer_id,
                        contact_id,
                        last_activity_at,
                        consents,
                    });
                }
                Ok(out)
            })?
        }
        Db::Postgres(pool) => {
            let sql = [
                SQL,
                ", ",
                &super::consents::facts_json_pg("ct.customer_id"),
                FROM,
            ]
            .concat();
            let rows = sqlx::query(&sql)
                .bind(channel)
                .bind(&blind_index[..])
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(LookupHit {
                    customer_id: r.try_get(0)?,
                    contact_id: r.try_get(1)?,
                    last_activity_at: r.try_get(2)?,
                    consents: super::consents::facts_from_json(r.try_get::<Option<&str>, _>(3)?)?,
                });
            }
            out
        }
    };
    Ok(hits)
}
