//! The `web_sessions` table: server-side sessions of the web pages, keyed by
//! the SHA-256 of the id in the browser's cookie (never the id itself). See
//! [`crate::service::sessions`] for what a row means and when it ends.

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub subject_kind: String,
    pub subject_id: Uuid,
    pub epoch: i64,
    pub created_at: Micros,
    pub last_seen_at: Micros,
}

/// Inserts a new session.
pub async fn insert(db: &Db, row: &SessionRow) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(
        "INSERT INTO web_sessions \
         (id_hash, subject_kind, subject_id, epoch, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.id_hash)
    .bind(&row.subject_kind)
    .bind(row.subject_id)
    .bind(row.epoch)
    .bind(row.created_at)
    .bind(row.last_seen_at)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// The session whose id hashes to `id_hash`, if any.
pub async fn by_hash(db: &Db, id_hash: &[u8]) -> StoreResult<Option<SessionRow>> {
    Ok(on_db!(db, pool => sqlx::query_as::<_, SessionRow>(
        "SELECT id_hash, subject_kind, subject_id, epoch, created_at, last_seen_at \
         FROM web_sessions WHERE id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(pool)
    .await?))
}

/// Records that the session was used at `now`.
pub async fn touch(db: &Db, id_hash: &[u8], now: Micros) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query(
        "UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1 AND last_seen_at < $2",
    )
    .bind(id_hash)
    .bind(now)
    .execute(pool)
    .await
    .map(drop))?;
    Ok(())
}

/// Deletes one session (sign-out, or found expired).
pub async fn delete(db: &Db, id_hash: &[u8]) -> StoreResult<()> {
    on_db!(db, pool => sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// Deletes every session begun before `created_before` or idle since before
/// `seen_before`: rows that can no longer be used, whose browser never came
/// back to be told.
pub async fn delete_stale(
    db: &Db,
    created_before: Micros,
    seen_before: Micros,
) -> StoreResult<u64> {
    Ok(on_db!(db, pool => sqlx::query(
        "DELETE FROM web_sessions WHERE created_at < $1 OR last_seen_at < $2",
    )
    .bind(created_before)
    .bind(seen_before)
    .execute(pool)
    .await?
    .rows_affected()))
}

/// Deletes every session of one subject (a customer who was erased); how many.
pub async fn delete_for_subject(db: &Db, subject_kind: &str, subject_id: Uuid) -> StoreResult<u64> {
    Ok(on_db!(db, pool => sqlx::query(
        "DELETE FROM web_sessions WHERE subject_kind = $1 AND subject_id = $2",
    )
    .bind(subject_kind)
    .bind(subject_id)
    .execute(pool)
    .await?
    .rows_affected()))
}
