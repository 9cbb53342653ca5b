//! The `idempotency_keys` table: the first answer to a POST's
//! `Idempotency-Key`, kept so that a retry gets it again (see
//! [`crate::http::idempotency`] for the rules). Rows hold hashes, ids and a
//! sealed body; never a plaintext value.

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

/// What the table says about a key when a request arrives with it.
#[derive(Debug)]
pub enum Begun {
    /// The key is new (or its old row expired or was abandoned): this
    /// request runs, and its row is `record_id`.
    Run { record_id: Uuid },
    /// The first request with this key is still running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
    /// The first request finished with this answer.
    Done(Stored),
}

/// A kept answer.
#[derive(Debug)]
pub struct Stored {
    pub record_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub status: u16,
    /// `None` once the customer was erased: the answer is gone with them.
    pub response: Option<Vec<u8>>,
}

/// Claims `key` for a request with `fingerprint`, or reports what holds it.
///
/// A row older than `expire_before` is gone for every purpose; an in-flight
/// row older than `abandon_before` belonged to a process that died mid-request
/// and is taken over. Both are replaced in one conditional update, so two
/// retries racing for an old row cannot both run.
pub async fn begin(
    db: &Db,
    actor: &[u8],
    key: &str,
    fingerprint: &[u8],
    now: Micros,
    expire_before: Micros,
    abandon_before: Micros,
) -> StoreResult<Begun> {
    let record_id = Uuid::now_v7();
    let inserted = on_db!(db, pool => sqlx::query(
        "INSERT INTO idempotency_keys (actor, idem_key, record_id, fingerprint, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (actor, idem_key) DO NOTHING",
    )
    .bind(actor)
    .bind(key)
    .bind(record_id)
    .bind(fingerprint)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected());
    if inserted == 1 {
        return Ok(Begun::Run { record_id });
    }
    type Row = (
        Uuid,
        Vec<u8>,
        Option<Uuid>,
        Option<i64>,
        Option<Vec<u8>>,
        i64,
    );
    let row: Option<Row> = on_db!(db, pool => sqlx::query_as(
        "SELECT record_id, fingerprint, customer_id, status, response, created_at \
         FROM idempotency_keys WHERE actor = $1 AND idem_key = $2",
    )
    .bind(actor)
    .bind(key)
    .fetch_optional(pool)
    .await?);
    let Some((old_id, old_fp, customer_id, status, response, created_at)) = row else {
        // Freed between the two statements (its first request failed):
        // answered as in flight, so the client retries after Retry-After.
        return Ok(Begun::InFlight);
    };
    let stale = created_at < expire_before || (status.is_none() && created_at < abandon_before);
    if stale {
        let taken = on_db!(db, pool => sqlx::query(
            "UPDATE idempotency_keys SET record_id = $3, fingerprint = $4, created_at = $5, \
             customer_id = NULL, status = NULL, response = NULL \
             WHERE actor = $1 AND idem_key = $2 AND record_id = $6",
        )
        .bind(actor)
        .bind(key)
        .bind(record_id)
        .bind(fingerprint)
        .bind(now)
        .bind(old_id)
        .execute(pool)
        .await?
        .rows_affected());
        return Ok(if taken == 1 {
            Begun::Run { record_id }
        } else {
            Begun::InFlight
        });
    }
    if old_fp != fingerprint {
        return Ok(Begun::Mismatch);
    }
    Ok(match status {
        Some(status) => Begun::Done(Stored {
            record_id: old_id,
            customer_id,
            status: u16::try_from(status).unwrap_or(500),
            response,
        }),
        None => Begun::InFlight,
    })
}

/// Keeps the answer of the request that holds `record_id`.
pub async fn finish(
    db: &Db,
    record_id: Uuid,
    customer_id: Uuid,
    status: u16,
    sealed: &[u8],
) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(
        "UPDATE idempotency_keys SET customer_id = $2, status = $3, response = $4 \
         WHERE record_id = $1",
    )
    .bind(record_id)
    .bind(customer_id)
    .bind(i64::from(status))
    .bind(sealed)
    .execute(pool)
    .await
    .map(drop)?);
    Ok(())
}

/// Frees the key of a request that changed nothing (an error answer), so
/// that a retry runs again.
pub async fn release(db: &Db, record_id: Uuid) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query("DELETE FROM idempotency_keys WHERE record_id = $1")
        .bind(record_id)
        .execute(pool)
        .await
        .map(drop)?);
    Ok(())
}

/// Deletes every row created before `before`; how many.
pub async fn purge_expired(db: &Db, before: Micros) -> StoreResult<u64> {
    Ok(
        on_db!(db, pool => sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()),
    )
}
