//! Wrapped channel keys and data keys. Only ciphertext of keys passes here;
//! wrapping and unwrapping happen in [`crate::vault::keyring`] and
//! [`crate::vault::rotation`].

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, sql::Sql, Db, Micros, StoreError, StoreResult};

/// The foreign key from `data_keys (channel, key_version)` to `channel_keys`
/// (migration 0006): no data key can name a retired channel-key version.
pub const CHANNEL_KEY_FK: &str = "data_keys_channel_key";

/// A channel key version as stored: wrapped by the root key.
#[derive(Debug, Clone)]
pub struct WrappedChannelKey {
    pub channel: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: Micros,
}

/// A data key as stored: wrapped by the channel key of `key_version`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WrappedDataKey {
    pub channel: String,
    pub key_version: u32,
    pub wrapped: Vec<u8>,
}

fn version_of(v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| super::StoreError::Corrupt("key version out of range"))
}

/// Every channel key version, oldest first.
pub async fn channel_keys(db: &Db) -> StoreResult<Vec<WrappedChannelKey>> {
    const SQL: &str =
        "SELECT channel, version, wrapped, created_at FROM channel_keys ORDER BY channel, version";
    let rows = on_db!(db, pool => {
        sqlx::query(SQL)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?, r.try_get::<Vec<u8>, _>(2)?, r.try_get::<i64, _>(3)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    rows.into_iter()
        .map(|(channel, version, wrapped, created_at)| {
            Ok(WrappedChannelKey {
                channel,
                version: version_of(version)?,
                wrapped,
                created_at,
            })
        })
        .collect()
}

/// Inserts a channel key version unless one with that number exists already
/// (another process may have won the race; the caller then reloads). Only for
/// the first key of a database, which has nothing to check against; every
/// later key goes through [`insert_channel_key_checked`].
pub async fn insert_channel_key(db: &Db, key: &WrappedChannelKey) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO channel_keys (channel, version, wrapped, created_at) \
                       VALUES ($1, $2, $3, $4) ON CONFLICT (channel, version) DO NOTHING";
    let done = on_db!(db, pool => sqlx::query(SQL)
        .bind(&key.channel)
        .bind(i64::from(key.version))
        .bind(&key.wrapped)
        .bind(key.created_at)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Inserts a channel key version only while the stored wrapping of the
/// `check_domain` v1 key is still `check_wrapped` (the bytes this process
/// loaded under its root key). A root rotation rewraps that key, so a process
/// still holding the old root inserts nothing, instead of adding a key that the
/// new root cannot open; it reloads its root and tries again. Returns whether
/// the row was inserted.
pub async fn insert_channel_key_checked(
    db: &Db,
    key: &WrappedChannelKey,
    check_domain: &str,
    check_wrapped: &[u8],
) -> StoreResult<bool> {
    // A root rotation holds a lock on channel_keys until it commits (see
    // `rewrap_channel_keys`), so this check cannot read a wrapping that is
    // being replaced.
    const SQL: &str = "INSERT INTO channel_keys (channel, version, wrapped, created_at) \
                       SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM channel_keys \
                       WHERE channel = $5 AND version = 1 AND wrapped = $6) \
                       ON CONFLICT (channel, version) DO NOTHING";
    let done = on_db!(db, pool => sqlx::query(SQL)
        .bind(&key.channel)
        .bind(i64::from(key.version))
        .bind(&key.wrapped)
        .bind(key.created_at)
        .bind(check_domain)
        .bind(check_wrapped)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Replaces the wrapping of every channel key (all domains, all versions) in
/// one transaction: `rewrap` maps each stored key to its new wrapping, and
/// either every key is rewrapped or none is. The transaction holds off other
/// writers of `channel_keys` (SQLite `BEGIN IMMEDIATE`; PostgreSQL `SHARE ROW
/// EXCLUSIVE`, which still lets data-key inserts check their foreign key), so
/// no key is added or retired under the old root meanwhile. An error of
/// `rewrap` rolls everything back and is returned as the inner `Err`.
pub async fn rewrap_channel_keys<E>(
    db: &Db,
    mut rewrap: impl FnMut(&WrappedChannelKey) -> Result<Vec<u8>, E>,
) -> StoreResult<Result<usize, E>> {
    const SELECT: &str =
        "SELECT channel, version, wrapped, created_at FROM channel_keys ORDER BY channel, version";
    const UPDATE: &str = "UPDATE channel_keys SET wrapped = $1 WHERE channel = $2 AND version = $3";
    // The same body for both backends; only how the transaction starts differs.
    macro_rules! rewrap_in {
        ($tx:ident) => {{
            let rows = sqlx::query(SELECT).fetch_all(&mut *$tx).await?;
            let mut keys = Vec::with_capacity(rows.len());
            for r in rows {
                keys.push(WrappedChannelKey {
                    channel: r.try_get(0)?,
                    version: version_of(r.try_get(1)?)?,
                    wrapped: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                });
            }
            let mut rewrapped = Vec::with_capacity(keys.len());
            for k in &keys {
                match rewrap(k) {
                    Ok(w) => rewrapped.push(w),
                    // Dropping the transaction rolls it back.
                    Err(e) => return Ok(Err(e)),
                }
            }
            for (k, w) in keys.iter().zip(&rewrapped) {
                sqlx::query(UPDATE)
                    .bind(w)
                    .bind(&k.channel)
                    .bind(i64::from(k.version))
                    .execute(&mut *$tx)
                    .await?;
            }
            $tx.commit().await?;
            Ok(Ok(keys.len()))
        }};
    }
    match db {
        Db::Sqlite(pool, _) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            rewrap_in!(tx)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("LOCK TABLE channel_keys IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            rewrap_in!(tx)
        }
    }
}

/// Deletes channel key `version` of `channel` if no data key is wrapped under
/// it and it is not the newest version. Returns whether it was deleted; a
/// data key inserted under it concurrently makes the foreign key refuse the
/// delete, which is reported as `false` (the caller passes again).
pub async fn retire_channel_key(db: &Db, channel: &str, version: u32) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM channel_keys WHERE channel = $1 AND version = $2 \
                       AND version < (SELECT MAX(version) FROM channel_keys WHERE channel = $1) \
                       AND NOT EXISTS (SELECT 1 FROM data_keys WHERE channel = $1 AND key_version = $2)";
    let done = on_db!(db, pool => sqlx::query(SQL)
        .bind(channel)
        .bind(i64::from(version))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
    match done {
        Ok(n) => Ok(n == 1),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Up to `limit` data keys of `channel` wrapped under `version`, in customer
/// order after `after` (keyset pagination on `data_keys_by_version`):
/// `(customer_id, wrapped)`.
pub async fn data_keys_at_version(
    db: &Db,
    channel: &str,
    version: u32,
    after: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<(Uuid, Vec<u8>)>> {
    const FIRST: &str = "SELECT customer_id, wrapped FROM data_keys \
                         WHERE channel = $1 AND key_version = $2 ORDER BY customer_id LIMIT $3";
    const NEXT: &str = "SELECT customer_id, wrapped FROM data_keys \
                        WHERE channel = $1 AND key_version = $2 AND customer_id > $4 \
                        ORDER BY customer_id LIMIT $3";
    let rows = on_db!(db, pool => {
        let q = sqlx::query(if after.is_some() { NEXT } else { FIRST })
            .bind(channel)
            .bind(i64::from(version))
            .bind(limit);
        let q = match after {
            Some(id) => q.bind(id),
            None => q,
        };
        q.fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<Uuid, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

/// Moves data keys of `channel` from version `from` to `to` with their new
/// wrappings `(customer_id, wrapped)`, in one statement. A row no longer at
/// `from` (erased, or rewrapped by someone else) is left alone. Returns how
/// many rows moved.
pub async fn rewrap_data_keys(
    db: &Db,
    channel: &str,
    from: u32,
    to: u32,
    rows: &[(Uuid, Vec<u8>)],
) -> StoreResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    // `VALUES` names its columns column1, column2 on both backends.
    let mut sql = Sql::new("UPDATE data_keys SET key_version = ");
    sql.bind(i64::from(to))
        .push(", wrapped = v.column2 FROM (VALUES ")
        .values(rows, |t, (id, wrapped)| {
            t.bind(*id).bind(wrapped.as_slice());
        })
        .push(") AS v WHERE data_keys.customer_id = v.column1 AND data_keys.channel = ")
        .bind(channel)
        .push(" AND data_keys.key_version = ")
        .bind(i64::from(from));
    let done = on_db!(db, pool => sql
        .query()
        .execute(pool)
        .await
        .map_err(StoreError::from_data_key_insert)?
        .rows_affected());
    Ok(done)
}

/// The data key of one customer and key domain, if it exists.
pub async fn data_key(
    db: &Db,
    customer_id: Uuid,
    channel: &str,
) -> StoreResult<Option<WrappedDataKey>> {
    const SQL: &str =
        "SELECT key_version, wrapped FROM data_keys WHERE customer_id = $1 AND channel = $2";
    let row = match db {
        // Read on every write of a record: the direct reader, as the hot reads.
        Db::Sqlite(_, reader) => reader.read(|tx| {
            use rusqlite::OptionalExtension;
            tx.prepare_cached(SQL)?
                .query_row(
                    rusqlite::named_params! {"$1": customer_id, "$2": channel},
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .optional()
        })?,
        Db::Postgres(pool) => {
            match sqlx::query(SQL)
                .bind(customer_id)
                .bind(channel)
                .fetch_optional(pool)
                .await?
            {
                Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)),
                None => None,
            }
        }
    };
    row.map(|(v, wrapped)| {
        Ok(WrappedDataKey {
            channel: channel.to_owned(),
            key_version: version_of(v)?,
            wrapped,
        })
    })
    .transpose()
}

/// Inserts a data key unless the (customer, channel) pair has one already;
/// returns whether this call inserted it.
pub async fn insert_data_key(
    db: &Db,
    customer_id: Uuid,
    key: &WrappedDataKey,
    now: Micros,
) -> StoreResult<bool> {
    const SQL: &str =
        "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) \
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id, channel) DO NOTHING";
    let done = on_db!(db, pool => sqlx::query(SQL)
        .bind(customer_id)
        .bind(&key.channel)
        .bind(i64::from(key.key_version))
        .bind(&key.wrapped)
        .bind(now)
        .execute(pool)
        .await
        .map_err(StoreError::from_data_key_insert)?
        .rows_affected());
    Ok(done == 1)
}

/// Number of data keys wrapped under each (channel, version), for `keys status`.
pub async fn data_key_counts(db: &Db) -> StoreResult<Vec<(String, u32, i64)>> {
    const SQL: &str = "SELECT channel, key_version, COUNT(*) FROM data_keys \
                       GROUP BY channel, key_version ORDER BY channel, key_version";
    let rows = on_db!(db, pool => {
        sqlx::query(SQL)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?, r.try_get::<i64, _>(2)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    rows.into_iter()
        .map(|(c, v, n)| Ok((c, version_of(v)?, n)))
        .collect()
}
