//! The `notifier_outbox` table: messages the notifier still has to deliver
//! (see [`crate::identity::notify`]). A row holds its message sealed, never
//! in plaintext, and is deleted once delivered or expired.
//!
//! Several nodes drain one outbox. A node *claims* due rows for a lease (its
//! id in `claimed_by`, the lease's end in `claimed_until`) in one statement,
//! and only the claimant may then delete or release a row, so in normal
//! operation a message is delivered once. A node that dies mid-delivery
//! leaves its claim to run out; the message is then delivered again by
//! whoever claims it next (at least once, never lost).

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

/// The insert of one message (run inside [`super::sign_in::insert`]'s
/// transaction): due at once, never tried, unclaimed.
pub const INSERT: &str = "INSERT INTO notifier_outbox \
    (id, kind, customer_id, channel, message, created_at, expires_at, attempts, next_attempt_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $6)";

/// A message to queue.
#[derive(Debug)]
pub struct NewMessage {
    pub id: Uuid,
    /// What the message is, e.g. `sign_in_code`.
    pub kind: &'static str,
    pub customer_id: Uuid,
    pub channel: String,
    /// The sealed message.
    pub message: Vec<u8>,
    pub created_at: Micros,
    /// After this the message is dropped undelivered.
    pub expires_at: Micros,
}

/// A message claimed for delivery.
#[derive(Debug)]
pub struct Claimed {
    pub id: Uuid,
    pub kind: String,
    pub customer_id: Uuid,
    pub channel: String,
    pub message: Vec<u8>,
    pub expires_at: Micros,
    /// Delivery attempts so far, this one included.
    pub attempts: i64,
}

/// The claim, as both engines run it. The lease condition is repeated on
/// the outer statement so that, under PostgreSQL's READ COMMITTED, a row
/// claimed by another node between the inner select and the update is
/// re-checked and skipped rather than claimed twice.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE notifier_outbox \
             SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notifier_outbox \
                 WHERE next_attempt_at <= $3 AND expires_at > $3 \
                 AND (claimed_until IS NULL OR claimed_until <= $3) \
                 ORDER BY next_attempt_at LIMIT $4",
            $lock,
            ") AND (claimed_until IS NULL OR claimed_until <= $3) \
             RETURNING id, kind, customer_id, channel, message, expires_at, attempts"
        )
    };
}

/// SQLite runs one writer at a time: the statement is atomic as it stands.
const CLAIM_SQLITE: &str = claim_sql!("");
/// PostgreSQL: rows another node is claiming right now are skipped, not waited for.
const CLAIM_POSTGRES: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");

type ClaimedRow = (Uuid, String, Uuid, String, Vec<u8>, i64, i64);

/// Claims up to `limit` messages due at `now` for node `node` until
/// `lease_until`, counting a delivery attempt on each.
pub async fn claim(
    db: &Db,
    node: Uuid,
    now: Micros,
    lease_until: Micros,
    limit: i64,
) -> StoreResult<Vec<Claimed>> {
    let rows: Vec<ClaimedRow> = match db {
        Db::Sqlite(pool, _) => {
            sqlx::query_as(CLAIM_SQLITE)
                .bind(node)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_as(CLAIM_POSTGRES)
                .bind(node)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(
            |(id, kind, customer_id, channel, message, expires_at, attempts)| Claimed {
                id,
                kind,
                customer_id,
                channel,
                message,
                expires_at,
                attempts,
            },
        )
        .collect())
}

/// Deletes a delivered message, if `node` still holds its claim; whether it did.
pub async fn delivered(db: &Db, id: Uuid, node: Uuid) -> StoreResult<bool> {
    let n = on_db!(db, pool => sqlx::query(
        "DELETE FROM notifier_outbox WHERE id = $1 AND claimed_by = $2",
    )
    .bind(id)
    .bind(node)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(n == 1)
}

/// Releases `node`'s claim on a message whose delivery failed, to be tried
/// again from `next_attempt_at`.
pub async fn retry_at(db: &Db, id: Uuid, node: Uuid, next_attempt_at: Micros) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(
        "UPDATE notifier_outbox SET claimed_by = NULL, claimed_until = NULL, next_attempt_at = $3 \
         WHERE id = $1 AND claimed_by = $2",
    )
    .bind(id)
    .bind(node)
    .bind(next_attempt_at)
    .execute(pool)
    .await
    .map(drop)?);
    Ok(())
}

/// Deletes the messages that expired before `now`, delivered or not: what
/// they carry is of no use any more. How many.
pub async fn drop_expired(db: &Db, now: Micros) -> StoreResult<u64> {
    let n = on_db!(db, pool => sqlx::query("DELETE FROM notifier_outbox WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(n)
}
