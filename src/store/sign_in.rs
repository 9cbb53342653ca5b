//! The `sign_in_challenges` table: one row per code asked for at
//! `POST /v1/auth/customer/start`, holding a keyed hash of the code and never
//! the code (see [`crate::identity::sign_in`]). A challenge and the outbox
//! message that carries its code are inserted in one transaction, so a code
//! is never sent for a challenge that was not stored, nor stored without its
//! message.

use uuid::Uuid;

use super::{on_db, outbox::NewMessage, Db, Micros, StoreResult};

/// Checks counted on a challenge stop growing here (far past the limit that
/// refuses them), so that a hammered row cannot overflow.
const ATTEMPTS_CAP: i64 = 1000;

/// A challenge to store.
#[derive(Debug)]
pub struct NewChallenge {
    pub id: Uuid,
    /// `None`: the value matched no customer who may sign in; the challenge
    /// can never verify.
    pub customer_id: Option<Uuid>,
    pub channel: String,
    pub code_hash: [u8; 32],
    pub created_at: Micros,
    pub expires_at: Micros,
}

/// A challenge as one check found it, after that check was counted.
#[derive(Debug)]
pub struct Attempt {
    pub customer_id: Option<Uuid>,
    pub code_hash: Vec<u8>,
    /// Checks so far, this one included.
    pub attempts: i64,
    pub expires_at: Micros,
    pub used_at: Option<Micros>,
}

/// Stores a challenge and, when it has a code to send, the message that
/// carries it, in one transaction.
pub async fn insert(db: &Db, c: &NewChallenge, message: Option<&NewMessage>) -> StoreResult<()> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO sign_in_challenges \
             (id, customer_id, channel, code_hash, attempts, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6)",
        )
        .bind(c.id)
        .bind(c.customer_id)
        .bind(&c.channel)
        .bind(&c.code_hash[..])
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&mut *tx)
        .await?;
        if let Some(m) = message {
            sqlx::query(super::outbox::INSERT)
                .bind(m.id)
                .bind(m.kind)
                .bind(m.customer_id)
                .bind(&m.channel)
                .bind(&m.message)
                .bind(m.created_at)
                .bind(m.expires_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Counts one check of challenge `id` and returns the challenge as it now
/// stands, in one statement: two checks at once each count, so no more than
/// the allowed number ever see a challenge that is not used up. `None`: no
/// such challenge (never made, expired and purged, or its customer erased).
pub async fn attempt(db: &Db, id: Uuid) -> StoreResult<Option<Attempt>> {
    type Row = (Option<Uuid>, Vec<u8>, i64, i64, Option<i64>);
    let row: Option<Row> = on_db!(db, pool => sqlx::query_as(
        "UPDATE sign_in_challenges \
         SET attempts = CASE WHEN attempts < $2 THEN attempts + 1 ELSE attempts END \
         WHERE id = $1 \
         RETURNING customer_id, code_hash, attempts, expires_at, used_at",
    )
    .bind(id)
    .bind(ATTEMPTS_CAP)
    .fetch_optional(pool)
    .await?);
    Ok(row.map(
        |(customer_id, code_hash, attempts, expires_at, used_at)| Attempt {
            customer_id,
            code_hash,
            attempts,
            expires_at,
            used_at,
        },
    ))
}

/// Marks challenge `id` used at `now`, if no other check did first and its
/// customer has not been erased meanwhile; whether this call did.
pub async fn mark_used(db: &Db, id: Uuid, now: Micros) -> StoreResult<bool> {
    let done = on_db!(db, pool => sqlx::query(
        "UPDATE sign_in_challenges SET used_at = $2 \
         WHERE id = $1 AND used_at IS NULL AND EXISTS (SELECT 1 FROM customers c \
             WHERE c.id = sign_in_challenges.customer_id AND c.erased_at IS NULL)",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(done == 1)
}

/// Deletes the challenges that expired before `now`: once expired they can
/// never verify, and a check of a deleted one is answered the same way.
pub async fn purge_expired(db: &Db, now: Micros) -> StoreResult<u64> {
    let n = on_db!(db, pool => sqlx::query(
        "DELETE FROM sign_in_challenges WHERE expires_at <= $1",
    )
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(n)
}

/// A customer holding a contact value, as sign-in needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    pub customer_id: Uuid,
    pub last_activity_at: Micros,
}

/// The live (not erased) customers holding the value with this blind index
/// on `channel`; at most `limit`.
pub async fn holders(
    db: &Db,
    channel: &str,
    blind_index: &[u8; 32],
    limit: i64,
) -> StoreResult<Vec<Holder>> {
    let rows: Vec<(Uuid, i64)> = on_db!(db, pool => sqlx::query_as(
        "SELECT ct.customer_id, ct.last_activity_at \
         FROM contacts ct JOIN customers c ON c.id = ct.customer_id \
         WHERE ct.channel = $1 AND ct.blind_index = $2 AND c.erased_at IS NULL \
         ORDER BY ct.customer_id LIMIT $3",
    )
    .bind(channel)
    .bind(&blind_index[..])
    .bind(limit)
    .fetch_all(pool)
    .await?);
    Ok(rows
        .into_iter()
        .map(|(customer_id, last_activity_at)| Holder {
            customer_id,
            last_activity_at,
        })
        .collect())
}
