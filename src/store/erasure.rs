//! Erasure by crypto-shredding: a customer's data keys, ciphertext, blind
//! indexes, consents, interactions, sign-in challenges and undelivered
//! notifier messages go in one transaction; a tombstone
//! `{id, erased_at}` stays so the id answers 410 rather than 404. On SQLite
//! the deleted bytes are zeroed (`secure_delete`) and the WAL is truncated
//! afterwards ([`Db::scrub_wal`]), so the live files keep no copy.

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

/// What one erasure removed (counts for the audit entry; never values).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub data_keys: u64,
    pub contacts: u64,
    pub interactions: u64,
    pub consents: u64,
}

/// The result of asking to erase a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    /// Erased now.
    Done { erased_at: Micros, removed: Erased },
    /// Erased before: nothing changed.
    Already { erased_at: Micros },
    /// No such customer.
    Missing,
}

/// Empties the tables that hold a customer's data, in this order: data keys
/// first, so that nothing left behind could still be opened.
const DELETE_CUSTOMER_ROWS: [&str; 4] = [
    "DELETE FROM data_keys WHERE customer_id = $1",
    "DELETE FROM contacts WHERE customer_id = $1",
    "DELETE FROM interactions WHERE customer_id = $1",
    "DELETE FROM consents WHERE customer_id = $1",
];

/// Erases a customer at `now`; a second call is a no-op.
pub async fn erase(db: &Db, id: Uuid, now: Micros) -> StoreResult<Erasure> {
    let outcome = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        // Taking the row (a write on SQLite's single writer, a row lock on
        // PostgreSQL) first makes concurrent erasures of one customer queue.
        let state: Option<Option<i64>> = sqlx::query_scalar(
            "UPDATE customers SET updated_at = updated_at WHERE id = $1 RETURNING erased_at",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = match state {
            None => Erasure::Missing,
            Some(Some(erased_at)) => Erasure::Already { erased_at },
            Some(None) => {
                let mut counts = [0u64; 4];
                for (sql, count) in DELETE_CUSTOMER_ROWS.iter().zip(counts.iter_mut()) {
                    *count = sqlx::query(sql)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                // Kept answers of Idempotency-Keys: unreadable once the data
                // keys are gone, and dropped. The keys stay taken (until they
                // expire), so a late retry of a create cannot bring the
                // customer back; it is answered 410.
                sqlx::query("UPDATE idempotency_keys SET response = NULL WHERE customer_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                // Sign-in codes: an undelivered message holds the contact
                // value it goes to (sealed under a vault key, not the
                // customer's), and a challenge could still be checked.
                for sql in [
                    "DELETE FROM notifier_outbox WHERE customer_id = $1",
                    "DELETE FROM sign_in_challenges WHERE customer_id = $1",
                ] {
                    sqlx::query(sql).bind(id).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE customers SET display_name = NULL, external_ref = NULL, \
                     preferred_channel = NULL, updated_at = $2, erased_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let [data_keys, contacts, interactions, consents] = counts;
                Erasure::Done {
                    erased_at: now,
                    removed: Erased { data_keys, contacts, interactions, consents },
                }
            }
        };
        tx.commit().await?;
        outcome
    });
    if matches!(outcome, Erasure::Done { .. }) {
        // The rows are gone; their old copies in SQLite's WAL go too. The
        // erasure has committed, so a failure here does not undo it: it is
        // logged, and the next scrub (erasure or purge) removes the frames.
        if let Err(e) = db.scrub_wal().await {
            tracing::error!(error = %e, "erasure committed, but the WAL still holds old frames");
        }
    }
    Ok(outcome)
}

/// How many rows of each kind a customer has now (for the audit entry an
/// erasure commits before it runs).
pub async fn holdings(db: &Db, id: Uuid) -> StoreResult<Erased> {
    const SQL: &str = "SELECT \
        (SELECT COUNT(*) FROM data_keys WHERE customer_id = $1), \
        (SELECT COUNT(*) FROM contacts WHERE customer_id = $1), \
        (SELECT COUNT(*) FROM interactions WHERE customer_id = $1), \
        (SELECT COUNT(*) FROM consents WHERE customer_id = $1)";
    let counts: (i64, i64, i64, i64) =
        on_db!(db, pool => sqlx::query_as(SQL).bind(id).fetch_one(pool).await?);
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Erased {
        data_keys: n(counts.0),
        contacts: n(counts.1),
        interactions: n(counts.2),
        consents: n(counts.3),
    })
}
