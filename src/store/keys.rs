//! Wrapped channel keys and data keys. Only ciphertext of keys passes here;
//! wrapping and unwrapping happen in [`crate::vault::keyring`].

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

/// A channel key version as stored: wrapped by the root key.
#[derive(Debug, Clone)]
pub struct WrappedChannelKey {
    pub channel: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
    pub created_at: Micros,
}

/// A data key as stored: wrapped by the channel key of `key_version`.
#[derive(Debug, Clone)]
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
/// (another process may have won the race; the caller then reloads).
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

/// The data key of one customer and key domain, if it exists.
pub async fn data_key(
    db: &Db,
    customer_id: Uuid,
    channel: &str,
) -> StoreResult<Option<WrappedDataKey>> {
    const SQL: &str =
        "SELECT key_version, wrapped FROM data_keys WHERE customer_id = $1 AND channel = $2";
    let row = on_db!(db, pool => {
        match sqlx::query(SQL).bind(customer_id).bind(channel).fetch_optional(pool).await? {
            Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)),
            None => None,
        }
    });
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
        .await?
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
